//! Which device to open, as the configuration's `device.*` keys name it.
//!
//! The keys arrive as [`DeviceKeys`] (plain values, deserialised from the `[device]` section)
//! and are checked once into a [`DeviceSpec`], a typed description of one device. Everything
//! after that passes the spec around, never the strings: a misspelt backbone is refused at
//! start, naming the key and the allowed values.

use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::emulator::sinaps::SinapsEmulatorSpec;
use crate::emulator::EmulatorSpec;
use crate::rates::{canonical_sample_rate, rate_list};
use crate::rhythm::board::catalog::{self, BoardModel};
use crate::sim::{SimConfig, SimMode};
use crate::sinaps::SinapsModel;
use crate::MAX_AMPLIFIER_CHANNELS;

/// Frames per block the pipeline accepts: at least 16 (per-block overhead), at most 4096
/// (136 ms at 30 kHz: latency).
pub const FRAMES_PER_BLOCK_RANGE: std::ops::RangeInclusive<u32> = 16..=4096;

/// The `[device]` section of the configuration, as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceKeys {
    /// Which device: a simulated mode today (`sim-spikes`, ...), the hardware families later.
    pub backbone: String,
    /// Amplifier channels.
    pub channels: u32,
    /// Frames per second.
    pub sample_rate_hz: f64,
    /// Seed of the simulated device.
    pub seed: u64,
    /// Run the simulated device as fast as the pipeline takes it instead of in real time.
    pub accelerated: bool,
    /// Frames per block moved through the pipeline at once.
    pub frames_per_block: u32,
    /// Boards: how the FrontPanel operations are reached: `library` (the vendor's
    /// `libokFrontPanel.so`, at [`DeviceKeys::frontpanel_library`]), `emulated` (the
    /// emulated board, in process), or for the `xdaq-gen2-*` backbones `xdaq` (KonteX's own
    /// device library, at [`DeviceKeys::xdaq_library`]; see [`crate::frontpanel::xdaq`]).
    #[serde(default = "default_frontpanel")]
    pub frontpanel: String,
    /// Boards: the FrontPanel library to load.
    #[serde(default = "default_frontpanel_library")]
    pub frontpanel_library: String,
    /// Boards, `frontpanel = "xdaq"`: KonteX's XDAQ gen 2 device manager library to load.
    #[serde(default)]
    pub xdaq_library: String,
    /// Boards: the serial number of the board to open; empty for the first one attached.
    #[serde(default)]
    pub serial: String,
    /// Boards: configure the FPGA from this bitfile when opening; empty to keep what it runs.
    #[serde(default)]
    pub bitfile: String,
    /// `frontpanel = "emulated"`: the emulated board's spec (ports, chips, cable delays,
    /// faults; see `ephysd_drivers::emulator`). Its board follows `backbone`.
    #[serde(default)]
    pub emulator: String,
    /// `backbone = "sim-datasource"`: the recording (an HDF5 file ephysd wrote) to replay.
    #[serde(default)]
    pub replay_file: String,
}

impl Default for DeviceKeys {
    /// The documented defaults of `config/ephysd.toml`: the simulated device, 64 channels at
    /// 30 kHz.
    fn default() -> Self {
        DeviceKeys {
            backbone: "sim-spikes".into(),
            channels: 64,
            sample_rate_hz: 30000.0,
            seed: 1,
            accelerated: false,
            frames_per_block: 128,
            frontpanel: default_frontpanel(),
            frontpanel_library: default_frontpanel_library(),
            xdaq_library: String::new(),
            serial: String::new(),
            bitfile: String::new(),
            emulator: String::new(),
            replay_file: String::new(),
        }
    }
}

fn default_frontpanel() -> String {
    "library".into()
}

fn default_frontpanel_library() -> String {
    "libokFrontPanel.so".into()
}

/// A device, fully specified and checked.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum DeviceSpec {
    /// The built-in simulated device.
    Simulated(SimConfig),
    /// An RHD board of the Rhythm family.
    Rhythm(RhythmSpec),
    /// A recording played back as if it were being acquired (`sim-datasource`).
    Replay(ReplaySpec),
    /// A SmartBox Pro with a SiNAPS probe.
    Sinaps(SinapsSpec),
    /// An XDAQ gen 2 board reached through KonteX's own device library
    /// (`frontpanel = "xdaq"`), which this version can only examine ([`crate::frontpanel::xdaq`]).
    XdaqLibrary(XdaqLibrarySpec),
}

