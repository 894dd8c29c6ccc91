//! The control side of a running board: stimulation through RHS2116 headstages, the analog
//! outputs (DACs) and the amplifiers' fast settle.
//!
//! ## Stimulation (XDAQ with RHS headstages)
//!
//! A pulse needs the chip programmed (its step, the channel's two magnitudes, the stimulators
//! enabled) and the channel's sequencer unit programmed and fired. While a stream runs the
//! FPGA is in stimulation command mode, where its sequencers own the four aux slots, so the
//! chip is reprogrammed the way RHX and pyxdaq reprogram it, with the sequencers' commands
//! paused: stimulation command mode off and the aux slots on that chip's stream only (RHX
//! `enableAuxCommandsOnOneStream`), slot 0 looping over the register list with the
//! stimulation parameters (RHX `createCommandListRHSRegisterConfig(updateStimParams = true)`,
//! its last write carrying the `u` flag), until two passes of the list have reached the chip;
//! then every stream's aux slots and stimulation command mode again. A pulse that needs no
//! change of the chip (the same currents on the same channel again) skips this. The unit is
//! then programmed (RHX `setStimSequenceParameters`: trigger, shape, events) and fired by a
//! rising edge of manual trigger 0 (RHX `setManualStimTrigger`), which is lowered once the
//! sequencer has seen it. The unit armed before is disarmed first, so one trigger fires one
//! channel.
//!
//! Waiting "until the chip has seen it" is counted in frames the stream has read
//! ([`RhythmBoard::wait_for_frames`]), so it holds for a board in real time and for an
//! emulated one running free alike, as long as the stream is read.
//!
//! Limits: the step is one per chip, so a pulse whose currents need another step changes
//! what the same chip's other channels would drive; reprogramming a chip pauses the
//! sequencers' writes to it for about 2 × 128 samples, which cuts a pulse of that chip still
//! running; a second pulse on a channel whose first is still running reprograms it mid-way.
//!
//! ## Analog outputs
//!
//! [`Control::set_analog_out`](crate::Control::set_analog_out) plays a level on a DAC through
//! the board's one manual value (RHX `setDacManual`, `selectDacDataStream` with the manual
//! stream, `enableDac`); [`RhythmBoard::route_amplifier_to_dac`] plays an amplifier channel
//! (RHX `selectDacDataStream`, `selectDacDataChannel`, `setDacGain(0)`,
//! `setAudioNoiseSuppress(0)`). The USB 2 boards' DACs are not driven (their range is not
//! ±10.24 V), nor the Open Ephys USB 3 board's (no public source says which stream number
//! plays its manual value: [`ep::NO_MANUAL_STREAM`]).
//!
//! ## Fast settle
//!
//! RHD boards: the register list's bank with register 0's fast-settle bit (bank 2) or the
//! streaming bank, on every port (RHX `enableFastSettle`). RHS boards: register 10 on every
//! channel of every chip, written as the stimulation parameters are; the sequencers' amplifier
//! settle (a pulse with [`StimOptions::amp_settle_us`] in fast-settle mode) overrides it.
//!
//! ## Fast settle on a TTL input (RHD boards)
//!
//! The firmware follows the chosen TTL input itself: on the sample the input goes high it
//! writes register 0 with fast settle on through aux slot 1, on the sample it goes low with it
//! off (Intan's Rhythm `main.v`, `external_fast_settle`, `RAM_data_out_1`); the driver points
//! it at the input and enables it (RHX `setExternalFastSettleChannel`,
//! `enableExternalFastSettle`, [`ep::Interface::external_fast_settle_triggers`]) and switches
//! the register list to the bank that leaves register 0 alone (`BANK_TTL_FAST_SETTLE`), whose
//! write would otherwise release the amplifiers during a long pulse. The firmware acts on
//! edges: a pulse already high when it is turned on is followed from its next rising edge.
//! Turned off, the streaming list comes back, and with it register 0 as it streams within one
//! pass of the list (64 samples) if the input was high. It excludes the manual fast settle
//! (RHX offers one or the other: `controlpanelconfiguretab.cpp` disables each box while the
//! other is ticked); an impedance measurement switches it off for its duration and back on
//! after, as RHX `impedancereader.cpp` does ("this interferes with DAC commands in
//! AuxCmd1"). RHS boards refuse it: RHX does not use it with `ControllerStimRecord`, and their
//! TTL-triggered amplifier settle (the stimulation sequencers, the global settle policy) is
//! another mechanism, not driven here.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::bringup::{
    external_fast_settle, fifo_words, select_bank, BANK_FAST_SETTLE, BANK_STREAMING, BANK_TTL_FAST_SETTLE, CONFIG_SLOT,
};
use super::rhs_bringup::{program_stim_register, select_length, upload};
use super::rhs_commands::{self, RhsChipSettings, REGISTER_CONFIG_LEN};
use super::stim::{self, StimOptions, StimRegister};
use super::{lock, RhythmBoard};
use crate::control::{check_ttl_input, ControlError, StimPulse, ANALOG_OUT_FULL_SCALE_V};
use crate::device::DeviceError;
use crate::rhythm::endpoints::{self as ep, DacSourceBits, Interface};
use crate::rhythm::FrameFormat;

