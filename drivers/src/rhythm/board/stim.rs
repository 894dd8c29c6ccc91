//! Stimulation through RHS2116 headstages: turning a [`StimPulse`] into what the chip and the
//! FPGA's stimulation sequencer need, as Intan's RHX and KonteX's pyxdaq program them.
//!
//! * The chip: one current step for all 16 channels (registers 34 and 35, [`StimStep`]) and,
//!   per channel, a positive and a negative magnitude of up to 255 steps (registers 96–111 and
//!   64–79). [`plan`] chooses the finest of Intan's ten steps that holds the pulse's largest
//!   current (RHX leaves the step to the user, `setStimStepSize`; pyxdaq `enable_stim` refuses a
//!   current above `255 × step`) and rounds each current to whole steps, as RHX's
//!   `setStimSequenceParameters` does (`round(amplitude / currentstep)`).
//! * The sequencer: one unit per amplifier channel of every data stream, programmed through
//!   [`StimRegister`]s (RHX `AbstractRHXController::StimRegister`, `configureStimTrigger`,
//!   `configureStimPulses`; pyxdaq `StimSubsystem.configure`). Its event times count samples
//!   from the trigger; each sample it sets the channel's stimulation-on, polarity, amplifier
//!   settle and charge-recovery bits, which the FPGA writes to the chip (registers 42, 44,
//!   10 or 12, 46 or 48, the last write with the `u` flag) and into every frame (Intan's RHS2000
//!   Rhythm Stim interface: `stim_sequencer.v`, `main.v` `command_selector_stim`).
//!
//! A pulse's phases map onto the sequencer's shapes (`stim_sequencer.v`: at `EventStartStim`
//! polarity `!neg_first`, at `EventStimPhase2` the opposite polarity, or nothing for the dead
//! zone of a biphasic pulse with interphase delay, at `EventStimPhase3` the first polarity
//! again (triphasic) or the second (after the dead zone)):
//!
//! | phases | shape |
//! |---|---|
//! | one | monophasic (phase 2 and 3 never) |
//! | two, opposite signs | biphasic |
//! | three: a, 0, b with b opposite a | biphasic with interphase delay |
//! | three: a, b, c with b opposite a, c of a's sign and magnitude | triphasic |
//!
//! Anything else the chip cannot play (it has one magnitude per polarity and channel) and is
//! refused, naming the field.

use super::rhs_commands::RhsChipSettings;
use crate::control::{ControlError, StimPulse};
use crate::rhythm::rhs::{StimStep, MAX_STIM_MAGNITUDE, STIM_STEPS};

/// An event that never happens (RHX `setStimSequenceParameters`: `Never = 65535`).
pub const NEVER: u16 = 0xffff;
/// The end event of an idle unit: never reached in practice, and not 0, which would re-arm the
/// edge detector every sample (pyxdaq `reset_sequencers` programs 65534).
pub const IDLE_EVENT_END: u16 = 65534;
/// The manual trigger the driver fires pulses with (source 24: `main.v`, `triggers`).
pub const MANUAL_TRIGGER: u8 = 0;

/// The registers of one sequencer unit (RHX `AbstractRHXController::StimRegister`; pyxdaq
/// `constants.StimRegister`; `stim_sequencer.v`, `prog_address`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum StimRegister {
    TriggerParams = 0,
    StimParams = 1,
    EventAmpSettleOn = 2,
    EventAmpSettleOff = 3,
    EventStartStim = 4,
    EventStimPhase2 = 5,
    EventStimPhase3 = 6,
    EventEndStim = 7,
    EventRepeatStim = 8,
    EventChargeRecovOn = 9,
    EventChargeRecovOff = 10,
    EventAmpSettleOnRepeat = 11,
    EventAmpSettleOffRepeat = 12,
    EventEnd = 13,
}

/// The sequencer's pulse shapes (RHX `rhxglobals.h`, `StimShape`; `stim_sequencer.v`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum StimShape {
    Biphasic = 0,
    BiphasicWithInterphaseDelay = 1,
    Triphasic = 2,
    Monophasic = 3,
}

