//! The RHS FPGA's stimulation sequencer of one data stream: sixteen units, one per amplifier
//! channel, stepped once per sample as Intan's RHS2000 Rhythm Stim interface steps them
//! (`stim_sequencer.v`, revision 1.0): trigger selection at the start of the sample, then in
//! order the trigger check, amplifier settle and charge recovery, the start of stimulation,
//! phase 2, phase 3, the end of stimulation, and the counter (repeat, end, or one more).
//!
//! What it drives reaches the chip through the FPGA's command selector in stimulation command
//! mode (`main.v`, `command_selector_stim`): aux slot 0 writes register 42 (stimulation on),
//! slot 1 register 44 (polarity), slot 2 register 10 or 12 (amplifier settle) when a unit's
//! settle bit changed this sample and reads the compliance monitor (40) otherwise, slot 3
//! register 46 or 48 (charge recovery) with the `u` flag (and `m` after a compliance read).

use crate::rhythm::rhs::RhsCommand;

/// The registers of one unit, by [`StimRegister`](crate::rhythm::board::stim::StimRegister)
/// address.
const REGISTERS: usize = 14;

const BIPHASIC_DEAD_ZONE: u16 = 1;
const TRIPHASIC: u16 = 2;

/// One stream's sixteen units and their outputs.
#[derive(Debug, Clone)]
pub struct StimSequencer {
    program: [[u16; REGISTERS]; 16],
    counter: [u16; 16],
    stim_counter: [u16; 16],
    waiting_for_trigger: u16,
    waiting_for_edge: u16,
    /// Outputs, one bit per channel.
    pub stim_on: u16,
    pub stim_polarity: u16,
    pub amp_settle: u16,
    pub charge_recovery: u16,
    /// A unit changed its settle bit this sample (the FPGA then writes the settle register).
    pub amp_settle_changed: bool,
}

impl Default for StimSequencer {
    /// As after the FPGA's reset: every unit waiting for a trigger (and an edge), outputs off.
    fn default() -> Self {
        StimSequencer {
            program: [[0; REGISTERS]; 16],
            counter: [0; 16],
            stim_counter: [0; 16],
            waiting_for_trigger: 0xffff,
            waiting_for_edge: 0xffff,
            stim_on: 0,
            stim_polarity: 0,
            amp_settle: 0,
            charge_recovery: 0,
            amp_settle_changed: true,
        }
    }
}

impl StimSequencer {
    /// Writes register `address` (0–13) of unit `channel`; other addresses are ignored.
    pub fn program(&mut self, channel: usize, address: usize, word: u16) {
        if let Some(r) = self.program.get_mut(channel & 0xf).and_then(|p| p.get_mut(address)) {
            *r = word;
        }
    }

    /// Register `address` of unit `channel` as programmed.
    pub fn register(&self, channel: usize, address: usize) -> u16 {
        self.program[channel & 0xf][address]
    }

    /// Resets the units (`reset_sequencer`): outputs off, every unit waiting again.
    pub fn reset(&mut self) {
        *self = StimSequencer { program: self.program, ..StimSequencer::default() };
    }