/// What one analog output plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DacUse {
    /// The manual value, this code.
    Level(u16),
    /// An amplifier channel (index in the frame).
    Amplifier(usize),
}

/// Analog outputs of a board.
pub const DAC_OUTPUTS: usize = 8;
/// The highest level a DAC plays: one code below +10.24 V.
pub const MAX_ANALOG_OUT_V: f64 = ANALOG_OUT_FULL_SCALE_V * 32767.0 / 32768.0;

/// The DAC code of `volts` (offset binary, ±10.24 V: [`ep::DAC_ZERO_CODE`]).
pub fn dac_code(volts: f64) -> u16 {
    (f64::from(ep::DAC_ZERO_CODE) + (volts / ANALOG_OUT_FULL_SCALE_V * 32768.0).round()) as u16
}

/// The level a DAC code plays, volts.
pub fn dac_volts(code: u16) -> f64 {
    (f64::from(code) - f64::from(ep::DAC_ZERO_CODE)) * ANALOG_OUT_FULL_SCALE_V / 32768.0
}

impl RhythmBoard {
    /// Whether this board's DACs are driven: the RHS map and the USB 3 RHD boards.
    pub(super) fn drives_dacs(&self) -> bool {
        self.is_rhs() || self.interface == Interface::Usb3
    }

    fn dac_bits(&self) -> DacSourceBits {
        if self.is_rhs() {
            ep::rhs::DAC_SOURCE
        } else {
            self.interface.dac_source()
        }
    }

    fn io(&self, operation: &'static str) -> impl Fn(crate::frontpanel::FrontPanelError) -> ControlError {
        let name = self.settings.name.clone();
        move |e| ControlError::Device(super::panel_error(&name, operation, e))
    }

    fn check_dac(&self, output: usize) -> Result<(), ControlError> {
        if !self.drives_dacs() {
            let what = if self.interface == Interface::OpenEphysUsb3 {
                "drive its analog outputs (the Open Ephys USB 3 firmware's manual DAC stream is not \
                 published, so this version does not drive its DACs)"
            } else {
                "drive its analog outputs (the USB 2 boards' DACs are not driven by this version)"
            };
            return Err(ControlError::Unsupported { device: self.settings.name.clone(), what });
        }
        if output >= DAC_OUTPUTS {
            return Err(ControlError::out_of_range("output", output, format!("0..={}", DAC_OUTPUTS - 1)));
        }
        Ok(())
    }

    /// Plays `volts` on analog output `output` (see the module documentation).
    pub(super) fn set_dac_level(&mut self, output: usize, volts: f64) -> Result<(), ControlError> {
        self.check_dac(output)?;
        if !volts.is_finite() || !(-ANALOG_OUT_FULL_SCALE_V..=MAX_ANALOG_OUT_V).contains(&volts) {
            return Err(ControlError::out_of_range(
                "volts",
                volts,
                format!("finite, -{ANALOG_OUT_FULL_SCALE_V}..={MAX_ANALOG_OUT_V:.5} (16-bit DAC, 0 V at code 32768)"),
            ));
        }
        let code = dac_code(volts);
        for (other, used) in self.control.dacs.iter().enumerate() {
            if let (true, Some(DacUse::Level(held))) = (other != output, used) {
                if *held != code {
                    return Err(ControlError::out_of_range(
                        "volts",
                        volts,
                        format!(
                            "{:.5} V: the board has one manual DAC level, which analog output {other} plays; \
                             set both to one level or route output {other} to an amplifier",
                            dac_volts(*held)
                        ),
                    ));
                }
            }
        }
        let bits = self.dac_bits();
        {
            let mut p = lock(&self.panel);
            let io = self.io("set an analog output");
            p.set_wire_in(ep::WIRE_IN_DAC_MANUAL, u32::from(code), 0xffff).map_err(&io)?;
            p.set_wire_in(ep::WIRE_IN_DAC_SOURCE[output], bits.word(bits.manual_stream, 0), bits.mask())
                .map_err(&io)?;
            p.update_wire_ins().map_err(&io)?;
        }
        self.control.dacs[output] = Some(DacUse::Level(code));
        Ok(())
    }

