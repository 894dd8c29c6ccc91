//! Bringing XDAQ with RHS headstages up as far as recording goes, as KonteX's and Intan's
//! software do (kontex-neuro/Intan-RHX and Intan-RHX `Engine/API/Hardware/rhxcontroller.cpp`:
//! `resetBoard`, `enableAuxCommandsOnAllStreams`, `setStimCmdMode`, `enableDcAmpConvert`,
//! `setSampleRate`, `uploadCommandList`, `selectAuxCommandLength`, `findConnectedChips`;
//! `Engine/API/Abstract/abstractrhxcontroller.cpp`: `initialize`; pyxdaq `xdaq.py`:
//! `initialize`, `upload_auxcmd`, `set_auxcmd_length`, `test_cable_delay`, `scan_headstages`):
//!
//! 1. configure the FPGA when a bitfile is given, read the firmware id;
//! 2. reset (the reset bit pulsed);
//! 3. aux commands on every stream (which keeps the FPGA's stimulation control off them),
//!    stimulation command mode off, DC amplifier conversion on;
//! 4. program the sample clock and wait for it to lock;
//! 5. upload the command lists through the pipe-ins ([`super::rhs_commands`]): the register
//!    list on slot 0, looping over its 128 commands, dummies on slots 1–3;
//! 6. at each of the 16 MISO delays, run the register list twice on every MISO line and read
//!    the ROM back from slot 0's results: a line whose chip answers `INTAN`, chip id 32 and 16
//!    amplifiers, with the registers read back as written, counts a good pass there;
//! 7. choose each line's delay as RHX does (the first of the delays with the most good passes,
//!    the second when three or more tie) and each port's as the later of its two lines'; enable
//!    one data stream per RHS2116, stream `n` for MISO line `n`;
//! 8. disarm every stimulation sequencer unit (trigger disabled, waiting for a rising edge of
//!    the driver's manual trigger, an end event that is not 0: pyxdaq `reset_sequencers`), so
//!    that nothing a previous session left can fire; continuous runs.
//!
//! The chips' stimulators stay disabled (registers 32 and 33 are written 0) until the first
//! pulse ([`super::stim`]); while a stream runs, the FPGA is in stimulation command mode and
//! its sequencers drive the chips' stimulation registers (RHX `usbdatathread.cpp`:
//! `setStimCmdMode(true)` before each run, `false` after it).

use std::sync::Arc;

use super::bringup::{identify, no_headstages, scan_run, set_run_length, set_sample_rate, BringUpError, PanelResult};
use super::rhs_commands::{self, RomReading, REGISTER_CONFIG_LEN, RESULT_FRAME_OFFSET};
use super::{lock, panel_error, BoardHealth, BoardSettings, RhythmBoard, SharedPanel, StreamPlan};
use crate::frame::FrameBlock;
use crate::frontpanel::{FrontPanel, FrontPanelError};
use crate::rhythm::endpoints::{self as ep, rhs::TRANSPORT};
use crate::rhythm::rhs::RhsChip;
use crate::rhythm::{decode_with_extras, FrameExtras, FrameFormat, HeadstageChip};

/// The register list runs this many times at each delay.
const SCAN_PASSES: usize = 2;
/// Frames of one scan run.
const SCAN_FRAMES: usize = SCAN_PASSES * REGISTER_CONFIG_LEN;
/// The aux slot running the register list (AuxCmd1).
const CONFIG_SLOT: usize = 0;

/// One RHS2116 the scan found: its port (0 = A), MISO line (0 or 1) and chip.
type Found = (usize, usize, RhsChip);

