//! What SmartBox Pro the emulator plays, in the emulator's `key=value` syntax
//! ([`crate::emulator`]'s spec, with `board=sinaps-256`, `sinaps-512` or `sinaps-1024`):
//!
//! ```text
//! board=sinaps-1024 serial=SNP0000001 seed=7 mode=sim-spikes pace=realtime faults=drop@3000+10
//! ```
//!
//! | key | meaning | default |
//! |---|---|---|
//! | `board` | `sinaps-256`, `sinaps-512`, `sinaps-1024`: the probe model the box is sold with | `sinaps-256` |
//! | `probe` | the probe actually connected: `256`, `512`, `1024`, or `none` | the board's |
//! | `serial` | the box's serial number (up to 10 characters) | `EMUSNP0001` |
//! | `firmware` | the design name of the firmware the FPGA runs at power-up (no spaces) | `ephysd_sinaps_emulator` |
//! | `seed`, `mode` | the simulated signal on the pixels (`sim-spikes`, `sim-sine`, `sim-lfp`, `sim-broadband`) | 1, `sim-spikes` |
//! | `pace` | `realtime`: frames appear at the sample rate; `free`: as fast as they are read | `realtime` |
//! | `faults` | comma-separated, as for the Rhythm boards ([`Fault`]): `corrupt@F`, `drop@F+N`, `stall@S[+D]`, `unplug@S[+R]` | none |

use std::fmt;
use std::str::FromStr;

use crate::emulator::spec::{parse_faults, parse_mode, parse_pace, parse_seed};
use crate::emulator::{EmulatorSpecError, Fault};
use crate::sim::SimMode;
use crate::sinaps::SinapsModel;

/// The design name the emulated FPGA runs at power-up.
pub const DEFAULT_FIRMWARE: &str = "ephysd_sinaps_emulator";

/// The emulated SmartBox Pro, fully described.
#[derive(Debug, Clone, PartialEq)]
pub struct SinapsEmulatorSpec {
    /// The probe model the box is sold with (its `board=`).
    pub model: SinapsModel,
    /// The probe connected (`None`: none).
    pub probe: Option<SinapsModel>,
    pub serial: String,
    /// The design name at power-up.
    pub firmware: String,
    pub seed: u64,
    pub mode: SimMode,
    /// Frames appear at the sample rate (`true`) or as fast as they are read.
    pub realtime: bool,
    pub faults: Vec<Fault>,
}

impl Default for SinapsEmulatorSpec {
    fn default() -> Self {
        let model = SinapsModel::ALL[0];
        SinapsEmulatorSpec {
            model,
            probe: Some(model),
            serial: "EMUSNP0001".into(),
            firmware: DEFAULT_FIRMWARE.into(),
            seed: 1,
            mode: SimMode::Spikes,
            realtime: true,
            faults: Vec::new(),
        }
    }
}

fn refuse(key: &str, message: impl Into<String>) -> EmulatorSpecError {
    EmulatorSpecError { key: key.to_string(), message: message.into() }
}

impl SinapsEmulatorSpec {
    /// The FrontPanel module the emulated box is built on, as the vendor library names it.
    pub fn module(&self) -> &'static str {
        "XEM7310A75"
    }

    /// Pixels of the connected probe (0 without one).
    pub fn probe_channels(&self) -> usize {
        self.probe.map_or(0, |p| p.channels())
    }
}

/// Whether `text` is a spec for the emulated SmartBox Pro (its `board=` is a Sinaps one).
pub fn is_sinaps_spec(text: &str) -> bool {
    text.split_whitespace().any(|w| w.strip_prefix("board=").is_some_and(|b| b.starts_with("sinaps-")))
}

impl FromStr for SinapsEmulatorSpec {
    type Err = EmulatorSpecError;

