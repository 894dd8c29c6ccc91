//! The control side of a device: acting on it, as opposed to reading frames from it.
//!
//! Outputs (digital and analog), stimulation and impedance measurement go through [`Control`],
//! held by the control plane; the read side is [`Source`](crate::Source), owned by the
//! acquisition thread. Keeping the two apart keeps each narrow: a board that cannot stimulate
//! still reads frames through the same trait as one that can, and says so in its
//! [`DeviceDescription`](crate::DeviceDescription) and with [`ControlError::Unsupported`].
//!
//! Every call is validated before it reaches the device: a value out of range is an error
//! naming the field and the allowed range, never a clamp.

use crate::device::DeviceError;

/// Largest stimulation current one phase may ask for, µA (the RHS2116's top range, ±2.55 mA).
pub const MAX_STIM_CURRENT_UA: f32 = 2550.0;
/// Longest stimulation phase, µs.
pub const MAX_STIM_PHASE_US: u32 = 100_000;
/// Most phases in one stimulation pulse (mono-, bi- or tri-phasic, as the CL API's StimDesign).
pub const MAX_STIM_PHASES: usize = 3;
/// Full-scale voltage of the analog outputs (DACs), volts either side of zero.
pub const ANALOG_OUT_FULL_SCALE_V: f64 = 10.24;
/// TTL (digital) inputs of a Rhythm board: 0–15.
pub const TTL_INPUTS: u8 = 16;

/// Checks the `input` of [`Control::fast_settle_on_ttl`]: a TTL input 0–15, or `None`.
pub fn check_ttl_input(input: Option<u8>) -> Result<(), ControlError> {
    match input {
        Some(n) if n >= TTL_INPUTS => Err(ControlError::out_of_range(
            "input",
            n,
            format!("0..={} (a TTL input), or none to turn TTL fast settle off", TTL_INPUTS - 1),
        )),
        _ => Ok(()),
    }
}

/// One phase of a current pulse.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct StimPhase {
    /// Duration, µs.
    pub duration_us: u32,
    /// Current, µA; negative is cathodic.
    pub current_ua: f32,
}

/// One stimulation pulse on one channel: 1 to 3 phases, back to back. `Copy` and fixed in
/// size, so it can travel through preallocated queues to a device's real-time side.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StimPulse {
    /// Amplifier channel (index in the frame) to stimulate.
    pub channel: usize,
    phases: [StimPhase; MAX_STIM_PHASES],
    phase_count: u8,
}

impl StimPulse {
    /// A pulse of `phases` on `channel`. Fails, naming the field, for no phases or more than
    /// [`MAX_STIM_PHASES`], a zero or too long duration, or a current that is not finite or
    /// beyond [`MAX_STIM_CURRENT_UA`].
    pub fn new(channel: usize, phases: &[StimPhase]) -> Result<Self, ControlError> {
        if phases.is_empty() || phases.len() > MAX_STIM_PHASES {
            return Err(ControlError::out_of_range("phases", phases.len(), format!("1..={MAX_STIM_PHASES} phases")));
        }
        for p in phases {
            if p.duration_us == 0 || p.duration_us > MAX_STIM_PHASE_US {
                return Err(ControlError::out_of_range(
                    "duration_us",
                    p.duration_us,
                    format!("1..={MAX_STIM_PHASE_US}"),
                ));
            }
            if !p.current_ua.is_finite() || p.current_ua.abs() > MAX_STIM_CURRENT_UA {
                return Err(ControlError::out_of_range(
                    "current_ua",
                    p.current_ua,
                    format!("finite, -{MAX_STIM_CURRENT_UA}..={MAX_STIM_CURRENT_UA}"),
                ));
            }
        }
        let mut all = [StimPhase::default(); MAX_STIM_PHASES];
        all[..phases.len()].copy_from_slice(phases);
        Ok(StimPulse { channel, phases: all, phase_count: phases.len() as u8 })
    }

    /// The pulse's phases, in order.
    pub fn phases(&self) -> &[StimPhase] {
        &self.phases[..self.phase_count as usize]
    }

    /// Total duration of all phases, µs.
    pub fn duration_us(&self) -> u64 {
        self.phases().iter().map(|p| u64::from(p.duration_us)).sum()
    }
}

/// The impedance of one electrode at the test frequency.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Impedance {
    /// Amplifier channel (index in the frame).
    pub channel: usize,
    /// Magnitude, ohms.
    pub magnitude_ohms: f64,
    /// Phase, degrees.
    pub phase_degrees: f64,
}

/// Why a control request was refused or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// The device cannot do this at all (see its description).
    #[error("{device} cannot {what}")]
    Unsupported {
        /// The device's name.
        device: String,
        /// What was asked, as a verb phrase ("stimulate", "measure impedance").
        what: &'static str,
    },
    /// A value outside what the device accepts.
    #[error("{field} = {value}: allowed {allowed}")]
    OutOfRange {
        /// The offending field.
        field: &'static str,
        /// The value given.
        value: String,
        /// What is allowed.
        allowed: String,
    },
    /// The request contradicts a setting in force, which must be undone first.
    #[error("{device} cannot {what} while {setting}; turn that off first")]
    Conflict {
        /// The device's name.
        device: String,
        /// What was asked, as a verb phrase.
        what: &'static str,
        /// The setting in force.
        setting: String,
    },
    /// The request acts on a running stream and none is running.
    #[error("{device} cannot {what} while it is not streaming; start streaming first")]
    NotStreaming {
        /// The device's name.
        device: String,
        /// What was asked, as a verb phrase.
        what: &'static str,
    },
    /// The request needs the device idle and it is streaming.
    #[error("{device} cannot {what} while streaming; stop streaming first")]
    Streaming {
        /// The device's name.
        device: String,
        /// What was asked, as a verb phrase.
        what: &'static str,
    },
    /// Requests arrive faster than the device's queue drains.
    #[error("the {what} queue is full ({capacity} pending); try again after the pending ones are delivered")]
    QueueFull {
        /// What queue.
        what: &'static str,
        /// How many requests it holds.
        capacity: usize,
    },
    /// The device failed while carrying the request out.
    #[error(transparent)]
    Device(#[from] DeviceError),
}