/// The trigger register: enabled (bit 7), trigger on low (bit 6), on an edge (bit 5), the
/// source in bits 4–0 (RHX `configureStimTrigger`).
pub const fn trigger_params(source: u16, enabled: bool, edge: bool, on_low: bool) -> u16 {
    ((enabled as u16) << 7) | ((on_low as u16) << 6) | ((edge as u16) << 5) | (source & 0x1f)
}

/// The pulse register: negative phase first (bit 10), the shape (bits 9–8), pulses − 1 (bits
/// 7–0) (RHX `configureStimPulses`).
pub const fn stim_params(pulses: u16, shape: StimShape, negative_first: bool) -> u16 {
    ((negative_first as u16) << 10) | ((shape as u16) << 8) | (pulses.saturating_sub(1) & 0xff)
}

/// The trigger register of a unit that waits, disarmed, on the driver's manual trigger.
pub const fn disarmed_trigger() -> u16 {
    trigger_params(rhs_manual_source(), false, true, false)
}

/// The trigger register of a unit armed on the driver's manual trigger (rising edge).
pub const fn armed_trigger() -> u16 {
    trigger_params(rhs_manual_source(), true, true, false)
}

const fn rhs_manual_source() -> u16 {
    crate::rhythm::endpoints::rhs::MANUAL_TRIGGER_SOURCE + MANUAL_TRIGGER as u16
}

/// What the board does around each pulse besides the current, as RHX's per-channel
/// stimulation parameters (`enableAmpSettle`, `preStimAmpSettle`, `postStimAmpSettle`,
/// `enableChargeRecovery`, `postStimChargeRecovOn/Off`). Off by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StimOptions {
    /// Amplifier settle from this long before the pulse (the pulse is delayed by it) until
    /// this long after it, µs: (before, after).
    pub amp_settle_us: Option<(u32, u32)>,
    /// Charge recovery from the end of the pulse for this long, µs.
    pub charge_recovery_us: Option<u32>,
}

/// Longest amplifier-settle or charge-recovery window, µs.
pub const MAX_WINDOW_US: u32 = 100_000;

/// One pulse as the chip and the sequencer play it.
#[derive(Debug, Clone, PartialEq)]
pub struct PulsePlan {
    pub step: StimStep,
    /// Magnitudes in steps for the channel's positive and negative currents.
    pub positive: u16,
    pub negative: u16,
    pub shape: StimShape,
    pub negative_first: bool,
    /// Each phase's length in samples.
    pub phase_samples: Vec<u32>,
    /// The sequencer's registers, in the order RHX programs them.
    pub registers: Vec<(StimRegister, u16)>,
}

impl PulsePlan {
    /// `settings` with this pulse's step and magnitudes on `channel`, stimulation enabled.
    pub fn applied_to(&self, settings: &RhsChipSettings, channel: usize) -> RhsChipSettings {
        let mut s = *settings;
        s.stim_enabled = true;
        s.step = self.step;
        s.positive[channel] = self.positive;
        s.negative[channel] = self.negative;
        s
    }
}

/// The finest step that holds `max_ua` in 255 steps.
pub fn step_for(max_ua: f64) -> StimStep {
    STIM_STEPS
        .into_iter()
        .find(|s| max_ua * 1000.0 <= f64::from(MAX_STIM_MAGNITUDE) * f64::from(s.nanoamps) + 1e-6)
        .unwrap_or(STIM_STEPS[STIM_STEPS.len() - 1])
}

