//! The keys `ephysd config` reads and changes: the Allego field behind each, and the values
//! each allows, checked here before any call so that a typo changes nothing.
//!
//! Keys are named like the configuration file's (`recording.base_name`), so an operator uses
//! one vocabulary for the file and for the running daemon. Recording keys are fields of
//! `ConfigRecording`, which the daemon replaces whole; core keys are `SetConfigCore` fields,
//! except the device (`core.backbone`), which is a `Restart`.

use ephysd_drivers::rates;
use ephysd_proto::allego::{
    BackboneMode, CableDelay, ConfigCore, ConfigRecording, DataRecordingType, Port, RestartRequest,
    SetConfigCoreRequest,
};

use crate::grpc::backbone;

/// The largest fixed cable delay a port takes (the Intan controllers' 4-bit setting).
pub const MAX_CABLE_DELAY: i32 = 15;

/// An unknown key or a value the key does not allow.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum KeyError {
    #[error("unknown key {key:?}; allowed: {}", key_list())]
    Unknown { key: String },
    #[error("{key} = {value:?}: allowed {allowed}")]
    BadValue { key: String, value: String, allowed: String },
}

/// A key of `ephysd config`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Recording(RecordingKey),
    Core(CoreKey),
}

/// A field of `ConfigRecording`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordingKey {
    BaseName,
    BasePath,
    Timestamp,
    SplitFilesByPort,
    RecordingType,
    ForceStartAtZero,
}

/// A core setting: the sample rate, a port's cable delay, or the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoreKey {
    SampleRate,
    CableDelay(Port),
    Backbone,
}

/// A port's cable delay: fixed, or measured by the controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delay {
    Fixed(i32),
    Auto,
}

/// A value as the daemon reports it, to show.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Text(String),
    Bool(bool),
    RecordingType(DataRecordingType),
    Rate(f64),
    Delay(Delay),
    Backbone(BackboneMode),
    /// A wire value outside what this version knows (shown as the daemon sent it).
    Other(String),
}

/// A change to make: a key with a value it allows.
#[derive(Debug, Clone, PartialEq)]
pub enum Edit {
    Recording(RecordingEdit),
    Core(CoreEdit),
}

/// A change to one field of `ConfigRecording`.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordingEdit {
    BaseName(String),
    BasePath(String),
    Timestamp(bool),
    SplitFilesByPort(bool),
    RecordingType(DataRecordingType),
    ForceStartAtZero(bool),
}

/// A core change.
#[derive(Debug, Clone, PartialEq)]
pub enum CoreEdit {
    SampleRate(f64),
    CableDelay(Port, Delay),
    Backbone(BackboneMode),
}

/// The call that makes a core change.
#[derive(Debug, Clone, PartialEq)]
pub enum CoreCall {
    SetConfigCore(SetConfigCoreRequest),
    Restart(RestartRequest),
}

impl RecordingKey {
    pub const ALL: [RecordingKey; 6] = [
        RecordingKey::BaseName,
        RecordingKey::BasePath,
        RecordingKey::Timestamp,
        RecordingKey::SplitFilesByPort,
        RecordingKey::RecordingType,
        RecordingKey::ForceStartAtZero,
    ];