    /// Plays amplifier channel `channel` (index in the frame) on analog output `output` at unit
    /// gain without noise suppression, or disables the output (`None`).
    pub fn route_amplifier_to_dac(&mut self, output: usize, channel: Option<usize>) -> Result<(), ControlError> {
        self.check_dac(output)?;
        let bits = self.dac_bits();
        let word = match channel {
            None => 0,
            Some(c) => {
                let (plan, within) = self.channel_stream(c)?;
                bits.word(plan.board_stream as u32, within as u32)
            }
        };
        {
            let mut p = lock(&self.panel);
            let io = self.io("route an amplifier to an analog output");
            p.set_wire_in(ep::WIRE_IN_RESET_RUN, 0, ep::DAC_GAIN_MASK | ep::DAC_NOISE_SUPPRESS_MASK).map_err(&io)?;
            p.set_wire_in(ep::WIRE_IN_DAC_SOURCE[output], word, bits.mask()).map_err(&io)?;
            p.update_wire_ins().map_err(&io)?;
        }
        self.control.dacs[output] = channel.map(DacUse::Amplifier);
        Ok(())
    }

    /// What each analog output plays, as set through this board.
    pub fn analog_outputs(&self) -> [Option<DacUse>; DAC_OUTPUTS] {
        self.control.dacs
    }

    /// The stream carrying amplifier channel `channel` and the channel's index within it.
    fn channel_stream(&self, channel: usize) -> Result<(super::StreamPlan, usize), ControlError> {
        let mut first = 0;
        for s in &self.streams {
            if channel < first + s.channels {
                return Ok((*s, channel - first));
            }
            first += s.channels;
        }
        let n = self.amplifier_channels();
        Err(ControlError::out_of_range("channel", channel, format!("0..={}", n.saturating_sub(1))))
    }