impl ControlError {
    /// An [`ControlError::OutOfRange`] for `field`.
    pub fn out_of_range(field: &'static str, value: impl std::fmt::Display, allowed: impl Into<String>) -> Self {
        ControlError::OutOfRange { field, value: value.to_string(), allowed: allowed.into() }
    }
}

/// Acting on a device. Held by the control plane, never by the acquisition thread; calls may
/// take as long as the device needs (a USB round trip, an impedance sweep).
pub trait Control: Send {
    /// Drives the digital outputs: bit n of `word` is line n. Lines the device does not have
    /// must be zero.
    fn set_digital_out(&mut self, word: u16) -> Result<(), ControlError>;

    /// Sets analog output `output` (0-based) to `volts`, within ±[`ANALOG_OUT_FULL_SCALE_V`].
    fn set_analog_out(&mut self, output: usize, volts: f64) -> Result<(), ControlError>;

    /// Delivers `pulse` as soon as the device can (at the start of the next block).
    fn stimulate(&mut self, pulse: &StimPulse) -> Result<(), ControlError>;

    /// Measures every amplifier channel's electrode impedance.
    fn measure_impedance(&mut self) -> Result<Vec<Impedance>, ControlError>;

    /// Turns the amplifiers' fast settle on or off: while on, every amplifier is held at its
    /// baseline (blanked), as after a large artifact. Devices without it refuse with
    /// [`ControlError::Unsupported`].
    fn fast_settle(&mut self, on: bool) -> Result<(), ControlError> {
        let _ = on;
        Err(ControlError::Unsupported { device: "this device".into(), what: "fast-settle its amplifiers" })
    }

    /// Lets TTL input `input` (0–15) fast-settle the amplifiers: the board holds every
    /// amplifier at its baseline while that input is high, in its own hardware, sample by sample
    /// (Intan RHX "Realtime Control" of fast settle: `enableExternalFastSettle`,
    /// `setExternalFastSettleChannel`). `None` turns it off. An input beyond 15 is refused
    /// naming `input` ([`check_ttl_input`]); devices without it refuse with
    /// [`ControlError::Unsupported`].
    fn fast_settle_on_ttl(&mut self, input: Option<u8>) -> Result<(), ControlError> {
        let _ = input;
        Err(ControlError::Unsupported {
            device: "this device".into(),
            what: "fast-settle its amplifiers from a TTL input",
        })
    }

    /// Sets how late the board samples the MISO line of `port` (0 = A), in its clock steps
    /// (0–15), or `None` for the delay its port scan chose. Devices without cables (the
    /// simulated device) have nothing to set.
    fn set_cable_delay(&mut self, port: usize, delay: Option<u8>) -> Result<(), ControlError> {
        let _ = (port, delay);
        Ok(())
    }

    /// The operations only a SmartBox Pro with a SiNAPS probe has (Allego's MOSI, wire-out,
    /// status-register and flash methods): `Some` on such a device, `None` (the default) on
    /// every other. The daemon reaches them through this without knowing the board type.
    fn sinaps(&mut self) -> Option<&mut dyn crate::sinaps::SinapsControl> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pulses_are_validated_field_by_field() {
        let ok = StimPulse::new(
            3,
            &[StimPhase { duration_us: 160, current_ua: -1.0 }, StimPhase { duration_us: 160, current_ua: 1.0 }],
        )
        .unwrap();
        assert_eq!(ok.phases().len(), 2);
        assert_eq!(ok.duration_us(), 320);
        let e = StimPulse::new(0, &[]).unwrap_err().to_string();
        assert!(e.contains("phases = 0") && e.contains("1..=3"), "{e}");
        let e = StimPulse::new(0, &[StimPhase { duration_us: 0, current_ua: 1.0 }]).unwrap_err().to_string();
        assert!(e.contains("duration_us = 0"), "{e}");
        let e = StimPulse::new(0, &[StimPhase { duration_us: 10, current_ua: f32::NAN }]).unwrap_err().to_string();
        assert!(e.contains("current_ua = NaN") && e.contains("finite"), "{e}");
        let e = StimPulse::new(0, &[StimPhase { duration_us: 10, current_ua: 3000.0 }]).unwrap_err().to_string();
        assert!(e.contains("2550"), "{e}");
    }

    #[test]
    fn ttl_inputs_are_0_to_15() {
        assert!(check_ttl_input(None).is_ok() && check_ttl_input(Some(15)).is_ok());
        let e = check_ttl_input(Some(16)).unwrap_err();
        assert!(matches!(e, ControlError::OutOfRange { field: "input", .. }), "{e}");
        assert!(e.to_string().contains("input = 16") && e.to_string().contains("0..=15"), "{e}");
    }
}