/// Brings the XDAQ with RHS headstages behind `panel` up; see the module documentation.
pub fn bring_up(panel: SharedPanel, settings: BoardSettings) -> Result<RhythmBoard, BringUpError> {
    let name = settings.name.clone();
    let io = |operation: &'static str| {
        let name = name.clone();
        move |e| panel_error(&name, operation, e)
    };
    let (serial, board_id, board_version);
    {
        let mut p = lock(&panel);
        (serial, board_id, board_version) = identify(&mut **p, &settings)?;
        initialize(&mut **p).map_err(io("reset"))?;
    }
    set_sample_rate(&panel, TRANSPORT, &settings)?;
    {
        let mut p = lock(&panel);
        upload_lists(&mut **p, settings.sample_rate_hz).map_err(io("upload command lists"))?;
    }
    let (found, delays) = scan(&panel, &settings)?;
    if found.is_empty() {
        return Err(no_headstages(&settings));
    }
    let streams = plan_streams(&found);
    {
        let mut p = lock(&panel);
        disarm_sequencers(&mut **p).map_err(io("disarm the stimulation sequencers"))?;
        configure_streams(&mut **p, &streams, &delays).map_err(io("enable data streams"))?;
    }
    Ok(RhythmBoard {
        panel,
        settings,
        interface: TRANSPORT,
        serial,
        chips: Vec::new(),
        delays,
        streams,
        health: Arc::new(BoardHealth::default()),
        board_id,
        board_version,
        progress: Arc::default(),
        control: Default::default(),
    })
}

/// Reset, then the RHS controller's initial settings that recording needs (RHX `initialize`).
fn initialize(p: &mut dyn FrontPanel) -> PanelResult<()> {
    p.set_wire_in(ep::WIRE_IN_RESET_RUN, ep::RESET_BIT, ep::RESET_BIT)?;
    p.update_wire_ins()?;
    p.set_wire_in(ep::WIRE_IN_RESET_RUN, 0, ep::RESET_BIT)?;
    p.update_wire_ins()?;
    p.set_wire_in(ep::rhs::WIRE_IN_AUX_ENABLE, 0xff, 0xff)?;
    p.set_wire_in(ep::rhs::WIRE_IN_STIM_CMD_MODE, 0, 1)?;
    p.set_wire_in(ep::rhs::WIRE_IN_DC_AMP_CONVERT, 1, 1)?;
    p.update_wire_ins()
}

/// Uploads `list` to aux slot `slot`: the RAM address back to 0, then the commands as 32-bit
/// little-endian words, padded with zero words to a whole number of 16 commands (XRHX
/// `uploadCommandList`; the padding never runs, as the slot's length ends before it).
pub(super) fn upload(p: &mut dyn FrontPanel, slot: usize, list: &[u32]) -> PanelResult<()> {
    let whole = list.len().div_ceil(ep::rhs::UPLOAD_COMMAND_MULTIPLE) * ep::rhs::UPLOAD_COMMAND_MULTIPLE;
    let mut bytes = Vec::with_capacity(4 * whole);
    for &word in list.iter().chain(std::iter::repeat_n(&0, whole - list.len())) {
        bytes.extend_from_slice(&word.to_le_bytes());
    }
    p.activate_trigger_in(ep::rhs::TRIGGER_IN_RAM_ADDR_RESET, 0)?;
    let moved = p.write_pipe_in(ep::rhs::PIPE_IN_AUX_CMD[slot], &bytes)?;
    if moved != bytes.len() {
        return Err(FrontPanelError::ShortTransfer { operation: "WriteToPipeIn", asked: bytes.len(), moved });
    }
    Ok(())
}

/// Sets aux slot `slot`'s loop and end index (RHX `selectAuxCommandLength`: each through the
/// multi-use wire and a bit of the length trigger).
pub(super) fn select_length(p: &mut dyn FrontPanel, slot: usize, loop_index: u32, end: u32) -> PanelResult<()> {
    p.set_wire_in(ep::WIRE_IN_MULTI_USE, loop_index, u32::MAX)?;
    p.update_wire_ins()?;
    p.activate_trigger_in(ep::rhs::TRIGGER_IN_AUX_CMD_LENGTH, slot as u8 + 4)?;
    p.set_wire_in(ep::WIRE_IN_MULTI_USE, end, u32::MAX)?;
    p.update_wire_ins()?;
    p.activate_trigger_in(ep::rhs::TRIGGER_IN_AUX_CMD_LENGTH, slot as u8)
}

