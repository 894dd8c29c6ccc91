//! Configuration: the built-in defaults, an optional file, and `EPHYSD_*` environment overrides,
//! validated into [`Settings`] with one clear line per problem.
//!
//! Every error names the key, the value and what is allowed, because the person reading it is
//! usually looking at a systemd journal on a rig PC, not at this code.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use ephysd_drivers::{DeviceKeys, DeviceSpec};
use ephysd_hdf5::{Compression, RecordingType};
use ephysd_pipeline::{available_cores, ThreadPlacement};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The documented default configuration, compiled in.
pub const DEFAULT_TOML: &str = include_str!("../../config/ephysd.toml");

/// Prefix of environment variables that override keys (`EPHYSD_SECTION__KEY`).
pub const ENV_PREFIX: &str = "EPHYSD";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub log: LogSettings,
    pub device: DeviceKeys,
    pub recording: RecordingSettings,
    pub probes: ProbeKeys,
    pub cache: CacheSettings,
    pub realtime: RealtimeSettings,
    pub processing: ProcessingSettings,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub bind: String,
    pub base_port: u16,
    /// PEM certificate chain for TLS ("" for none).
    pub tls_cert: PathBuf,
    /// PEM private key for TLS ("" for none).
    pub tls_key: PathBuf,
    /// File holding the bearer token ("" for none).
    pub token_file: PathBuf,
    /// Also serve plain gRPC on 127.0.0.1 when `bind` is one LAN address.
    pub loopback_plain: bool,
}