/// An XDAQ gen 2 board through KonteX's device library, as configured.
#[derive(Debug, Clone, PartialEq)]
pub struct XdaqLibrarySpec {
    /// One of the `xdaq-gen2-*` models.
    pub model: BoardModel,
    pub sample_rate_hz: f64,
    pub frames_per_block: usize,
    /// Open this board; `None` for the first one attached.
    pub serial: Option<String>,
    /// The device manager library (`device.xdaq_library`).
    pub library: PathBuf,
}

/// The backbone name of recording playback (Allego's `SMARTBOX_SIM_DATASOURCE`).
pub const REPLAY_BACKBONE: &str = "sim-datasource";

/// A recording to play back.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplaySpec {
    /// The recording file.
    pub path: PathBuf,
    /// Play as fast as the pipeline takes it instead of at the recording's rate.
    pub accelerated: bool,
    pub frames_per_block: usize,
}

/// Where a board's FrontPanel operations come from.
#[derive(Debug, Clone, PartialEq)]
pub enum PanelSource {
    /// The vendor library (or a stand-in exporting its C entry points) at this path.
    Library(PathBuf),
    /// The emulated board, in process.
    Emulated(EmulatorSpec),
}

/// An RHD board, fully specified and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct RhythmSpec {
    pub model: BoardModel,
    pub sample_rate_hz: f64,
    pub frames_per_block: usize,
    /// Open this board; `None` for the first one attached.
    pub serial: Option<String>,
    pub bitfile: Option<PathBuf>,
    pub panel: PanelSource,
}

/// Where a SmartBox Pro's FrontPanel operations come from.
#[derive(Debug, Clone, PartialEq)]
pub enum SinapsPanelSource {
    /// The vendor library (or a stand-in exporting its C entry points) at this path.
    Library(PathBuf),
    /// The emulated SmartBox Pro, in process.
    Emulated(SinapsEmulatorSpec),
}

/// A SmartBox Pro with a SiNAPS probe, fully specified and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct SinapsSpec {
    pub model: SinapsModel,
    pub sample_rate_hz: f64,
    pub frames_per_block: usize,
    /// Open this box; `None` for the first one attached.
    pub serial: Option<String>,
    pub bitfile: Option<PathBuf>,
    pub panel: SinapsPanelSource,
}

/// A `device.*` key that does not name a usable device.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key} = {value}: {allowed}")]
pub struct DeviceSpecError {
    /// The key within the `[device]` section (`channels`, `backbone`, ...).
    pub key: &'static str,
    /// The value given.
    pub value: String,
    /// What is allowed.
    pub allowed: String,
}

fn refuse(key: &'static str, value: impl std::fmt::Display, allowed: impl Into<String>) -> DeviceSpecError {
    DeviceSpecError { key, value: value.to_string(), allowed: allowed.into() }
}

/// Every `device.backbone` value this version can open, in the order messages list them.
pub fn backbone_names() -> Vec<&'static str> {
    SimMode::ALL
        .iter()
        .map(|m| m.name())
        .chain([REPLAY_BACKBONE])
        .chain(catalog::driven_backbones())
        .chain(crate::sinaps::backbones())
        .collect()
}

/// The FrontPanel library the keys name, checked.
fn library_path(keys: &DeviceKeys) -> Result<PathBuf, DeviceSpecError> {
    if keys.frontpanel_library.is_empty() {
        return Err(refuse("frontpanel_library", "\"\"", "the path of libokFrontPanel.so"));
    }
    Ok(PathBuf::from(&keys.frontpanel_library))
}