fn upload_lists(p: &mut dyn FrontPanel, rate_hz: f64) -> PanelResult<()> {
    upload(p, CONFIG_SLOT, &rhs_commands::register_config(rate_hz))?;
    select_length(p, CONFIG_SLOT, 0, REGISTER_CONFIG_LEN as u32 - 1)?;
    for slot in 1..ep::rhs::AUX_SLOTS {
        upload(p, slot, &rhs_commands::dummies(slot))?;
        select_length(p, slot, 0, 0)?;
    }
    Ok(())
}

/// Runs the scan; returns the chips found and each port's chosen delay.
fn scan(panel: &SharedPanel, settings: &BoardSettings) -> Result<(Vec<Found>, Vec<u8>), BringUpError> {
    let name = &settings.name;
    let io = |operation| move |e| panel_error(name, operation, e);
    let lines = ep::rhs::MAX_STREAMS;
    {
        let mut p = lock(panel);
        set_run_length(&mut **p, TRANSPORT, SCAN_FRAMES as u32).map_err(io("scan ports"))?;
        p.set_wire_in(ep::WIRE_IN_RESET_RUN, 0, ep::CONTINUOUS_RUN_BIT).map_err(io("scan ports"))?;
        // Every MISO line's stream (RHX enables all 8 for the scan).
        p.set_wire_in(ep::WIRE_IN_DATA_STREAM_EN, (1 << lines) - 1, u32::MAX).map_err(io("scan ports"))?;
        p.update_wire_ins().map_err(io("scan ports"))?;
    }
    let format = FrameFormat::new(settings.board, lines).expect("an RHS board carries 8 streams");
    let mut block = FrameBlock::new(format.block_layout(SCAN_FRAMES));
    let mut extras = FrameExtras::new(&format, SCAN_FRAMES);
    let mut bytes = vec![0u8; SCAN_FRAMES * format.bytes_per_frame()];
    let aux_n = format.aux_channels();
    // good[line][delay]: passes that read the ROM intact; chip seen on the line.
    let mut good = vec![[0usize; 16]; lines];
    let mut seen: Vec<Option<RhsChip>> = vec![None; lines];
    let mut results = vec![0u32; REGISTER_CONFIG_LEN];
    for delay in 0..16u32 {
        scan_run(panel, TRANSPORT, ep::rhs::PORTS, delay, name, SCAN_FRAMES, &mut bytes)?;
        if decode_with_extras(&format, &bytes, &mut block, &mut extras, None).is_err() {
            // A corrupt scan run counts as no good pass at this delay.
            continue;
        }
        for (s, line_good) in good.iter_mut().enumerate() {
            for pass in 0..SCAN_PASSES {
                for (i, r) in results.iter_mut().enumerate() {
                    let frame = pass * REGISTER_CONFIG_LEN + i + RESULT_FRAME_OFFSET;
                    let at = frame * aux_n + s * format.aux_per_stream() + CONFIG_SLOT;
                    *r = if frame < SCAN_FRAMES {
                        (u32::from(extras.aux_high[at]) << 16) | u32::from(block.aux[at])
                    } else {
                        0
                    };
                }
                if let Some(chip) = RomReading::read(&results, settings.sample_rate_hz).and_then(|r| r.chip()) {
                    line_good[delay as usize] += 1;
                    seen[s] = Some(chip);
                }
            }
        }
    }
    let mut found = Vec::new();
    let mut delays = vec![0u8; ep::rhs::PORTS];
    for (line, chip) in seen.iter().enumerate() {
        let Some(chip) = *chip else { continue };
        let (port, line) = ep::rhs::stream_source(line);
        if port >= settings.ports {
            continue;
        }
        let delay = choose_delay(&good[2 * port + line]);
        delays[port] = delays[port].max(delay);
        found.push((port, line, chip));
    }
    Ok((found, delays))
}

/// The delay RHX would choose from the good-pass counts of one line: the first of the best,
/// the second of them when three or more are best.
fn choose_delay(good: &[usize; 16]) -> u8 {
    let best = *good.iter().max().unwrap_or(&0);
    let winners: Vec<u8> = (0..16u8).filter(|&d| good[usize::from(d)] == best).collect();
    match winners.len() {
        n if n > 2 => winners[1],
        _ => winners[0],
    }
}