    /// Steps every unit by one sample; `triggers` is the trigger bus (bit n: source n).
    pub fn step(&mut self, triggers: u32) {
        self.amp_settle_changed = false;
        for c in 0..16 {
            let bit = 1u16 << c;
            let p = self.program[c];
            let trigger = p[0];
            let source = u32::from(trigger & 0x1f);
            let on_edge = trigger & 0x20 != 0;
            let on_low = trigger & 0x40 != 0;
            let enabled = trigger & 0x80 != 0;
            let trigger_in = ((triggers >> source) & 1 != 0) ^ on_low;
            let (pulses, shape, negative_first) = (p[1] & 0xff, (p[1] >> 8) & 3, p[1] & 0x400 != 0);
            let [_, _, settle_on, settle_off, start, phase2, phase3, end_stim, repeat, recovery_on, recovery_off, settle_on_repeat, settle_off_repeat, end] =
                p;
            let waiting_for_edge = self.waiting_for_edge & bit != 0;
            // The trigger check.
            if waiting_for_edge && self.waiting_for_trigger & bit != 0 && on_edge && !trigger_in {
                self.waiting_for_edge &= !bit;
            }
            if self.waiting_for_trigger & bit != 0 {
                self.counter[c] = 0;
                self.stim_counter[c] = pulses;
                if enabled && trigger_in && (!on_edge || !waiting_for_edge) {
                    self.waiting_for_trigger &= !bit;
                } else {
                    self.stim_on &= !bit;
                    self.stim_polarity &= !bit;
                    self.amp_settle &= !bit;
                    self.charge_recovery &= !bit;
                }
            }
            let counter = self.counter[c];
            let last_pulse = self.stim_counter[c] == 0;
            if self.waiting_for_trigger & bit == 0 {
                if settle_on == counter || (settle_on_repeat == counter && !last_pulse) {
                    self.amp_settle |= bit;
                    self.amp_settle_changed = true;
                } else if (settle_off == counter && last_pulse) || (settle_off_repeat == counter && !last_pulse) {
                    self.amp_settle &= !bit;
                    self.amp_settle_changed = true;
                }
                if recovery_on == counter && last_pulse {
                    self.charge_recovery |= bit;
                } else if recovery_off == counter && last_pulse {
                    self.charge_recovery &= !bit;
                }
                let set = |word: &mut u16, on: bool| if on { *word |= bit } else { *word &= !bit };
                if start == counter {
                    self.stim_on |= bit;
                    set(&mut self.stim_polarity, !negative_first);
                }
                if phase2 == counter {
                    if shape == BIPHASIC_DEAD_ZONE {
                        self.stim_on &= !bit;
                    } else {
                        self.stim_on |= bit;
                        set(&mut self.stim_polarity, negative_first);
                    }
                }
                if phase3 == counter {
                    if shape == BIPHASIC_DEAD_ZONE {
                        self.stim_on |= bit;
                        set(&mut self.stim_polarity, negative_first);
                    } else if shape == TRIPHASIC {
                        self.stim_on |= bit;
                        set(&mut self.stim_polarity, !negative_first);
                    }
                }
                if end_stim == counter {
                    self.stim_on &= !bit;
                    set(&mut self.stim_polarity, !negative_first);
                }
            }
            // The counter, whether waiting or not.
            if repeat == counter && !last_pulse {
                self.counter[c] = start;
                self.stim_counter[c] -= 1;
            } else if end == counter && last_pulse {
                self.counter[c] = 0;
                self.waiting_for_trigger |= bit;
                if on_edge {
                    self.waiting_for_edge |= bit;
                } else {
                    self.waiting_for_edge &= !bit;
                }
            } else {
                self.counter[c] = counter.wrapping_add(1);
            }
        }
    }

    /// The command aux slot `slot` carries in stimulation command mode; `settle_register` is 10
    /// or 12, `recovery_register` 46 or 48 (`main.v`, `command_selector_stim`).
    pub fn command(&self, slot: usize, settle_register: u8, recovery_register: u8) -> u32 {
        match slot {
            0 => RhsCommand::write(crate::rhythm::rhs::REG_STIM_ON, self.stim_on).word(),
            1 => RhsCommand::write(crate::rhythm::rhs::REG_STIM_POLARITY, self.stim_polarity).word(),
            2 if self.amp_settle_changed => RhsCommand::write(settle_register, self.amp_settle).word(),
            2 => RhsCommand::read(crate::rhythm::rhs::REG_COMPLIANCE_MONITOR).word(),
            _ => RhsCommand::Write {
                register: recovery_register,
                value: self.charge_recovery,
                u: true,
                m: !self.amp_settle_changed,
            }
            .word(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rhythm::board::stim::{self, StimOptions};
    use crate::{StimPhase, StimPulse};

    #[test]
    fn a_triggered_unit_plays_its_phases_for_exactly_their_samples() {
        let pulse = StimPulse::new(
            5,
            &[StimPhase { duration_us: 100, current_ua: -3.0 }, StimPhase { duration_us: 200, current_ua: 3.0 }],
        )
        .unwrap();
        let options = StimOptions { amp_settle_us: None, charge_recovery_us: Some(100) };
        let plan = stim::plan(&pulse, 10000.0, &options).unwrap();
        let mut seq = StimSequencer::default();
        for (r, v) in &plan.registers {
            seq.program(5, *r as usize, *v);
        }
        let manual = 1u32 << 24;
        let mut seen = Vec::new();
        for t in 0..12 {
            seq.step(if (3..5).contains(&t) { manual } else { 0 });
            seen.push((seq.stim_on >> 5 & 1, seq.stim_polarity >> 5 & 1, seq.charge_recovery >> 5 & 1));
        }
        // Fires on the rising edge at sample 3: one sample negative, two positive, one of
        // charge recovery, then idle, and the held trigger does not fire it again.
        assert_eq!(
            seen,
            [
                (0, 0, 0),
                (0, 0, 0),
                (0, 0, 0),
                (1, 0, 0),
                (1, 1, 0),
                (1, 1, 0),
                (0, 0, 1),
                (0, 0, 0),
                (0, 0, 0),
                (0, 0, 0),
                (0, 0, 0),
                (0, 0, 0)
            ]
        );
        assert_eq!(seq.command(0, 12, 48), RhsCommand::write(42, 0).word());
        assert_eq!(seq.command(3, 12, 48), RhsCommand::Write { register: 48, value: 0, u: true, m: true }.word());
    }
}