    /// Waits until the stream has read `frames` frames produced after this call began: the
    /// frames then in the FIFO and `frames` more. Fails if the stream stops, or stalls for
    /// seconds.
    pub fn wait_for_frames(&self, frames: u64, what: &'static str) -> Result<(), ControlError> {
        let not_streaming = || ControlError::NotStreaming { device: self.settings.name.clone(), what };
        if !self.progress.streaming.load(Ordering::Acquire) {
            return Err(not_streaming());
        }
        let format = FrameFormat::new(self.settings.board, self.streams.len()).map_err(|e| {
            ControlError::Device(DeviceError::Io {
                device: self.settings.name.clone(),
                operation: what,
                source: std::io::Error::other(e),
            })
        })?;
        let words_per_frame = (format.bytes_per_frame() / 2) as u64;
        let target = {
            let mut p = lock(&self.panel);
            let queued = fifo_words(&mut **p, self.interface).map_err(self.io(what))? / words_per_frame;
            self.progress.frames_read.load(Ordering::Acquire) + queued + frames
        };
        let rate = self.settings.sample_rate_hz;
        let started = Instant::now();
        let patience = Duration::from_secs(2) + Duration::from_secs_f64(4.0 * (frames as f64 + 256.0) / rate);
        while self.progress.frames_read.load(Ordering::Acquire) < target {
            if !self.progress.streaming.load(Ordering::Acquire) {
                return Err(not_streaming());
            }
            if started.elapsed() > patience {
                return Err(ControlError::Device(DeviceError::Stalled {
                    device: self.settings.name.clone(),
                    waited_ms: started.elapsed().as_millis() as u64,
                }));
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        Ok(())
    }

    /// What the board does around each pulse from now on (amplifier settle, charge recovery);
    /// RHS boards only.
    pub fn set_stim_options(&mut self, options: StimOptions) -> Result<(), ControlError> {
        if !self.is_rhs() {
            let what = "stimulate (RHD chips record only)";
            return Err(ControlError::Unsupported { device: self.settings.name.clone(), what });
        }
        stim::check_options(&options)?;
        self.control.stim_options = options;
        Ok(())
    }

    /// Programs each (board stream, settings) chip whose settings differ from what the driver
    /// last wrote (see the module documentation), chips with the same settings together.
    fn apply_rhs_settings(&mut self, wanted: &[(usize, RhsChipSettings)]) -> Result<(), ControlError> {
        let mut pending: Vec<(usize, RhsChipSettings)> =
            wanted.iter().copied().filter(|(s, w)| self.control.rhs_chips[*s] != *w).collect();
        while let Some(&(_, settings)) = pending.first() {
            let group: Vec<usize> = pending.iter().filter(|(_, w)| *w == settings).map(|(s, _)| *s).collect();
            pending.retain(|(_, w)| *w != settings);
            let mask = group.iter().fold(0u32, |m, s| m | (1 << s));
            let list = rhs_commands::register_config_with(self.settings.sample_rate_hz, &settings);
            {
                let mut p = lock(&self.panel);
                let io = self.io("program the RHS chips");
                p.set_wire_in(ep::rhs::WIRE_IN_STIM_CMD_MODE, 0, 1).map_err(&io)?;
                p.set_wire_in(ep::rhs::WIRE_IN_AUX_ENABLE, mask, 0xff).map_err(&io)?;
                p.update_wire_ins().map_err(&io)?;
                upload(&mut **p, 0, &list).map_err(&io)?;
                select_length(&mut **p, 0, 0, REGISTER_CONFIG_LEN as u32 - 1).map_err(&io)?;
            }
            // Wherever slot 0 stood, two passes hold one whole pass of the list.
            let waited = self.wait_for_frames(2 * REGISTER_CONFIG_LEN as u64 + 1, "program the RHS chips");
            {
                let mut p = lock(&self.panel);
                let io = self.io("program the RHS chips");
                p.set_wire_in(ep::rhs::WIRE_IN_AUX_ENABLE, 0xff, 0xff).map_err(&io)?;
                p.set_wire_in(ep::rhs::WIRE_IN_STIM_CMD_MODE, 1, 1).map_err(&io)?;
                p.update_wire_ins().map_err(&io)?;
            }
            waited?;
            for s in group {
                self.control.rhs_chips[s] = settings;
            }
        }
        Ok(())
    }

    /// Delivers `pulse` through the RHS chip that carries its channel (see the module
    /// documentation).
    pub(super) fn stimulate_rhs(&mut self, pulse: &StimPulse) -> Result<(), ControlError> {
        let (stream, channel) = self.channel_stream(pulse.channel)?;
        let plan = stim::plan(pulse, self.settings.sample_rate_hz, &self.control.stim_options)?;
        if !self.progress.streaming.load(Ordering::Acquire) {
            return Err(ControlError::NotStreaming { device: self.settings.name.clone(), what: "stimulate" });
        }
        let unit = stream.board_stream;
        let wanted = plan.applied_to(&self.control.rhs_chips[unit], channel);
        self.apply_rhs_settings(&[(unit, wanted)])?;
        {
            let armed = self.control.armed.take();
            let mut p = lock(&self.panel);
            let io = self.io("program a stimulation sequencer");
            if let Some((s, c)) = armed.filter(|&armed| armed != (unit, channel)) {
                program_stim_register(&mut **p, s, c, StimRegister::TriggerParams, stim::disarmed_trigger())
                    .map_err(&io)?;
            }
            for &(register, value) in &plan.registers {
                program_stim_register(&mut **p, unit, channel, register, value).map_err(&io)?;
            }
            self.control.armed = Some((unit, channel));
            let bit = 1u32 << stim::MANUAL_TRIGGER;
            p.set_wire_in(ep::rhs::WIRE_IN_MANUAL_TRIGGERS, bit, bit).map_err(&io)?;
            p.update_wire_ins().map_err(&io)?;
        }
        let seen = self.wait_for_frames(1, "stimulate");
        {
            let mut p = lock(&self.panel);
            let io = self.io("lower the manual stimulation trigger");
            p.set_wire_in(ep::rhs::WIRE_IN_MANUAL_TRIGGERS, 0, 1 << stim::MANUAL_TRIGGER).map_err(&io)?;
            p.update_wire_ins().map_err(&io)?;
        }
        seen?;
        // The sequencer sees the trigger low again before the next pulse raises it.
        self.wait_for_frames(1, "stimulate")
    }

    /// Turns the amplifiers' fast settle on or off (see the module documentation).
    pub(super) fn set_fast_settle(&mut self, on: bool) -> Result<(), ControlError> {
        if let (true, Some(input)) = (on, self.control.ttl_fast_settle) {
            return Err(ControlError::Conflict {
                device: self.settings.name.clone(),
                what: "turn fast settle on",
                setting: format!("fast settle follows TTL input {input}"),
            });
        }
        if self.is_rhs() {
            let wanted: Vec<(usize, RhsChipSettings)> = self
                .streams
                .iter()
                .map(|s| {
                    (s.board_stream, RhsChipSettings { fast_settle: on, ..self.control.rhs_chips[s.board_stream] })
                })
                .collect();
            if wanted.iter().any(|(s, w)| self.control.rhs_chips[*s] != *w)
                && !self.progress.streaming.load(Ordering::Acquire)
            {
                let what = "change fast settle (RHS chips are reprogrammed through a running stream)";
                return Err(ControlError::NotStreaming { device: self.settings.name.clone(), what });
            }
            self.apply_rhs_settings(&wanted)?;
        } else {
            let bank = if on { BANK_FAST_SETTLE } else { BANK_STREAMING };
            let mut p = lock(&self.panel);
            select_bank(&mut **p, CONFIG_SLOT, bank).map_err(self.io("set fast settle"))?;
        }
        self.control.fast_settle = on;
        Ok(())
    }

    /// Whether the amplifiers' fast settle is on.
    pub fn fast_settle_on(&self) -> bool {
        self.control.fast_settle
    }

    /// Lets TTL input `input` fast-settle the amplifiers, or stops it (`None`); see the module
    /// documentation.
    pub(super) fn set_fast_settle_on_ttl(&mut self, input: Option<u8>) -> Result<(), ControlError> {
        if self.is_rhs() {
            let what = "fast-settle its amplifiers from a TTL input (the RHS firmware has no external fast settle; \
                        RHX does not use it with RHS controllers)";
            return Err(ControlError::Unsupported { device: self.settings.name.clone(), what });
        }
        check_ttl_input(input)?;
        if input.is_some() && self.control.fast_settle {
            return Err(ControlError::Conflict {
                device: self.settings.name.clone(),
                what: "fast-settle its amplifiers from a TTL input",
                setting: "the manual fast settle is on".into(),
            });
        }
        self.apply_ttl_fast_settle(input).map_err(self.io("set fast settle on a TTL input"))?;
        self.control.ttl_fast_settle = input;
        Ok(())
    }

    /// The TTL input fast settle follows, if any.
    pub fn fast_settle_ttl_input(&self) -> Option<u8> {
        self.control.ttl_fast_settle
    }

    /// Programs the firmware and the register list for `input` (RHD boards). On, the list
    /// first (so that its register-0 write cannot cut a pulse), then the firmware; off, the
    /// other way round.
    pub(super) fn apply_ttl_fast_settle(&self, input: Option<u8>) -> Result<(), crate::frontpanel::FrontPanelError> {
        let mut p = lock(&self.panel);
        match input {
            Some(_) => {
                select_bank(&mut **p, CONFIG_SLOT, BANK_TTL_FAST_SETTLE)?;
                external_fast_settle(&mut **p, self.interface, input)
            }
            None => {
                external_fast_settle(&mut **p, self.interface, None)?;
                let bank = if self.control.fast_settle { BANK_FAST_SETTLE } else { BANK_STREAMING };
                select_bank(&mut **p, CONFIG_SLOT, bank)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dac_codes_are_offset_binary_over_plus_minus_10_24_volts() {
        assert_eq!(dac_code(0.0), 32768);
        assert_eq!(dac_code(-10.24), 0);
        assert_eq!(dac_code(MAX_ANALOG_OUT_V), 65535);
        assert_eq!(dac_code(1.0), 32768 + 3200);
        assert!((dac_volts(dac_code(2.5)) - 2.5).abs() < 10.24 / 32768.0);
    }
}