/// The SmartBox Pro spec the hardware keys describe for `model`.
fn sinaps_spec(keys: &DeviceKeys, model: SinapsModel, rate: f64) -> Result<SinapsSpec, DeviceSpecError> {
    let panel = match keys.frontpanel.as_str() {
        "library" => SinapsPanelSource::Library(library_path(keys)?),
        "emulated" => {
            let text = if keys.emulator.split_whitespace().any(|w| w.starts_with("board=")) {
                keys.emulator.clone()
            } else {
                format!("board={} {}", model.emulator_board, keys.emulator)
            };
            let spec: SinapsEmulatorSpec = text
                .parse()
                .map_err(|e: crate::emulator::EmulatorSpecError| refuse("emulator", &keys.emulator, e.to_string()))?;
            if spec.model != model {
                return Err(refuse(
                    "emulator",
                    &keys.emulator,
                    format!(
                        "board={} does not match backbone {} (board={})",
                        spec.model.emulator_board, model.backbone, model.emulator_board
                    ),
                ));
            }
            SinapsPanelSource::Emulated(spec)
        }
        other => return Err(refuse("frontpanel", other, "allowed: library, emulated")),
    };
    Ok(SinapsSpec {
        model,
        sample_rate_hz: rate,
        frames_per_block: keys.frames_per_block as usize,
        serial: (!keys.serial.is_empty()).then(|| keys.serial.clone()),
        bitfile: (!keys.bitfile.is_empty()).then(|| PathBuf::from(&keys.bitfile)),
        panel,
    })
}

/// Whether `model` is an XDAQ gen 2 board, the ones KonteX reaches through its own library.
fn is_xdaq_gen2(model: &BoardModel) -> bool {
    use crate::rhythm::{Board, XdaqGeneration};
    matches!(model.board, Board::XdaqRhd(XdaqGeneration::Two) | Board::XdaqRhs(XdaqGeneration::Two))
}

/// The `device.frontpanel` values a board model takes.
fn frontpanel_allowed(model: &BoardModel) -> String {
    if is_xdaq_gen2(model) {
        "allowed: library, emulated, xdaq".into()
    } else {
        "allowed: library, emulated".into()
    }
}

/// The spec of an XDAQ gen 2 board through KonteX's device library (`frontpanel = "xdaq"`).
fn xdaq_library_spec(keys: &DeviceKeys, model: BoardModel, rate: f64) -> Result<XdaqLibrarySpec, DeviceSpecError> {
    if !is_xdaq_gen2(&model) {
        return Err(refuse(
            "frontpanel",
            "xdaq",
            format!(
                "KonteX's device library is for the XDAQ gen 2 backbones (xdaq-gen2-*), not {}; {}",
                model.backbone,
                frontpanel_allowed(&model)
            ),
        ));
    }
    if keys.xdaq_library.is_empty() {
        return Err(refuse(
            "xdaq_library",
            "\"\"",
            "the path of KonteX's XDAQ device manager library (pylibxdaq's managers/ folder)",
        ));
    }
    Ok(XdaqLibrarySpec {
        model,
        sample_rate_hz: rate,
        frames_per_block: keys.frames_per_block as usize,
        serial: (!keys.serial.is_empty()).then(|| keys.serial.clone()),
        library: PathBuf::from(&keys.xdaq_library),
    })
}

/// The board spec the hardware keys describe for `model`.
fn rhythm_spec(keys: &DeviceKeys, model: BoardModel, rate: f64) -> Result<RhythmSpec, DeviceSpecError> {
    let panel = match keys.frontpanel.as_str() {
        "library" => PanelSource::Library(library_path(keys)?),
        "emulated" => {
            let text = if keys.emulator.split_whitespace().any(|w| w.starts_with("board=")) {
                keys.emulator.clone()
            } else {
                format!("board={} {}", model.board.name(), keys.emulator)
            };
            let spec: EmulatorSpec = text
                .parse()
                .map_err(|e: crate::emulator::EmulatorSpecError| refuse("emulator", &keys.emulator, e.to_string()))?;
            if spec.board != model.board {
                return Err(refuse(
                    "emulator",
                    &keys.emulator,
                    format!(
                        "board={} does not match backbone {} (board={})",
                        spec.board.name(),
                        model.backbone,
                        model.board.name()
                    ),
                ));
            }
            PanelSource::Emulated(spec)
        }
        other => return Err(refuse("frontpanel", other, frontpanel_allowed(&model))),
    };
    Ok(RhythmSpec {
        model,
        sample_rate_hz: rate,
        frames_per_block: keys.frames_per_block as usize,
        serial: (!keys.serial.is_empty()).then(|| keys.serial.clone()),
        bitfile: (!keys.bitfile.is_empty()).then(|| PathBuf::from(&keys.bitfile)),
        panel,
    })
}