    pub fn name(self) -> &'static str {
        match self {
            RecordingKey::BaseName => "recording.base_name",
            RecordingKey::BasePath => "recording.base_path",
            RecordingKey::Timestamp => "recording.timestamp",
            RecordingKey::SplitFilesByPort => "recording.split_files_by_port",
            RecordingKey::RecordingType => "recording.recording_type",
            RecordingKey::ForceStartAtZero => "recording.force_start_at_zero",
        }
    }

    /// The field's value in `config` (an unset optional field reads as false, as the daemon
    /// treats it).
    pub fn read(self, config: &ConfigRecording) -> Value {
        match self {
            RecordingKey::BaseName => Value::Text(config.base_file_name.clone()),
            RecordingKey::BasePath => Value::Text(config.base_file_path.clone()),
            RecordingKey::Timestamp => Value::Bool(config.time_stamp.unwrap_or_default()),
            RecordingKey::SplitFilesByPort => Value::Bool(config.split_files_by_port.unwrap_or_default()),
            RecordingKey::ForceStartAtZero => Value::Bool(config.force_start_at_t_stamp0.unwrap_or_default()),
            RecordingKey::RecordingType => DataRecordingType::try_from(config.recording_type)
                .map_or_else(|_| Value::Other(config.recording_type.to_string()), Value::RecordingType),
        }
    }

    fn edit(self, text: &str) -> Result<RecordingEdit, KeyError> {
        let bad = |allowed: &str| bad_value(self.name(), text, allowed);
        Ok(match self {
            RecordingKey::BaseName => {
                crate::config::validate_base_name(text).map_err(|_| bad("1..=128 characters, no path separators"))?;
                RecordingEdit::BaseName(text.to_string())
            }
            RecordingKey::BasePath if text.trim().is_empty() => {
                return Err(bad("an existing directory on the daemon's machine"))
            }
            RecordingKey::BasePath => RecordingEdit::BasePath(text.to_string()),
            RecordingKey::Timestamp => RecordingEdit::Timestamp(parse_bool(text).ok_or_else(|| bad(BOOLS))?),
            RecordingKey::SplitFilesByPort => {
                RecordingEdit::SplitFilesByPort(parse_bool(text).ok_or_else(|| bad(BOOLS))?)
            }
            RecordingKey::ForceStartAtZero => {
                RecordingEdit::ForceStartAtZero(parse_bool(text).ok_or_else(|| bad(BOOLS))?)
            }
            RecordingKey::RecordingType => {
                let kind = RECORDING_TYPES.iter().find(|(_, name)| *name == text).map(|(kind, _)| *kind);
                RecordingEdit::RecordingType(kind.ok_or_else(|| bad(&recording_type_list()))?)
            }
        })
    }
}

impl CoreKey {
    pub fn name(self) -> String {
        match self {
            CoreKey::SampleRate => "core.sample_rate_hz".to_string(),
            CoreKey::CableDelay(port) => format!("core.cable_delay.{}", port.as_str_name()),
            CoreKey::Backbone => "core.backbone".to_string(),
        }
    }

    /// The value in `config`; `None` for a cable delay the daemon does not report.
    pub fn read(self, config: &ConfigCore) -> Option<Value> {
        match self {
            CoreKey::SampleRate => Some(Value::Rate(config.base_samp_freq)),
            CoreKey::Backbone => Some(
                BackboneMode::try_from(config.backbone_mode)
                    .map_or_else(|_| Value::Other(format!("BackboneMode {}", config.backbone_mode)), Value::Backbone),
            ),
            CoreKey::CableDelay(port) => {
                let delays = &config.cable_delays.cable_delays;
                let delay = delays.get(&(port as i32)).or_else(|| delays.values().find(|d| d.port == port as i32))?;
                Some(Value::Delay(if delay.is_auto { Delay::Auto } else { Delay::Fixed(delay.cable_delay) }))
            }
        }
    }

    fn edit(self, text: &str) -> Result<CoreEdit, KeyError> {
        let name = self.name();
        let bad = |allowed: &str| bad_value(&name, text, allowed);
        Ok(match self {
            CoreKey::SampleRate => {
                let hz = text.trim().parse::<f64>().ok().and_then(rates::canonical_sample_rate);
                CoreEdit::SampleRate(hz.ok_or_else(|| bad(&format!("one of {} (Hz)", rates::rate_list())))?)
            }
            CoreKey::CableDelay(port) => {
                let allowed = format!("an integer 0..={MAX_CABLE_DELAY} or auto");
                let delay = match text.trim() {
                    "auto" => Delay::Auto,
                    n => match n.parse::<i32>() {
                        Ok(n) if (0..=MAX_CABLE_DELAY).contains(&n) => Delay::Fixed(n),
                        _ => return Err(bad(&allowed)),
                    },
                };
                CoreEdit::CableDelay(port, delay)
            }
            CoreKey::Backbone => {
                CoreEdit::Backbone(backbone::mode_of(text).ok_or_else(|| bad(&backbone::name_list()))?)
            }
        })
    }
}

impl Key {
    /// Every key whose value is in these messages, in the order `config get` lists them:
    /// recording keys, the core keys, then the cable delays the daemon reports, by port.
    pub fn all(core: &ConfigCore) -> Vec<Key> {
        let mut keys: Vec<Key> = RecordingKey::ALL.into_iter().map(Key::Recording).collect();
        keys.extend([Key::Core(CoreKey::SampleRate), Key::Core(CoreKey::Backbone)]);
        let mut ports: Vec<Port> = PORTS.into_iter().filter(|p| CoreKey::CableDelay(*p).read(core).is_some()).collect();
        ports.sort_by_key(|p| *p as i32);
        keys.extend(ports.into_iter().map(|p| Key::Core(CoreKey::CableDelay(p))));
        keys
    }