/// Plans `pulse` at `rate_hz` with `options`; refuses, naming the field and what is allowed,
/// what the RHS2116 and its sequencer cannot play.
pub fn plan(pulse: &StimPulse, rate_hz: f64, options: &StimOptions) -> Result<PulsePlan, ControlError> {
    let phases = pulse.phases();
    let sign = |c: f32| {
        if c > 0.0 {
            1
        } else if c < 0.0 {
            -1
        } else {
            0
        }
    };
    let signs: Vec<i32> = phases.iter().map(|p| sign(p.current_ua)).collect();
    let shape = match signs.as_slice() {
        [a] if *a != 0 => StimShape::Monophasic,
        [a, b] if *a != 0 && *b == -*a => StimShape::Biphasic,
        [a, 0, b] if *a != 0 && *b == -*a => StimShape::BiphasicWithInterphaseDelay,
        [a, b, c] if *a != 0 && *b == -*a && *c == *a => StimShape::Triphasic,
        _ => {
            return Err(ControlError::out_of_range(
                "current_ua",
                format!("{:?}", phases.iter().map(|p| p.current_ua).collect::<Vec<_>>()),
                "non-zero phases alternating in sign: one phase, two, three, or three with a zero \
                 (interphase) middle",
            ))
        }
    };
    let max_ua = phases.iter().map(|p| f64::from(p.current_ua.abs())).fold(0.0, f64::max);
    let step = step_for(max_ua);
    let step_ua = f64::from(step.nanoamps) / 1000.0;
    let code = |ua: f32| (f64::from(ua.abs()) / step_ua).round() as u16;
    for p in phases {
        if p.current_ua != 0.0 && code(p.current_ua) == 0 {
            return Err(ControlError::out_of_range(
                "current_ua",
                p.current_ua,
                format!(
                    "0, or at least {} µA: the pulse's largest current sets a step of {} µA for the chip",
                    step_ua / 2.0,
                    step_ua
                ),
            ));
        }
    }
    if shape == StimShape::Triphasic && code(phases[0].current_ua) != code(phases[2].current_ua) {
        return Err(ControlError::out_of_range(
            "current_ua",
            phases[2].current_ua,
            format!(
                "{} µA: a triphasic pulse's third phase has its first phase's magnitude (one register per polarity)",
                phases[0].current_ua
            ),
        ));
    }
    let negative_first = signs[0] < 0;
    let (mut positive, mut negative) = (0, 0);
    for p in phases {
        match sign(p.current_ua) {
            1 => positive = code(p.current_ua),
            -1 => negative = code(p.current_ua),
            _ => {}
        }
    }
    let samples = |us: u32| (f64::from(us) * rate_hz / 1e6).round() as u32;
    let mut phase_samples = Vec::with_capacity(phases.len());
    for p in phases {
        let n = samples(p.duration_us);
        if n == 0 {
            return Err(ControlError::out_of_range(
                "duration_us",
                p.duration_us,
                format!("at least {:.1} µs (one sample at {rate_hz} S/s)", 0.5e6 / rate_hz),
            ));
        }
        phase_samples.push(n);
    }
    let (settle_before, settle_after) = match options.amp_settle_us {
        Some((b, a)) => (samples(b), Some(samples(a))),
        None => (0, None),
    };
    let start = settle_before;
    let phase2 = start + phase_samples[0];
    let phase3 = phase_samples.get(1).map(|d| phase2 + d);
    let end_stim = start + phase_samples.iter().sum::<u32>();
    let recovery = options.charge_recovery_us.map(samples);
    let mut last = end_stim;
    if let Some(a) = settle_after {
        last = last.max(end_stim + a);
    }
    if let Some(r) = recovery {
        last = last.max(end_stim + r);
    }
    let event_end = last + 1;
    if event_end >= u32::from(IDLE_EVENT_END) {
        return Err(ControlError::out_of_range(
            "duration_us",
            pulse.duration_us(),
            format!(
                "a pulse and its settle and recovery windows within {} samples ({:.0} ms at {rate_hz} S/s)",
                IDLE_EVENT_END - 1,
                f64::from(IDLE_EVENT_END - 1) / rate_hz * 1e3
            ),
        ));
    }
    let ev = |n: u32| n as u16;
    let (settle_on, settle_off) = match settle_after {
        Some(a) => (ev(0), ev(end_stim + a)),
        None => (NEVER, 0),
    };
    let (recovery_on, recovery_off) = match recovery {
        Some(r) => (ev(end_stim), ev(end_stim + r)),
        None => (NEVER, 0),
    };
    let (event_phase2, event_phase3) = match shape {
        StimShape::Monophasic => (NEVER, NEVER),
        StimShape::Biphasic => (ev(phase2), NEVER),
        _ => (ev(phase2), ev(phase3.expect("three phases"))),
    };
    use StimRegister::*;
    let registers = vec![
        (TriggerParams, armed_trigger()),
        (StimParams, stim_params(1, shape, negative_first)),
        (EventAmpSettleOn, settle_on),
        (EventStartStim, ev(start)),
        (EventStimPhase2, event_phase2),
        (EventStimPhase3, event_phase3),
        (EventEndStim, ev(end_stim)),
        (EventRepeatStim, NEVER),
        (EventAmpSettleOff, settle_off),
        (EventChargeRecovOn, recovery_on),
        (EventChargeRecovOff, recovery_off),
        (EventAmpSettleOnRepeat, NEVER),
        (EventAmpSettleOffRepeat, NEVER),
        (EventEnd, ev(event_end)),
    ];
    Ok(PulsePlan { step, positive, negative, shape, negative_first, phase_samples, registers })
}