impl DeviceSpec {
    /// Checks `keys` and builds the spec they describe.
    pub fn from_keys(keys: &DeviceKeys) -> Result<DeviceSpec, DeviceSpecError> {
        if keys.backbone == REPLAY_BACKBONE {
            if keys.replay_file.is_empty() {
                return Err(refuse("replay_file", "\"\"", "the recording to replay (an .h5 file ephysd wrote)"));
            }
            if !FRAMES_PER_BLOCK_RANGE.contains(&keys.frames_per_block) {
                let (lo, hi) = FRAMES_PER_BLOCK_RANGE.into_inner();
                return Err(refuse("frames_per_block", keys.frames_per_block, format!("allowed {lo}..={hi}")));
            }
            return Ok(DeviceSpec::Replay(ReplaySpec {
                path: PathBuf::from(&keys.replay_file),
                accelerated: keys.accelerated,
                frames_per_block: keys.frames_per_block as usize,
            }));
        }
        let sinaps = SinapsModel::from_backbone(&keys.backbone);
        let hardware = match sinaps {
            Some(_) => None,
            None => catalog::model_of(&keys.backbone).map_err(|why| refuse("backbone", &keys.backbone, why))?,
        };
        let mode = match hardware {
            Some(_) => None,
            None if sinaps.is_some() => None,
            None => Some(SimMode::from_str(&keys.backbone).map_err(|_| {
                refuse("backbone", &keys.backbone, format!("allowed: {}", backbone_names().join(", ")))
            })?),
        };
        if !(1..=MAX_AMPLIFIER_CHANNELS as u32).contains(&keys.channels) {
            return Err(refuse("channels", keys.channels, format!("allowed 1..={MAX_AMPLIFIER_CHANNELS}")));
        }
        let rate = canonical_sample_rate(keys.sample_rate_hz)
            .ok_or_else(|| refuse("sample_rate_hz", keys.sample_rate_hz, format!("allowed: {}", rate_list())))?;
        if !FRAMES_PER_BLOCK_RANGE.contains(&keys.frames_per_block) {
            let (lo, hi) = FRAMES_PER_BLOCK_RANGE.into_inner();
            return Err(refuse("frames_per_block", keys.frames_per_block, format!("allowed {lo}..={hi}")));
        }
        if let Some(model) = sinaps {
            return Ok(DeviceSpec::Sinaps(sinaps_spec(keys, model, rate)?));
        }
        let Some(mode) = mode else {
            let model = hardware.expect("a hardware backbone when not simulated");
            if keys.frontpanel == "xdaq" {
                return Ok(DeviceSpec::XdaqLibrary(xdaq_library_spec(keys, model, rate)?));
            }
            return Ok(DeviceSpec::Rhythm(rhythm_spec(keys, model, rate)?));
        };
        Ok(DeviceSpec::Simulated(SimConfig {
            mode,
            amplifier_channels: keys.channels as usize,
            sample_rate_hz: rate,
            seed: keys.seed,
            accelerated: keys.accelerated,
            frames_per_block: keys.frames_per_block as usize,
            ..SimConfig::default()
        }))
    }