    pub fn parse(text: &str) -> Result<Key, KeyError> {
        if let Some(key) = RecordingKey::ALL.into_iter().find(|k| k.name() == text) {
            return Ok(Key::Recording(key));
        }
        match text {
            "core.sample_rate_hz" => return Ok(Key::Core(CoreKey::SampleRate)),
            "core.backbone" => return Ok(Key::Core(CoreKey::Backbone)),
            _ => {}
        }
        text.strip_prefix("core.cable_delay.")
            .and_then(port_named)
            .map(|port| Key::Core(CoreKey::CableDelay(port)))
            .ok_or_else(|| KeyError::Unknown { key: text.to_string() })
    }

    pub fn name(self) -> String {
        match self {
            Key::Recording(k) => k.name().to_string(),
            Key::Core(k) => k.name(),
        }
    }

    /// The change setting this key to `text` makes, if the key allows that value.
    pub fn edit(self, text: &str) -> Result<Edit, KeyError> {
        match self {
            Key::Recording(k) => k.edit(text).map(Edit::Recording),
            Key::Core(k) => k.edit(text).map(Edit::Core),
        }
    }
}

impl Edit {
    pub fn key(&self) -> Key {
        match self {
            Edit::Recording(e) => Key::Recording(e.key()),
            Edit::Core(e) => Key::Core(e.key()),
        }
    }
}

impl RecordingEdit {
    pub fn key(&self) -> RecordingKey {
        match self {
            RecordingEdit::BaseName(_) => RecordingKey::BaseName,
            RecordingEdit::BasePath(_) => RecordingKey::BasePath,
            RecordingEdit::Timestamp(_) => RecordingKey::Timestamp,
            RecordingEdit::SplitFilesByPort(_) => RecordingKey::SplitFilesByPort,
            RecordingEdit::RecordingType(_) => RecordingKey::RecordingType,
            RecordingEdit::ForceStartAtZero(_) => RecordingKey::ForceStartAtZero,
        }
    }

    /// Changes this one field of `config`, leaving the others as they are.
    pub fn apply(&self, config: &mut ConfigRecording) {
        match self {
            RecordingEdit::BaseName(name) => config.base_file_name.clone_from(name),
            RecordingEdit::BasePath(path) => config.base_file_path.clone_from(path),
            RecordingEdit::Timestamp(on) => config.time_stamp = Some(*on),
            RecordingEdit::SplitFilesByPort(on) => config.split_files_by_port = Some(*on),
            RecordingEdit::RecordingType(kind) => config.recording_type = *kind as i32,
            RecordingEdit::ForceStartAtZero(on) => config.force_start_at_t_stamp0 = Some(*on),
        }
    }
}

impl CoreEdit {
    pub fn key(&self) -> CoreKey {
        match self {
            CoreEdit::SampleRate(_) => CoreKey::SampleRate,
            CoreEdit::CableDelay(port, _) => CoreKey::CableDelay(*port),
            CoreEdit::Backbone(_) => CoreKey::Backbone,
        }
    }

    /// The call making this change: `SetConfigCore` with only this field set, or `Restart`
    /// into another device.
    pub fn call(&self) -> CoreCall {
        match self {
            CoreEdit::SampleRate(hz) => {
                CoreCall::SetConfigCore(SetConfigCoreRequest { samp_freq: Some(*hz), ..Default::default() })
            }
            CoreEdit::CableDelay(port, delay) => CoreCall::SetConfigCore(SetConfigCoreRequest {
                cable_delay: Some(CableDelay {
                    port: *port as i32,
                    cable_delay: match delay {
                        Delay::Fixed(n) => *n,
                        Delay::Auto => 0,
                    },
                    is_auto: *delay == Delay::Auto,
                }),
                ..Default::default()
            }),
            CoreEdit::Backbone(mode) => CoreCall::Restart(RestartRequest { mode: *mode as i32 }),
        }
    }
}

impl Value {
    /// As `key = value` lines show it: text quoted, everything else bare.
    pub fn shown(&self) -> String {
        match self {
            Value::Text(text) => serde_json::Value::from(text.as_str()).to_string(),
            other => other.raw(),
        }
    }