impl ServerSettings {
    /// The address `bind` names (validated when settings load).
    pub fn bind_ip(&self) -> IpAddr {
        self.bind.parse().unwrap_or(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST))
    }

    /// Whether TLS is configured (both cert and key are set).
    pub fn tls_enabled(&self) -> bool {
        !self.tls_cert.as_os_str().is_empty() && !self.tls_key.as_os_str().is_empty()
    }

    /// Whether a bearer token is configured.
    pub fn token_enabled(&self) -> bool {
        !self.token_file.as_os_str().is_empty()
    }

    /// Whether a separate plain listener on 127.0.0.1 runs beside the secured one.
    pub fn serves_loopback_plain(&self) -> bool {
        let ip = self.bind_ip();
        self.loopback_plain && !ip.is_loopback() && !ip.is_unspecified()
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let bind = IpAddr::from_str(&self.bind)
            .map_err(|_| invalid("server.bind", &self.bind, "allowed: an IP address such as 127.0.0.1"))?;
        if !(1024..=65531).contains(&self.base_port) {
            return Err(invalid("server.base_port", self.base_port, "allowed 1024..=65531"));
        }
        let cert_set = !self.tls_cert.as_os_str().is_empty();
        let key_set = !self.tls_key.as_os_str().is_empty();
        if cert_set != key_set {
            let (missing, set) = if cert_set { ("tls_key", "tls_cert") } else { ("tls_cert", "tls_key") };
            return Err(invalid(
                &format!("server.{missing}"),
                "\"\"",
                format!("server.{set} is set, so server.{missing} must name its PEM file too"),
            ));
        }
        if !bind.is_loopback() {
            let missing: Vec<&str> = [("server.tls_cert", cert_set), ("server.tls_key", key_set)]
                .into_iter()
                .chain([("server.token_file", self.token_enabled())])
                .filter(|(_, set)| !set)
                .map(|(key, _)| key)
                .collect();
            if !missing.is_empty() {
                return Err(invalid(
                    "server.bind",
                    &self.bind,
                    format!(
                        "serving beyond loopback needs TLS and a bearer token; missing: {}. \
                         Allowed without them: a loopback address (127.0.0.0/8 or ::1)",
                        missing.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub level: String,
    pub format: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordingSettings {
    pub base_path: PathBuf,
    pub base_name: String,
    pub index: bool,
    pub timestamp: bool,
    pub recording_type: String,
    pub split_files_by_port: bool,
    pub flush_interval_s: f64,
    pub rollover_mb: u64,
    pub rollover_minutes: f64,
    pub min_free_mb: u64,
    pub compression: String,
    pub compression_level: u8,
    pub autostart: String,
    pub recover_on_start: bool,
}

/// What the daemon starts by itself once it is up (`recording.autostart`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Autostart {
    /// Nothing: a client starts streaming.
    Off,
    /// Streaming.
    Stream,
    /// Streaming and a recording into a new file.
    Record,
}

impl RecordingSettings {
    /// The recording type the key names (validated when settings load).
    pub fn recording_type(&self) -> RecordingType {
        RecordingType::from_name(&self.recording_type).unwrap_or_default()
    }

    /// The compression the keys name (validated when settings load).
    pub fn compression(&self) -> Compression {
        match self.compression.as_str() {
            "deflate" => Compression::Deflate { level: self.compression_level },
            _ => Compression::None,
        }
    }

    /// What to start once the daemon is up (validated when settings load).
    pub fn autostart(&self) -> Autostart {
        match self.autostart.as_str() {
            "stream" => Autostart::Stream,
            "record" => Autostart::Record,
            _ => Autostart::Off,
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        validate_base_name(&self.base_name)?;
        if self.base_path.as_os_str().is_empty() {
            return Err(invalid("recording.base_path", "\"\"", "allowed: a directory path"));
        }
        if RecordingType::from_name(&self.recording_type).is_none() {
            let names: Vec<&str> = RecordingType::ALL.iter().map(|t| t.name()).collect();
            return Err(invalid(
                "recording.recording_type",
                &self.recording_type,
                format!("allowed: {}", names.join(", ")),
            ));
        }
        if !(0.1..=60.0).contains(&self.flush_interval_s) {
            return Err(invalid("recording.flush_interval_s", self.flush_interval_s, "allowed 0.1..=60"));
        }
        if self.rollover_mb != 0 && !(16..=1_048_576).contains(&self.rollover_mb) {
            return Err(invalid("recording.rollover_mb", self.rollover_mb, "allowed: 0 (off) or 16..=1048576"));
        }
        if self.rollover_minutes != 0.0 && !(0.05..=1440.0).contains(&self.rollover_minutes) {
            return Err(invalid(
                "recording.rollover_minutes",
                self.rollover_minutes,
                "allowed: 0 (off) or 0.05..=1440",
            ));
        }
        if self.min_free_mb > 104_857_600 {
            return Err(invalid("recording.min_free_mb", self.min_free_mb, "allowed 0..=104857600"));
        }
        if !["none", "deflate"].contains(&self.compression.as_str()) {
            return Err(invalid("recording.compression", &self.compression, "allowed: none, deflate"));
        }
        if !(1..=9).contains(&self.compression_level) {
            return Err(invalid("recording.compression_level", self.compression_level, "allowed 1..=9"));
        }
        if !["off", "stream", "record"].contains(&self.autostart.as_str()) {
            return Err(invalid("recording.autostart", &self.autostart, "allowed: off, stream, record"));
        }
        Ok(())
    }
}

/// The `[probes]` keys: which probe map each headstage port carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeKeys {
    pub port_a: String,
    pub port_b: String,
    pub port_c: String,
    pub port_d: String,
    pub port_e: String,
    pub port_f: String,
    pub port_g: String,
    pub port_h: String,
}

/// What a `[probes]` key asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum ProbeChoice {
    /// What the device knows (the simulated device: a straight shank).
    Device,
    /// Nothing is known about the probe.
    Unknown,
    /// A built-in map's name or a map file's path.
    Map(String),
}

impl ProbeKeys {
    /// Each port's key name and value, A to H.
    pub fn ports(&self) -> [(&'static str, &str); 8] {
        [
            ("port_a", &self.port_a),
            ("port_b", &self.port_b),
            ("port_c", &self.port_c),
            ("port_d", &self.port_d),
            ("port_e", &self.port_e),
            ("port_f", &self.port_f),
            ("port_g", &self.port_g),
            ("port_h", &self.port_h),
        ]
    }

    /// What the key of `port` (0 = A) asks for.
    pub fn choice(&self, port: usize) -> ProbeChoice {
        match self.ports().get(port).map(|(_, v)| v.trim()) {
            None | Some("") => ProbeChoice::Device,
            Some("none") => ProbeChoice::Unknown,
            Some(name) => ProbeChoice::Map(name.to_string()),
        }
    }

    /// Every named map must exist and parse; whether it fits its port is checked when the
    /// device is open.
    fn validate(&self) -> Result<(), ConfigError> {
        for (port, (key, value)) in self.ports().into_iter().enumerate() {
            if let ProbeChoice::Map(name) = self.choice(port) {
                crate::probe_map::resolve(&name)
                    .map_err(|e| invalid(&format!("probes.{key}"), format!("{value:?}"), e.to_string()))?;
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheSettings {
    pub seconds: u32,
}

/// The `[processing]` keys: filters and spike detection on the acquisition thread.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessingSettings {
    /// Run the stages and the detector while streaming.
    pub detection: bool,
    /// Highpass cutoff of the spike band, Hz.
    pub spike_band_hz: f64,
    /// Butterworth order of that highpass.
    pub spike_band_order: u32,
    /// Default threshold, multiples of the noise estimate.
    pub threshold_sd: f64,
    /// Spikes the spike ring holds.
    pub spike_ring: usize,
    /// Seconds of filtered signal kept for `get_signals(apply_dsp=True)`.
    pub filtered_cache_seconds: u32,
}

impl ProcessingSettings {
    /// What can be checked before the device (and so its sample rate) is known.
    fn validate(&self) -> Result<(), ConfigError> {
        if !(self.spike_band_hz.is_finite() && self.spike_band_hz > 0.0) {
            return Err(invalid(
                "processing.spike_band_hz",
                self.spike_band_hz,
                "allowed: above 0 and below half the sample rate",
            ));
        }
        if !(1..=8).contains(&self.spike_band_order) {
            return Err(invalid("processing.spike_band_order", self.spike_band_order, "allowed: 1..=8"));
        }
        if !(self.threshold_sd.is_finite() && (2.0..=50.0).contains(&self.threshold_sd)) {
            return Err(invalid("processing.threshold_sd", self.threshold_sd, "allowed: 2..=50"));
        }
        if !(1024..=4_194_304).contains(&self.spike_ring) {
            return Err(invalid("processing.spike_ring", self.spike_ring, "allowed: 1024..=4194304"));
        }
        if !(1..=600).contains(&self.filtered_cache_seconds) {
            return Err(invalid("processing.filtered_cache_seconds", self.filtered_cache_seconds, "allowed: 1..=600"));
        }
        Ok(())
    }

    /// Seconds the filtered cache holds: never more than the primary cache.
    pub fn filtered_seconds(&self, cache_seconds: u32) -> u32 {
        self.filtered_cache_seconds.min(cache_seconds)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RealtimeSettings {
    /// The core to pin the acquisition thread to, or none.
    pub core: NoneOr,
    /// The SCHED_FIFO priority of the acquisition thread, or none (normal scheduling).
    pub fifo_priority: NoneOr,
}

/// A number, or the word `"none"` for "do not do this" (no magic values like -1 or 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoneOr(pub Option<i64>);

impl std::fmt::Display for NoneOr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(v) => write!(f, "{v}"),
            None => f.write_str("\"none\""),
        }
    }
}

impl Serialize for NoneOr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Some(v) => s.serialize_i64(v),
            None => s.serialize_str("none"),
        }
    }
}

impl<'de> Deserialize<'de> for NoneOr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = NoneOr;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an integer or \"none\"")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<NoneOr, E> {
                Ok(NoneOr(Some(v)))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<NoneOr, E> {
                i64::try_from(v).map(|v| NoneOr(Some(v))).map_err(|_| E::custom(format!("{v} is too large")))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<NoneOr, E> {
                match v.trim() {
                    "none" => Ok(NoneOr(None)),
                    other => other
                        .parse()
                        .map(|v| NoneOr(Some(v)))
                        .map_err(|_| E::custom(format!("{other:?} is neither an integer nor \"none\""))),
                }
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// A configuration that cannot be used. The message is the one line an operator sees.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("unknown config key `{key}` (set by {origin}); known keys: {known}")]
    UnknownKey { key: String, origin: String, known: String },
    #[error("config key `{key}` = {value}: {allowed}")]
    Invalid { key: String, value: String, allowed: String },
    #[error("config: {0}")]
    Other(String),
}

fn invalid(key: &str, value: impl std::fmt::Display, allowed: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { key: key.to_string(), value: value.to_string(), allowed: allowed.into() }
}

/// Where a configuration is read from.
#[derive(Debug, Clone, Default)]
pub struct ConfigSource {
    /// The file given with `--config`, if any.
    pub file: Option<PathBuf>,
    /// Environment variables to consider (normally `std::env::vars()`); only `EPHYSD_*` are used.
    pub env: Vec<(String, String)>,
}

impl ConfigSource {
    /// The process's own environment and an optional file.
    pub fn from_process(file: Option<PathBuf>) -> Self {
        ConfigSource { file, env: std::env::vars().collect() }
    }
}

/// Reads, merges and validates the configuration.
pub fn load(source: &ConfigSource) -> Result<Settings, ConfigError> {
    let mut builder =
        config::Config::builder().add_source(config::File::from_str(DEFAULT_TOML, config::FileFormat::Toml));
    if let Some(path) = &source.file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::File { path: path.clone(), reason: e.to_string() })?;
        builder = builder
            .add_source(config::File::from_str(&text, config::FileFormat::Toml).format(config::FileFormat::Toml));
    }
    let env: config::Map<String, String> =
        source.env.iter().filter(|(k, _)| k.starts_with(&format!("{ENV_PREFIX}_"))).cloned().collect();
    builder = builder.add_source(
        config::Environment::with_prefix(ENV_PREFIX)
            .prefix_separator("_")
            .separator("__")
            .try_parsing(true)
            .source(Some(env)),
    );
    let merged = builder.build().map_err(|e| parse_error(e, source))?;
    reject_unknown_keys(&merged, source)?;
    let settings: Settings = merged.try_deserialize().map_err(|e| parse_error(e, source))?;
    settings.validate()?;
    Ok(settings)
}

fn parse_error(e: config::ConfigError, source: &ConfigSource) -> ConfigError {
    match (&e, &source.file) {
        (config::ConfigError::FileParse { .. }, Some(path)) => {
            ConfigError::File { path: path.clone(), reason: e.to_string() }
        }
        _ => ConfigError::Other(e.to_string()),
    }
}

/// Every `section.key` the daemon knows, from the defaults themselves.
pub fn known_keys() -> BTreeSet<String> {
    let defaults: toml::Table = DEFAULT_TOML.parse().expect("built-in defaults are valid TOML");
    defaults
        .iter()
        .flat_map(|(section, v)| {
            let keys: Vec<String> = match v.as_table() {
                Some(t) => t.keys().map(|k| format!("{section}.{k}")).collect(),
                None => vec![section.clone()],
            };
            keys
        })
        .collect()
}

fn reject_unknown_keys(merged: &config::Config, source: &ConfigSource) -> Result<(), ConfigError> {
    let known = known_keys();
    let table: std::collections::BTreeMap<String, config::Value> =
        merged.clone().try_deserialize().map_err(|e| ConfigError::Other(e.to_string()))?;
    for (section, value) in table {
        let keys: Vec<String> = match value.clone().into_table() {
            Ok(t) => t.into_keys().map(|k| format!("{section}.{k}")).collect(),
            Err(_) => vec![section.clone()],
        };
        for key in keys {
            if !known.contains(&key) {
                let origin = origin_of(&key, source);
                let list = known.iter().cloned().collect::<Vec<_>>().join(", ");
                return Err(ConfigError::UnknownKey { key, origin, known: list });
            }
        }
    }
    Ok(())
}

fn origin_of(key: &str, source: &ConfigSource) -> String {
    let env_name = format!("{ENV_PREFIX}_{}", key.replace('.', "__")).to_uppercase();
    if source.env.iter().any(|(k, _)| k.to_uppercase() == env_name) {
        format!("environment variable {env_name}")
    } else if let Some(p) = &source.file {
        format!("config file {}", p.display())
    } else {
        "the defaults".to_string()
    }
}

pub const LOG_LEVELS: [&str; 5] = ["error", "warn", "info", "debug", "trace"];

impl Settings {
    /// The built-in defaults, validated.
    pub fn defaults() -> Settings {
        load(&ConfigSource::default()).expect("built-in defaults are valid")
    }

    /// Checks every value that can be checked without touching the machine.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.server.validate()?;
        if !LOG_LEVELS.contains(&self.log.level.as_str()) {
            return Err(invalid("log.level", &self.log.level, format!("allowed: {}", LOG_LEVELS.join(", "))));
        }
        if !["text", "json"].contains(&self.log.format.as_str()) {
            return Err(invalid("log.format", &self.log.format, "allowed: text, json"));
        }
        self.device_spec()?;
        self.recording.validate()?;
        self.probes.validate()?;
        if !(1..=600).contains(&self.cache.seconds) {
            return Err(invalid("cache.seconds", self.cache.seconds, "allowed 1..=600"));
        }
        self.processing.validate()?;
        let cores = available_cores() as i64;
        if let Some(core) = self.realtime.core.0 {
            if !(0..cores).contains(&core) {
                return Err(invalid(
                    "realtime.core",
                    core,
                    format!("allowed: \"none\" (not pinned) or 0..={}", cores - 1),
                ));
            }
        }
        if let Some(priority) = self.realtime.fifo_priority.0 {
            if !(1..=99).contains(&priority) {
                return Err(invalid(
                    "realtime.fifo_priority",
                    priority,
                    "allowed: \"none\" (normal scheduling) or 1..=99",
                ));
            }
        }
        Ok(())
    }

    /// The device the `[device]` keys name.
    pub fn device_spec(&self) -> Result<DeviceSpec, ConfigError> {
        DeviceSpec::from_keys(&self.device).map_err(|e| invalid(&format!("device.{}", e.key), e.value, e.allowed))
    }

    /// Where the acquisition thread runs, from the `[realtime]` keys (validated: both fit).
    pub fn placement(&self) -> ThreadPlacement {
        ThreadPlacement {
            core: self.realtime.core.0.and_then(|c| usize::try_from(c).ok()),
            fifo_priority: self.realtime.fifo_priority.0.and_then(|p| i32::try_from(p).ok()),
        }
    }

    /// The effective configuration as JSON, as recordings keep it.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("settings serialize")
    }

    /// The effective configuration as TOML, as `check-config` prints it.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("settings serialize")
    }
}