/// Checks `options` (field names and ranges as the other control errors).
pub fn check_options(options: &StimOptions) -> Result<(), ControlError> {
    let check = |field, v: u32| {
        if v > MAX_WINDOW_US {
            Err(ControlError::out_of_range(field, v, format!("0..={MAX_WINDOW_US} µs")))
        } else {
            Ok(())
        }
    };
    if let Some((b, a)) = options.amp_settle_us {
        check("amp_settle_before_us", b)?;
        check("amp_settle_after_us", a)?;
    }
    if let Some(r) = options.charge_recovery_us {
        check("charge_recovery_us", r)?;
    }
    Ok(())
}

/// The current one magnitude code stands for at `step`, µA.
pub fn current_ua(step: StimStep, magnitude: u16) -> f64 {
    f64::from(step.nanoamps) * f64::from(magnitude) / 1000.0
}

/// The address-wire value of `register` of unit `channel` in module `stream` (RHX
/// `programStimReg`: `(stream << 8) + (channel << 4) + reg`).
pub const fn program_address(stream: usize, channel: usize, register: StimRegister) -> u32 {
    ((stream as u32) << 8) | ((channel as u32 & 0xf) << 4) | register as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::StimPhase;

    fn pulse(phases: &[(u32, f32)]) -> StimPulse {
        let p: Vec<StimPhase> = phases.iter().map(|&(d, c)| StimPhase { duration_us: d, current_ua: c }).collect();
        StimPulse::new(3, &p).unwrap()
    }

    #[test]
    fn the_step_is_the_finest_that_holds_the_largest_current() {
        assert_eq!(step_for(2.55).nanoamps, 10);
        assert_eq!(step_for(2.56).nanoamps, 20);
        assert_eq!(step_for(100.0).nanoamps, 500);
        assert_eq!(step_for(2550.0).nanoamps, 10000);
        // RHX setStimStepSize(StimStepSize1uA): sel1 98, sel2 1, sel3 0, biases 10.
        let s = step_for(200.0);
        assert_eq!((s.nanoamps, s.step_register(), s.bias_register()), (1000, (1 << 7) | 98, (10 << 4) | 10));
    }

    #[test]
    fn a_cathodic_first_biphasic_pulse_becomes_rhx_s_registers() {
        let plan = plan(&pulse(&[(100, -20.0), (200, 10.0)]), 30000.0, &StimOptions::default()).unwrap();
        assert_eq!(plan.shape, StimShape::Biphasic);
        assert_eq!(plan.step.nanoamps, 100);
        assert_eq!((plan.negative, plan.positive, plan.negative_first), (200, 100, true));
        assert_eq!(plan.phase_samples, [3, 6]);
        let reg = |r| plan.registers.iter().find(|x| x.0 == r).unwrap().1;
        assert_eq!(reg(StimRegister::TriggerParams), 0x80 | 0x20 | 24);
        assert_eq!(reg(StimRegister::StimParams), 1 << 10);
        assert_eq!(
            (reg(StimRegister::EventStartStim), reg(StimRegister::EventStimPhase2), reg(StimRegister::EventEndStim)),
            (0, 3, 9)
        );
        assert_eq!((reg(StimRegister::EventStimPhase3), reg(StimRegister::EventAmpSettleOn)), (NEVER, NEVER));
        assert_eq!(reg(StimRegister::EventEnd), 10);
    }

    #[test]
    fn shapes_follow_the_phases_and_the_rest_is_refused_by_field() {
        let o = StimOptions::default();
        assert_eq!(plan(&pulse(&[(50, 5.0)]), 20000.0, &o).unwrap().shape, StimShape::Monophasic);
        let dz = plan(&pulse(&[(50, 5.0), (100, 0.0), (50, -5.0)]), 20000.0, &o).unwrap();
        assert_eq!(dz.shape, StimShape::BiphasicWithInterphaseDelay);
        let tri = plan(&pulse(&[(50, 5.0), (100, -2.0), (50, 5.0)]), 20000.0, &o).unwrap();
        assert_eq!((tri.shape, tri.positive, tri.negative), (StimShape::Triphasic, 250, 100));
        for bad in [&[(50, 5.0), (50, 5.0)][..], &[(50, 0.0)], &[(50, 5.0), (50, -5.0), (50, -5.0)]] {
            let e = plan(&pulse(bad), 20000.0, &o).unwrap_err().to_string();
            assert!(e.starts_with("current_ua = "), "{e}");
        }
        let e = plan(&pulse(&[(50, 5.0), (50, -5.0), (50, 4.0)]), 20000.0, &o).unwrap_err().to_string();
        assert!(e.contains("current_ua = 4") && e.contains("magnitude"), "{e}");
        let e = plan(&pulse(&[(50, 2000.0), (50, -0.5)]), 20000.0, &o).unwrap_err().to_string();
        assert!(e.contains("current_ua = -0.5") && e.contains("step of 10 µA"), "{e}");
        let e = plan(&pulse(&[(10, 2.0)]), 20000.0, &o).unwrap_err().to_string();
        assert!(e.contains("duration_us = 10") && e.contains("25.0 µs"), "{e}");
        // The longest pulse fits the sequencer's 16-bit event times at the highest rate.
        assert!(plan(&pulse(&[(100_000, 2.0), (100_000, -2.0), (100_000, 2.0)]), 30000.0, &o).is_ok());
    }

    #[test]
    fn settle_and_recovery_windows_frame_the_pulse() {
        let o = StimOptions { amp_settle_us: Some((100, 200)), charge_recovery_us: Some(1000) };
        let plan = plan(&pulse(&[(100, -10.0), (100, 10.0)]), 10000.0, &o).unwrap();
        let reg = |r| plan.registers.iter().find(|x| x.0 == r).unwrap().1;
        assert_eq!(reg(StimRegister::EventAmpSettleOn), 0);
        assert_eq!(reg(StimRegister::EventStartStim), 1);
        assert_eq!(reg(StimRegister::EventEndStim), 3);
        assert_eq!(reg(StimRegister::EventAmpSettleOff), 5);
        assert_eq!((reg(StimRegister::EventChargeRecovOn), reg(StimRegister::EventChargeRecovOff)), (3, 13));
        assert_eq!(reg(StimRegister::EventEnd), 14);
        let e = check_options(&StimOptions { charge_recovery_us: Some(200_000), ..o }).unwrap_err();
        assert!(e.to_string().starts_with("charge_recovery_us = 200000"), "{e}");
    }
}