    /// Bare, as `config get KEY` prints it for a shell to use.
    pub fn raw(&self) -> String {
        match self {
            Value::Text(text) => text.clone(),
            Value::Bool(on) => on.to_string(),
            Value::RecordingType(kind) => recording_type_name(*kind).to_string(),
            Value::Rate(hz) => rates::format_rate(*hz),
            Value::Delay(Delay::Fixed(n)) => n.to_string(),
            Value::Delay(Delay::Auto) => "auto".to_string(),
            Value::Backbone(mode) => backbone::name_of(*mode).unwrap_or(mode.as_str_name()).to_string(),
            Value::Other(text) => text.clone(),
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Bool(on) => serde_json::Value::from(*on),
            Value::Rate(hz) => serde_json::Value::from(*hz),
            Value::Delay(Delay::Fixed(n)) => serde_json::Value::from(*n),
            other => serde_json::Value::from(other.raw()),
        }
    }
}

/// A port named by its letter (A..H, either case).
pub fn port_named(text: &str) -> Option<Port> {
    Port::from_str_name(&text.to_ascii_uppercase())
}

/// The eight ports, A..H.
pub const PORTS: [Port; 8] = [Port::A, Port::B, Port::C, Port::D, Port::E, Port::F, Port::G, Port::H];

/// The name of a recording type, as `config` reads and writes it (the configuration file's).
pub fn recording_type_name(kind: DataRecordingType) -> &'static str {
    RECORDING_TYPES.iter().find(|(k, _)| *k == kind).map_or("continuous", |(_, name)| name)
}

const RECORDING_TYPES: [(DataRecordingType, &str); 3] = [
    (DataRecordingType::Continuous, "continuous"),
    (DataRecordingType::Spikes, "spikes"),
    (DataRecordingType::ContinuousAndSpikes, "continuous_and_spikes"),
];

const BOOLS: &str = "true or false";

fn recording_type_list() -> String {
    RECORDING_TYPES.iter().map(|(_, name)| *name).collect::<Vec<_>>().join(", ")
}

/// Every key, as messages list what is allowed.
pub fn key_list() -> String {
    let mut names: Vec<String> = RecordingKey::ALL.iter().map(|k| k.name().to_string()).collect();
    names.extend(["core.sample_rate_hz".into(), "core.cable_delay.<A..H>".into(), "core.backbone".into()]);
    names.join(", ")
}

fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