/// File-name stems must stay inside the recording directory.
pub fn validate_base_name(name: &str) -> Result<(), ConfigError> {
    if name.is_empty() || name.len() > 128 || name.contains(['/', '\\', '\0']) || name == "." || name == ".." {
        return Err(invalid(
            "recording.base_name",
            format!("{name:?}"),
            "allowed: 1..=128 characters, no path separators",
        ));
    }
    Ok(())
}

/// Creates the recording directory if needed and proves it is writable, so a bad path fails
/// at start rather than when the first recording begins.
pub fn prepare_recording_dir(path: &Path) -> Result<(), ConfigError> {
    let fail = |reason: String| {
        invalid("recording.base_path", path.display(), format!("the directory is not usable: {reason}"))
    };
    std::fs::create_dir_all(path).map_err(|e| fail(e.to_string()))?;
    let probe = path.join(format!(".ephysd-write-test-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(|e| fail(format!("not writable ({e})")))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_env(pairs: &[(&str, &str)]) -> ConfigSource {
        ConfigSource { file: None, env: pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect() }
    }

    #[test]
    fn defaults_are_the_documented_values() {
        let s = Settings::defaults();
        assert_eq!(s.server.bind, "127.0.0.1");
        assert_eq!(s.server.base_port, 50051);
        assert_eq!(s.device.backbone, "sim-spikes");
        assert_eq!(s.device.channels, 64);
        assert_eq!(s.device.sample_rate_hz, 30000.0);
        assert_eq!(s.cache.seconds, 60);
        assert_eq!(s.recording.base_path, PathBuf::from("./recordings"));
    }

    #[test]
    fn environment_overrides_any_key() {
        let s = load(&with_env(&[
            ("EPHYSD_RECORDING__BASE_PATH", "/data"),
            ("EPHYSD_DEVICE__CHANNELS", "256"),
            ("EPHYSD_DEVICE__ACCELERATED", "true"),
            ("UNRELATED", "x"),
        ]))
        .unwrap();
        assert_eq!(s.recording.base_path, PathBuf::from("/data"));
        assert_eq!(s.device.channels, 256);
        assert!(s.device.accelerated);
    }

    #[test]
    fn a_file_overrides_defaults_and_env_overrides_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[device]\nchannels = 32\nseed = 7\n").unwrap();
        let src = ConfigSource { file: Some(path), env: vec![("EPHYSD_DEVICE__SEED".into(), "9".into())] };
        let s = load(&src).unwrap();
        assert_eq!(s.device.channels, 32);
        assert_eq!(s.device.seed, 9);
    }

    #[test]
    fn out_of_range_values_name_key_value_and_range() {
        let e = load(&with_env(&[("EPHYSD_DEVICE__CHANNELS", "2000")])).unwrap_err().to_string();
        assert_eq!(e, "config key `device.channels` = 2000: allowed 1..=1024");
        let e = load(&with_env(&[("EPHYSD_DEVICE__SAMPLE_RATE_HZ", "31000")])).unwrap_err().to_string();
        assert!(e.contains("device.sample_rate_hz") && e.contains("31000") && e.contains("30000"), "{e}");
        let e = load(&with_env(&[("EPHYSD_CACHE__SECONDS", "0")])).unwrap_err().to_string();
        assert!(e.contains("cache.seconds") && e.contains("1..=600"), "{e}");
        let e = load(&with_env(&[("EPHYSD_DEVICE__BACKBONE", "sim-noise")])).unwrap_err().to_string();
        assert!(e.contains("device.backbone") && e.contains("sim-spikes"), "{e}");
        let e = load(&with_env(&[("EPHYSD_SERVER__BIND", "0.0.0.0")])).unwrap_err().to_string();
        assert!(e.contains("server.bind") && e.contains("loopback"), "{e}");
        assert!(e.contains("missing: server.tls_cert, server.tls_key, server.token_file"), "{e}");
        let e = load(&with_env(&[("EPHYSD_RECORDING__BASE_NAME", "a/b")])).unwrap_err().to_string();
        assert!(e.contains("recording.base_name"), "{e}");
    }

    #[test]
    fn recording_keys_are_checked_and_typed() {
        let s = Settings::defaults();
        assert_eq!(s.recording.recording_type(), RecordingType::ContinuousAndSpikes);
        assert_eq!(s.recording.compression(), Compression::None);
        assert_eq!(s.recording.autostart(), Autostart::Off);
        assert_eq!((s.recording.flush_interval_s, s.recording.min_free_mb), (1.0, 1024));
        let s = load(&with_env(&[
            ("EPHYSD_RECORDING__RECORDING_TYPE", "continuous"),
            ("EPHYSD_RECORDING__COMPRESSION", "deflate"),
            ("EPHYSD_RECORDING__COMPRESSION_LEVEL", "6"),
            ("EPHYSD_RECORDING__AUTOSTART", "record"),
        ]))
        .unwrap();
        assert_eq!(s.recording.recording_type(), RecordingType::Continuous);
        assert_eq!(s.recording.compression(), Compression::Deflate { level: 6 });
        assert_eq!(s.recording.autostart(), Autostart::Record);
        for (key, value, allowed) in [
            ("RECORDING_TYPE", "raw", "continuous, spikes, continuous_and_spikes"),
            ("FLUSH_INTERVAL_S", "0", "0.1..=60"),
            ("ROLLOVER_MB", "5", "16..=1048576"),
            ("ROLLOVER_MINUTES", "-1", "0.05..=1440"),
            ("COMPRESSION", "lz4", "none, deflate"),
            ("COMPRESSION_LEVEL", "10", "1..=9"),
            ("AUTOSTART", "always", "off, stream, record"),
        ] {
            let e = load(&with_env(&[(&format!("EPHYSD_RECORDING__{key}"), value)])).unwrap_err().to_string();
            assert!(
                e.contains(&format!("recording.{}", key.to_lowercase())) && e.contains(value) && e.contains(allowed),
                "{e}"
            );
        }
        let json: serde_json::Value = serde_json::from_str(&s.to_json()).unwrap();
        assert_eq!(json["recording"]["compression_level"], 6);
    }

    #[test]
    fn realtime_choices_are_a_number_or_none() {
        assert_eq!(Settings::defaults().placement(), ThreadPlacement { core: None, fifo_priority: Some(80) });
        let s = load(&with_env(&[("EPHYSD_REALTIME__CORE", "0"), ("EPHYSD_REALTIME__FIFO_PRIORITY", "none")])).unwrap();
        assert_eq!(s.placement(), ThreadPlacement { core: Some(0), fifo_priority: None });
        let e = load(&with_env(&[("EPHYSD_REALTIME__CORE", "-1")])).unwrap_err().to_string();
        assert!(e.contains("realtime.core` = -1") && e.contains("\"none\" (not pinned)"), "{e}");
        let e = load(&with_env(&[("EPHYSD_REALTIME__FIFO_PRIORITY", "0")])).unwrap_err().to_string();
        assert!(e.contains("realtime.fifo_priority` = 0") && e.contains("1..=99"), "{e}");
        let e = load(&with_env(&[("EPHYSD_REALTIME__CORE", "first")])).unwrap_err().to_string();
        assert!(e.contains("first") && e.contains("none"), "{e}");
    }

    #[test]
    fn the_printed_configuration_loads_back_unchanged() {
        let s = load(&with_env(&[("EPHYSD_REALTIME__CORE", "0"), ("EPHYSD_DEVICE__CHANNELS", "32")])).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("printed.toml");
        std::fs::write(&path, s.to_toml()).unwrap();
        assert!(s.to_toml().contains("fifo_priority = 80"), "{}", s.to_toml());
        assert_eq!(load(&ConfigSource { file: Some(path), env: vec![] }).unwrap(), s);
        assert!(Settings::defaults().to_toml().contains("core = \"none\""));
    }

    #[test]
    fn unknown_keys_are_refused_with_their_origin() {
        let e = load(&with_env(&[("EPHYSD_DEVICE__CHANELS", "8")])).unwrap_err().to_string();
        assert!(e.contains("device.chanels") && e.contains("EPHYSD_DEVICE__CHANELS"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[nonsense]\nx = 1\n").unwrap();
        let e = load(&ConfigSource { file: Some(path.clone()), env: vec![] }).unwrap_err().to_string();
        assert!(e.contains("nonsense.x") && e.contains(&path.display().to_string()), "{e}");
    }

    #[test]
    fn a_lan_bind_needs_tls_and_a_token_and_names_what_is_missing() {
        let e = load(&with_env(&[("EPHYSD_SERVER__BIND", "10.0.0.5"), ("EPHYSD_SERVER__TOKEN_FILE", "/etc/t")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing: server.tls_cert, server.tls_key.") && !e.contains("token_file"), "{e}");
        let e = load(&with_env(&[("EPHYSD_SERVER__TLS_CERT", "/etc/c.pem")])).unwrap_err().to_string();
        assert!(e.contains("server.tls_key") && e.contains("server.tls_cert is set"), "{e}");
        let lan = load(&with_env(&[
            ("EPHYSD_SERVER__BIND", "10.0.0.5"),
            ("EPHYSD_SERVER__TLS_CERT", "/etc/c.pem"),
            ("EPHYSD_SERVER__TLS_KEY", "/etc/k.pem"),
            ("EPHYSD_SERVER__TOKEN_FILE", "/etc/t"),
        ]))
        .unwrap();
        assert!(lan.server.tls_enabled() && lan.server.token_enabled() && lan.server.serves_loopback_plain());
        let wildcard = ServerSettings { bind: "0.0.0.0".into(), ..lan.server.clone() };
        assert!(!wildcard.serves_loopback_plain(), "a wildcard bind covers loopback itself");
        let local = Settings::defaults().server;
        assert!(!local.tls_enabled() && !local.token_enabled() && !local.serves_loopback_plain());
    }

    #[test]
    fn a_missing_file_is_named() {
        let e = load(&ConfigSource { file: Some("/nonexistent/ephysd.toml".into()), env: vec![] }).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/ephysd.toml"), "{e}");
    }

    #[test]
    fn wrong_types_are_refused() {
        let e = load(&with_env(&[("EPHYSD_DEVICE__CHANNELS", "many")])).unwrap_err().to_string();
        assert!(e.contains("channels"), "{e}");
    }

    #[test]
    fn every_default_key_is_documented_with_its_default_and_range() {
        let lines: Vec<&str> = DEFAULT_TOML.lines().collect();
        for key in known_keys() {
            let name = key.split('.').nth(1).unwrap();
            let at = lines
                .iter()
                .position(|l| l.starts_with(&format!("{name} = ")))
                .unwrap_or_else(|| panic!("{key} missing"));
            let comment: String = lines[..at].iter().rev().take_while(|l| l.starts_with('#')).copied().collect();
            assert!(comment.contains("Default"), "{key} has no documented default");
            assert!(comment.contains("Allowed"), "{key} has no documented range");
        }
    }

    #[test]
    fn an_unwritable_recording_dir_is_refused() {
        let e = prepare_recording_dir(Path::new("/proc/ephysd-cannot-exist")).unwrap_err().to_string();
        assert!(e.contains("recording.base_path") && e.contains("/proc/ephysd-cannot-exist"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        prepare_recording_dir(&dir.path().join("new/sub")).unwrap();
    }
}