    /// The device's `device.backbone` name.
    pub fn backbone(&self) -> &'static str {
        match self {
            DeviceSpec::Simulated(c) => c.mode.name(),
            DeviceSpec::Rhythm(r) => r.model.backbone,
            DeviceSpec::Replay(_) => REPLAY_BACKBONE,
            DeviceSpec::Sinaps(s) => s.model.backbone,
            DeviceSpec::XdaqLibrary(x) => x.model.backbone,
        }
    }

    /// The frames per second the spec asks for.
    pub fn sample_rate_hz(&self) -> f64 {
        match self {
            DeviceSpec::Simulated(c) => c.sample_rate_hz,
            DeviceSpec::Rhythm(r) => r.sample_rate_hz,
            DeviceSpec::Sinaps(s) => s.sample_rate_hz,
            DeviceSpec::XdaqLibrary(x) => x.sample_rate_hz,
            // The recording's own rate; the replay's description says it once opened.
            DeviceSpec::Replay(_) => f64::NAN,
        }
    }

    /// The same device at another sample rate, which must be one the device can run at.
    pub fn with_sample_rate(&self, hz: f64) -> Result<DeviceSpec, DeviceSpecError> {
        let rate = canonical_sample_rate(hz)
            .ok_or_else(|| refuse("sample_rate_hz", hz, format!("allowed: {}", rate_list())))?;
        match self {
            DeviceSpec::Simulated(c) => Ok(DeviceSpec::Simulated(SimConfig { sample_rate_hz: rate, ..c.clone() })),
            DeviceSpec::Rhythm(r) => Ok(DeviceSpec::Rhythm(RhythmSpec { sample_rate_hz: rate, ..r.clone() })),
            DeviceSpec::Sinaps(s) => Ok(DeviceSpec::Sinaps(SinapsSpec { sample_rate_hz: rate, ..s.clone() })),
            DeviceSpec::XdaqLibrary(x) => {
                Ok(DeviceSpec::XdaqLibrary(XdaqLibrarySpec { sample_rate_hz: rate, ..x.clone() }))
            }
            DeviceSpec::Replay(r) => Err(refuse(
                "sample_rate_hz",
                hz,
                format!("a replay runs at its recording's rate ({})", r.path.display()),
            )),
        }
    }

    /// The device `backbone` names, keeping this spec's channels, rate and other settings.
    /// A backbone this version cannot drive is refused, naming the ones it can.
    pub fn with_backbone(&self, backbone: &str) -> Result<DeviceSpec, DeviceSpecError> {
        if backbone == REPLAY_BACKBONE || matches!(self, DeviceSpec::Replay(_)) {
            return Err(refuse(
                "backbone",
                backbone,
                "a replay is chosen in the configuration file (device.backbone and device.replay_file), then the daemon restarted",
            ));
        }
        if let Some(model) = SinapsModel::from_backbone(backbone) {
            return match self {
                DeviceSpec::Sinaps(s) if s.model == model => Ok(self.clone()),
                _ => Err(refuse(
                    "backbone",
                    backbone,
                    "a SmartBox Pro's probe is chosen in the configuration file (device.backbone and device.frontpanel), then the daemon restarted",
                )),
            };
        }
        let hardware = catalog::model_of(backbone).map_err(|why| refuse("backbone", backbone, why))?;
        if let Some(model) = hardware {
            return match self {
                DeviceSpec::Rhythm(r) => Ok(DeviceSpec::Rhythm(RhythmSpec { model, ..r.clone() })),
                DeviceSpec::XdaqLibrary(x) if is_xdaq_gen2(&model) => {
                    Ok(DeviceSpec::XdaqLibrary(XdaqLibrarySpec { model, ..x.clone() }))
                }
                DeviceSpec::Replay(_) => unreachable!("refused above"),
                DeviceSpec::Simulated(_) | DeviceSpec::Sinaps(_) | DeviceSpec::XdaqLibrary(_) => Err(refuse(
                    "backbone",
                    backbone,
                    "a board is chosen in the configuration file (device.backbone and device.frontpanel), then the daemon restarted",
                )),
            };
        }
        let mode = SimMode::from_str(backbone).map_err(|_| {
            refuse("backbone", backbone, format!("this version drives: {}", backbone_names().join(", ")))
        })?;
        match self {
            DeviceSpec::Simulated(c) => Ok(DeviceSpec::Simulated(SimConfig { mode, ..c.clone() })),
            DeviceSpec::Rhythm(_) | DeviceSpec::Replay(_) | DeviceSpec::Sinaps(_) | DeviceSpec::XdaqLibrary(_) => {
                Err(refuse(
                "backbone",
                backbone,
                "the simulated device is chosen in the configuration file (device.backbone), then the daemon restarted",
            ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> DeviceKeys {
        DeviceKeys::default()
    }

    #[test]
    fn good_keys_make_a_simulated_device() {
        let spec = DeviceSpec::from_keys(&DeviceKeys { backbone: "sim-lfp".into(), sample_rate_hz: 3333.33, ..keys() })
            .unwrap();
        assert_eq!(spec.backbone(), "sim-lfp");
        let DeviceSpec::Simulated(c) = spec else { panic!("simulated") };
        assert_eq!((c.mode, c.amplifier_channels, c.sample_rate_hz), (SimMode::Lfp, 64, 10000.0 / 3.0));
    }

    #[test]
    fn a_spec_changes_rate_or_backbone_and_keeps_the_rest() {
        let spec = DeviceSpec::from_keys(&keys()).unwrap();
        let slower = spec.with_sample_rate(20000.0).unwrap();
        assert_eq!((slower.sample_rate_hz(), slower.backbone()), (20000.0, "sim-spikes"));
        let e = spec.with_sample_rate(44100.0).unwrap_err();
        assert!(e.key == "sample_rate_hz" && e.allowed.contains("30000"), "{e}");
        let sine = spec.with_backbone("sim-sine").unwrap();
        assert_eq!((sine.backbone(), sine.sample_rate_hz()), ("sim-sine", 30000.0));
        let DeviceSpec::Simulated(c) = &sine else { panic!("simulated") };
        assert_eq!(c.amplifier_channels, 64);
        let e = spec.with_backbone("xdaq-one-rec").unwrap_err();
        assert!(e.to_string().contains("xdaq-one-rec") && e.allowed.contains("configuration file"), "{e}");
        let e = spec.with_backbone("sim-noise").unwrap_err();
        assert!(e.allowed.contains("sim-spikes"), "{e}");
    }

    #[test]
    fn each_bad_key_is_named_with_what_is_allowed() {
        let e = DeviceSpec::from_keys(&DeviceKeys { backbone: "sim-noise".into(), ..keys() }).unwrap_err();
        assert_eq!(e.key, "backbone");
        assert!(e.allowed.contains("sim-spikes, sim-sine, sim-lfp, sim-broadband, sim-datasource, intan-usb2"), "{e}");
        let e = DeviceSpec::from_keys(&DeviceKeys { channels: 2000, ..keys() }).unwrap_err();
        assert_eq!(e.to_string(), "channels = 2000: allowed 1..=1024");
        let e = DeviceSpec::from_keys(&DeviceKeys { sample_rate_hz: 44100.0, ..keys() }).unwrap_err();
        assert!(e.key == "sample_rate_hz" && e.allowed.contains("3333.33") && e.allowed.contains("30000"), "{e}");
        let e = DeviceSpec::from_keys(&DeviceKeys { frames_per_block: 8, ..keys() }).unwrap_err();
        assert_eq!(e.to_string(), "frames_per_block = 8: allowed 16..=4096");
    }

    #[test]
    fn a_board_backbone_makes_a_board_spec_and_the_rest_are_refused_with_why() {
        let spec = DeviceSpec::from_keys(&DeviceKeys {
            backbone: "intan-recording-controller-1024".into(),
            frontpanel: "emulated".into(),
            emulator: "ports=A:2164 delays=A:7".into(),
            serial: "EMU0000001".into(),
            ..keys()
        })
        .unwrap();
        let DeviceSpec::Rhythm(r) = &spec else { panic!("a board") };
        assert_eq!((r.model.ports, r.serial.as_deref()), (8, Some("EMU0000001")));
        let PanelSource::Emulated(e) = &r.panel else { panic!("emulated") };
        assert_eq!((e.board, e.ports[0].cable_delay), (crate::rhythm::Board::RhdController, 7));
        let e = DeviceSpec::from_keys(&DeviceKeys {
            backbone: "intan-usb2".into(),
            frontpanel: "emulated".into(),
            emulator: "board=rhd-controller".into(),
            ..keys()
        })
        .unwrap_err();
        assert!(e.key == "emulator" && e.allowed.contains("does not match backbone intan-usb2"), "{e}");
        let e =
            DeviceSpec::from_keys(&DeviceKeys { backbone: "xdaq-one-rec".into(), frontpanel: "usb".into(), ..keys() })
                .unwrap_err();
        assert_eq!(e.to_string(), "frontpanel = usb: allowed: library, emulated");
        for (backbone, why) in [("smartbox-pro", "not public"), ("smartbox-classic", "not public")] {
            let e = DeviceSpec::from_keys(&DeviceKeys { backbone: backbone.into(), ..keys() }).unwrap_err();
            assert!(e.key == "backbone" && e.allowed.contains(why), "{e}");
        }
    }

    #[test]
    fn the_sinaps_backbones_make_smartbox_pro_specs() {
        for model in SinapsModel::ALL {
            let spec = DeviceSpec::from_keys(&DeviceKeys {
                backbone: model.backbone.into(),
                frontpanel: "emulated".into(),
                emulator: "seed=4 pace=free".into(),
                ..keys()
            })
            .unwrap();
            assert_eq!(spec.backbone(), model.backbone);
            assert!(backbone_names().contains(&model.backbone));
            let DeviceSpec::Sinaps(s) = &spec else { panic!("a SmartBox Pro") };
            let SinapsPanelSource::Emulated(e) = &s.panel else { panic!("emulated") };
            assert_eq!((e.model, e.seed, e.realtime), (model, 4, false));
            assert_eq!(spec.with_sample_rate(20000.0).unwrap().sample_rate_hz(), 20000.0);
            assert_eq!(spec.with_backbone(model.backbone).unwrap(), spec);
            let e = spec.with_backbone("sim-spikes").unwrap_err();
            assert!(e.allowed.contains("configuration file"), "{e}");
            let spec = DeviceSpec::from_keys(&DeviceKeys { backbone: model.backbone.into(), ..keys() }).unwrap();
            let DeviceSpec::Sinaps(s) = &spec else { panic!("a SmartBox Pro") };
            assert!(matches!(s.panel, SinapsPanelSource::Library(_)));
        }
        let e = DeviceSpec::from_keys(&DeviceKeys {
            backbone: "smartbox-pro-sinaps-512".into(),
            frontpanel: "emulated".into(),
            emulator: "board=sinaps-256".into(),
            ..keys()
        })
        .unwrap_err();
        assert!(e.key == "emulator" && e.allowed.contains("does not match backbone smartbox-pro-sinaps-512"), "{e}");
        let e = DeviceSpec::from_keys(&DeviceKeys {
            backbone: "smartbox-pro-sinaps-512".into(),
            frontpanel: "emulated".into(),
            emulator: "ports=A:2164".into(),
            ..keys()
        })
        .unwrap_err();
        assert!(e.key == "emulator" && e.allowed.contains("ports"), "{e}");
    }

    #[test]
    fn the_xdaq_stim_backbones_make_rhs_board_specs() {
        use crate::rhythm::{Board, XdaqGeneration};
        for (backbone, board) in [
            ("xdaq-one-stim", Board::XdaqRhs(XdaqGeneration::One)),
            ("xdaq-core-stim", Board::XdaqRhs(XdaqGeneration::One)),
            ("xdaq-gen2-one-stim", Board::XdaqRhs(XdaqGeneration::Two)),
            ("xdaq-gen2-core-stim", Board::XdaqRhs(XdaqGeneration::Two)),
        ] {
            let spec = DeviceSpec::from_keys(&DeviceKeys {
                backbone: backbone.into(),
                frontpanel: "emulated".into(),
                emulator: "ports=A:2116+2116,C:2116 delays=C:6".into(),
                ..keys()
            })
            .unwrap();
            assert_eq!(spec.backbone(), backbone);
            let DeviceSpec::Rhythm(r) = &spec else { panic!("a board") };
            assert_eq!((r.model.board, r.model.ports), (board, 4), "{backbone}");
            let PanelSource::Emulated(e) = &r.panel else { panic!("emulated") };
            assert_eq!((e.board, e.amplifier_channels(), e.ports[1].cable_delay), (board, 48, 6));
            assert!(backbone_names().contains(&backbone));
            // Through the vendor library too.
            let spec = DeviceSpec::from_keys(&DeviceKeys { backbone: backbone.into(), ..keys() }).unwrap();
            let DeviceSpec::Rhythm(r) = &spec else { panic!("a board") };
            assert!(matches!(r.panel, PanelSource::Library(_)));
        }
        let e = DeviceSpec::from_keys(&DeviceKeys {
            backbone: "xdaq-one-stim".into(),
            frontpanel: "emulated".into(),
            emulator: "ports=A:2164".into(),
            ..keys()
        })
        .unwrap_err();
        assert!(e.key == "emulator" && e.allowed.contains("RHS headstages (2116)"), "{e}");
        let e = DeviceSpec::from_keys(&DeviceKeys {
            backbone: "xdaq-one-rec".into(),
            frontpanel: "emulated".into(),
            emulator: "board=xdaq-rhs-gen1 ports=A:2116".into(),
            ..keys()
        })
        .unwrap_err();
        assert!(e.allowed.contains("does not match backbone xdaq-one-rec"), "{e}");
    }
}