fn bad_value(key: &str, value: &str, allowed: &str) -> KeyError {
    KeyError::BadValue { key: key.to_string(), value: value.to_string(), allowed: allowed.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn edit(key: &str, value: &str) -> Result<Edit, KeyError> {
        Key::parse(key)?.edit(value)
    }

    fn core(delays: &[(Port, i32, bool)]) -> ConfigCore {
        let mut config = ConfigCore {
            base_samp_freq: 10000.0 / 3.0,
            backbone_mode: BackboneMode::SmartboxSimGenLfp as i32,
            ..Default::default()
        };
        config.cable_delays.cable_delays = delays
            .iter()
            .map(|&(port, cable_delay, is_auto)| (port as i32, CableDelay { port: port as i32, cable_delay, is_auto }))
            .collect::<HashMap<_, _>>();
        config
    }

    #[test]
    fn every_key_named_in_the_list_parses_back_to_itself() {
        for name in key_list().split(", ") {
            let name = name.replace("<A..H>", "C");
            assert_eq!(Key::parse(&name).unwrap().name(), name);
        }
        assert_eq!(Key::parse("core.cable_delay.h").unwrap(), Key::Core(CoreKey::CableDelay(Port::H)));
        for unknown in ["recording.base", "core.cable_delay.I", "core.cable_delay.", "device.backbone", ""] {
            let e = Key::parse(unknown).unwrap_err();
            assert!(e.to_string().contains("recording.base_name") && e.to_string().contains("core.backbone"), "{e}");
        }
    }

    #[test]
    fn recording_edits_change_one_field_and_keep_the_rest() {
        let current = ConfigRecording {
            base_file_name: "allego".into(),
            base_file_path: "/data".into(),
            data_source_idx: Some(0),
            time_stamp: Some(true),
            split_files_by_port: Some(false),
            force_start_at_t_stamp0: Some(false),
            recording_type: DataRecordingType::Continuous as i32,
        };
        let cases = [
            ("recording.base_name", "mouse12", Value::Text("mouse12".into())),
            ("recording.base_path", "/mnt/rig", Value::Text("/mnt/rig".into())),
            ("recording.timestamp", "FALSE", Value::Bool(false)),
            ("recording.split_files_by_port", "true", Value::Bool(true)),
            ("recording.force_start_at_zero", "true", Value::Bool(true)),
            (
                "recording.recording_type",
                "continuous_and_spikes",
                Value::RecordingType(DataRecordingType::ContinuousAndSpikes),
            ),
        ];
        for (key, text, expected) in cases {
            let Ok(Edit::Recording(e)) = edit(key, text) else { panic!("{key} {text}") };
            let mut next = current.clone();
            e.apply(&mut next);
            assert_eq!(e.key().read(&next), expected, "{key}");
            for other in RecordingKey::ALL.into_iter().filter(|k| *k != e.key()) {
                assert_eq!(other.read(&next), other.read(&current), "{key} changed {}", other.name());
            }
        }
    }

    #[test]
    fn core_edits_become_the_calls_allego_defines() {
        let call = |key, value| match edit(key, value) {
            Ok(Edit::Core(e)) => e.call(),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            call("core.sample_rate_hz", "20000"),
            CoreCall::SetConfigCore(SetConfigCoreRequest { samp_freq: Some(20000.0), ..Default::default() })
        );
        assert_eq!(
            call("core.sample_rate_hz", "3333.33"),
            CoreCall::SetConfigCore(SetConfigCoreRequest { samp_freq: Some(10000.0 / 3.0), ..Default::default() })
        );
        assert_eq!(
            call("core.cable_delay.B", "auto"),
            CoreCall::SetConfigCore(SetConfigCoreRequest {
                cable_delay: Some(CableDelay { port: Port::B as i32, cable_delay: 0, is_auto: true }),
                ..Default::default()
            })
        );
        assert_eq!(
            call("core.cable_delay.C", "15"),
            CoreCall::SetConfigCore(SetConfigCoreRequest {
                cable_delay: Some(CableDelay { port: Port::C as i32, cable_delay: 15, is_auto: false }),
                ..Default::default()
            })
        );
        assert_eq!(
            call("core.backbone", "sim-sine"),
            CoreCall::Restart(RestartRequest { mode: BackboneMode::SmartboxSimGenSine as i32 })
        );
    }

    #[test]
    fn bad_values_name_the_key_and_what_is_allowed() {
        let cases = [
            ("recording.timestamp", "yes", "true or false"),
            ("recording.recording_type", "both", "continuous, spikes, continuous_and_spikes"),
            ("recording.base_name", "a/b", "no path separators"),
            ("recording.base_name", "", "1..=128"),
            ("recording.base_path", " ", "existing directory"),
            ("core.sample_rate_hz", "44100", "20000, 25000, 30000"),
            ("core.sample_rate_hz", "fast", "30000"),
            ("core.cable_delay.A", "16", "0..=15 or auto"),
            ("core.cable_delay.A", "-1", "0..=15 or auto"),
            ("core.backbone", "sim-nope", "sim-spikes"),
        ];
        for (key, value, allowed) in cases {
            let e = edit(key, value).unwrap_err();
            let text = e.to_string();
            assert!(text.starts_with(&format!("{key} = {value:?}: allowed ")), "{text}");
            assert!(text.contains(allowed), "{text}");
        }
    }

    #[test]
    fn core_values_read_as_the_daemon_reports_them() {
        let c = core(&[(Port::D, 3, false), (Port::B, 0, true)]);
        assert_eq!(CoreKey::SampleRate.read(&c).unwrap().raw(), "3333.33");
        assert_eq!(CoreKey::Backbone.read(&c).unwrap().shown(), "sim-lfp");
        assert_eq!(CoreKey::CableDelay(Port::B).read(&c).unwrap().to_json(), serde_json::json!("auto"));
        assert_eq!(CoreKey::CableDelay(Port::D).read(&c).unwrap().to_json(), serde_json::json!(3));
        assert_eq!(CoreKey::CableDelay(Port::A).read(&c), None);
        let names: Vec<String> = Key::all(&c).into_iter().map(Key::name).collect();
        assert_eq!(&names[6..], ["core.sample_rate_hz", "core.backbone", "core.cable_delay.B", "core.cable_delay.D"]);
        assert_eq!(Value::Text("a \"b\"".into()).shown(), r#""a \"b\"""#);
    }
}