    fn from_str(text: &str) -> Result<SinapsEmulatorSpec, EmulatorSpecError> {
        let mut spec = SinapsEmulatorSpec::default();
        let mut probe: Option<Option<SinapsModel>> = None;
        let boards = || SinapsModel::ALL.iter().map(|m| m.emulator_board).collect::<Vec<_>>().join(", ");
        for word in text.split_whitespace() {
            let (key, value) = word.split_once('=').ok_or_else(|| refuse(word, "expected key=value"))?;
            match key {
                "board" => {
                    spec.model = SinapsModel::from_emulator_board(value)
                        .ok_or_else(|| refuse(key, format!("{value}: allowed {}", boards())))?
                }
                "probe" => {
                    probe = Some(match value {
                        "none" => None,
                        n => Some(
                            n.parse()
                                .ok()
                                .and_then(SinapsModel::from_channels)
                                .ok_or_else(|| refuse(key, format!("{value}: allowed 256, 512, 1024, none")))?,
                        ),
                    })
                }
                "serial" => spec.serial = value.to_string(),
                "firmware" => spec.firmware = value.to_string(),
                "seed" => spec.seed = parse_seed(key, value)?,
                "mode" => spec.mode = parse_mode(key, value)?,
                "pace" => spec.realtime = parse_pace(key, value)?,
                "faults" => spec.faults = parse_faults(key, value)?,
                "ports" | "delays" | "open" => {
                    return Err(refuse(key, "a SmartBox Pro has no headstage ports; its probe is board= (and probe=)"))
                }
                other => {
                    return Err(refuse(
                        other,
                        "unknown key (a SmartBox Pro takes board, probe, serial, firmware, seed, mode, pace, faults)",
                    ))
                }
            }
        }
        spec.probe = probe.unwrap_or(Some(spec.model));
        if spec.serial.is_empty() || spec.serial.len() > 10 || !spec.serial.is_ascii() {
            return Err(refuse("serial", format!("{:?}: 1 to 10 ASCII characters", spec.serial)));
        }
        if spec.firmware.is_empty() || !spec.firmware.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(refuse("firmware", format!("{:?}: printable ASCII without spaces", spec.firmware)));
        }
        Ok(spec)
    }
}

impl fmt::Display for SinapsEmulatorSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "board={} probe={} serial={} firmware={} seed={} mode={} pace={}",
            self.model.emulator_board,
            self.probe.map_or("none".to_string(), |p| p.channels().to_string()),
            self.serial,
            self.firmware,
            self.seed,
            self.mode.name(),
            if self.realtime { "realtime" } else { "free" }
        )?;
        if !self.faults.is_empty() {
            let faults: Vec<String> = self.faults.iter().map(|x| x.to_string()).collect();
            write!(f, " faults={}", faults.join(","))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_reads_back_what_it_prints() {
        let text = "board=sinaps-1024 probe=512 serial=SNP1 firmware=top;Version=3 seed=9 mode=sim-sine pace=free \
                    faults=drop@300+7,corrupt@1000,unplug@2+1";
        let spec: SinapsEmulatorSpec = text.parse().unwrap();
        assert_eq!((spec.model.shanks, spec.probe_channels(), spec.seed), (4, 512, 9));
        assert_eq!(spec.faults[0], Fault::Drop { frame: 300, frames: 7 });
        assert_eq!(spec.to_string().parse::<SinapsEmulatorSpec>().unwrap(), spec);
        let plain: SinapsEmulatorSpec = "board=sinaps-512".parse().unwrap();
        assert_eq!((plain.probe_channels(), plain.firmware.as_str(), plain.realtime), (512, DEFAULT_FIRMWARE, true));
        assert_eq!("probe=none".parse::<SinapsEmulatorSpec>().unwrap().probe, None);
        assert!(is_sinaps_spec("seed=3 board=sinaps-256") && !is_sinaps_spec("board=rhd-controller"));
    }

    #[test]
    fn each_bad_key_is_named_with_what_is_allowed() {
        let e = "board=sinaps-128".parse::<SinapsEmulatorSpec>().unwrap_err();
        assert!(e.key == "board" && e.message.contains("sinaps-256, sinaps-512, sinaps-1024"), "{e}");
        let e = "probe=64".parse::<SinapsEmulatorSpec>().unwrap_err();
        assert!(e.key == "probe" && e.message.contains("none"), "{e}");
        let e = "ports=A:2164".parse::<SinapsEmulatorSpec>().unwrap_err();
        assert!(e.key == "ports" && e.message.contains("no headstage ports"), "{e}");
        let e = "faults=melt@1".parse::<SinapsEmulatorSpec>().unwrap_err();
        assert!(e.key == "faults" && e.message.contains("unplug, stall"), "{e}");
        let e = "serial=ABCDEFGHIJK".parse::<SinapsEmulatorSpec>().unwrap_err();
        assert_eq!(e.key, "serial");
        let e = "colour=red".parse::<SinapsEmulatorSpec>().unwrap_err();
        assert!(e.key == "colour" && e.message.contains("board, probe"), "{e}");
    }
}