/// Writes register `register` of sequencer unit `channel` of data stream `stream` (RHX
/// `programStimReg`).
pub(super) fn program_stim_register(
    p: &mut dyn FrontPanel,
    stream: usize,
    channel: usize,
    register: super::stim::StimRegister,
    value: u16,
) -> PanelResult<()> {
    p.set_wire_in(ep::rhs::WIRE_IN_STIM_REG_ADDR, super::stim::program_address(stream, channel, register), u32::MAX)?;
    p.set_wire_in(ep::rhs::WIRE_IN_STIM_REG_WORD, u32::from(value), u32::MAX)?;
    p.update_wire_ins()?;
    p.activate_trigger_in(ep::rhs::TRIGGER_IN_RAM_ADDR_RESET, ep::rhs::TRIGGER_IN_STIM_PROG_BIT)
}

/// Every unit of every stream: trigger disabled on the manual trigger's rising edge, no
/// events, the idle end event.
fn disarm_sequencers(p: &mut dyn FrontPanel) -> PanelResult<()> {
    use super::stim::{StimRegister, IDLE_EVENT_END, NEVER};
    for stream in 0..ep::rhs::MAX_STREAMS {
        for channel in 0..16 {
            program_stim_register(p, stream, channel, StimRegister::TriggerParams, super::stim::disarmed_trigger())?;
            program_stim_register(p, stream, channel, StimRegister::EventStartStim, NEVER)?;
            program_stim_register(p, stream, channel, StimRegister::EventEnd, IDLE_EVENT_END)?;
        }
    }
    p.set_wire_in(ep::rhs::WIRE_IN_MANUAL_TRIGGERS, 0, 0xff)?;
    p.update_wire_ins()
}

/// One 16-channel stream per RHS2116, stream `n` for MISO line `n`.
fn plan_streams(found: &[Found]) -> Vec<StreamPlan> {
    let mut plans: Vec<StreamPlan> = found
        .iter()
        .map(|&(port, line, chip)| StreamPlan {
            board_stream: 2 * port + line,
            port,
            line,
            ddr: false,
            chip: HeadstageChip::Rhs(chip),
            channels: chip.amplifiers(),
        })
        .collect();
    plans.sort_by_key(|s| s.board_stream);
    plans
}

fn configure_streams(p: &mut dyn FrontPanel, streams: &[StreamPlan], delays: &[u8]) -> PanelResult<()> {
    let enable = streams.iter().fold(0u32, |acc, s| acc | (1 << s.board_stream));
    p.set_wire_in(ep::WIRE_IN_DATA_STREAM_EN, enable, u32::MAX)?;
    let delay_word = delays.iter().enumerate().fold(0u32, |acc, (port, &d)| acc | (u32::from(d) << (4 * port)));
    p.set_wire_in(ep::WIRE_IN_MISO_DELAY, delay_word, 0xffff)?;
    p.set_wire_in(ep::WIRE_IN_RESET_RUN, ep::CONTINUOUS_RUN_BIT, ep::CONTINUOUS_RUN_BIT | ep::DSP_SETTLE_BIT)?;
    p.update_wire_ins()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_are_chosen_as_the_vendor_software_chooses_them() {
        let mut good = [0usize; 16];
        good[4] = 2;
        good[5] = 2;
        assert_eq!(choose_delay(&good), 4);
        good[6] = 2;
        assert_eq!(choose_delay(&good), 5);
        let mut one = [0usize; 16];
        one[9] = 1;
        assert_eq!(choose_delay(&one), 9);
    }

    #[test]
    fn each_chip_has_the_stream_of_its_miso_line() {
        let found = [(3, 1, RhsChip::Rhs2116), (0, 0, RhsChip::Rhs2116), (1, 1, RhsChip::Rhs2116)];
        let plans = plan_streams(&found);
        assert_eq!(
            plans.iter().map(|s| (s.board_stream, s.port, s.line, s.channels)).collect::<Vec<_>>(),
            [(0, 0, 0, 16), (3, 1, 1, 16), (7, 3, 1, 16)]
        );
    }
}
