//! Bringing an RHD board up as its vendor software does (Intan-RHX
//! `Engine/API/Hardware/rhxcontroller.cpp`: `resetBoard`, `setSampleRate`,
//! `uploadCommandList`, `selectAuxCommandLength`, `selectAuxCommandBank`,
//! `findConnectedChips`):
//!
//! 1. configure the FPGA when a bitfile is given, read the firmware id;
//! 2. reset (command RAM, FIFO, sequencer);
//! 3. program the sample clock and wait for it to lock;
//! 4. upload the aux command lists ([`commands`](super::commands));
//! 5. at each of the 16 MISO delays, run the register list on every MISO line and read the
//!    ROM back: a line whose chip answers `INTAN` with a valid chip id at a delay counts a
//!    good pass there;
//! 6. choose each port's delay as RHX does (the first of two good delays, the later one for
//!    an RHD2164's double-data-rate line, the second when three or more are good), enable
//!    one data stream per chip (two for an RHD2164) in port order;
//! 7. switch to the streaming command bank and continuous runs.
//!
//! A third version of the register list, with the amplifiers' fast settle on, waits in bank 2
//! of the same slot for [`Control::fast_settle`](crate::Control::fast_settle) (RHX's bank 2);
//! a fourth, which leaves register 0 to the firmware, in bank 4 for
//! [`Control::fast_settle_on_ttl`](crate::Control::fast_settle_on_ttl). External fast settle
//! is switched off and set to TTL input 0 after the reset, as RHX `initialize` does (the
//! firmware's reset does not clear it).

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::commands::{self, RomReading, REGISTER_CONFIG_LEN};
use super::{lock, panel_error, BoardHealth, BoardSettings, FoundChip, RhythmBoard, SharedPanel, StreamPlan};
use crate::device::DeviceError;
use crate::frame::{BlockLayout, FrameBlock};
use crate::frontpanel::FrontPanel;
use crate::rhythm::endpoints::{self as ep, Interface};
use crate::rhythm::rhd::{self, RhdChip};
use crate::rhythm::{decode, FrameFormat, ANALOG_INPUTS};

/// The register list runs this many times at each delay.
const SCAN_PASSES: usize = 2;
/// Frames of one scan run.
const SCAN_FRAMES: usize = SCAN_PASSES * REGISTER_CONFIG_LEN;
/// How long the clock may take to lock and a scan run to finish.
pub(super) const HARDWARE_TIMEOUT: Duration = Duration::from_secs(2);
/// Aux slot (0-based) that runs the register list.
pub(super) const CONFIG_SLOT: usize = 2;
/// Command banks of the register list: with and without `CALIBRATE`.
const BANK_CALIBRATE: u32 = 0;
pub(super) const BANK_STREAMING: u32 = 1;
/// The register list with the amplifiers' fast settle on (RHX's bank 2 of AuxCmd3).
pub(super) const BANK_FAST_SETTLE: u32 = 2;
/// The register list for external (TTL) fast settle
/// ([`commands::register_config_ttl_fast_settle`]); bank 3 is the impedance check's.
pub(super) const BANK_TTL_FAST_SETTLE: u32 = 4;

/// Why a board could not be brought up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BringUpError {
    /// The board's interface is not an RHD one.
    #[error("{0}: not an RHD board of the Rhythm family")]
    NotRhd(String),
    /// A FrontPanel operation failed.
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// The sample clock did not lock.
    #[error("{device}: the sample clock did not lock at {rate_hz} Hz within {timeout_ms} ms")]
    ClockNotLocked { device: String, rate_hz: f64, timeout_ms: u128 },
    /// A scan run did not finish.
    #[error("{device}: the SPI sequencer did not finish a {frames}-frame run within {timeout_ms} ms")]
    RunTimeout { device: String, frames: usize, timeout_ms: u128 },
    /// No chip answered on any port.
    #[error("{device}: no headstage answered on ports {ports} at any MISO delay (0-15); check the cables")]
    NoHeadstages { device: String, ports: String },
    /// More chips than the board has data streams for.
    #[error("{device}: the headstages need {needed} data streams, the board carries {max}")]
    TooManyStreams { device: String, needed: usize, max: usize },
}

/// What every bring-up starts with: the board's serial, its FPGA configured from
/// `settings.bitfile` when one is given, then the firmware's id and version.
pub(super) fn identify(p: &mut dyn FrontPanel, settings: &BoardSettings) -> Result<(String, u32, u32), BringUpError> {
    let io = |operation: &'static str| move |e| panel_error(&settings.name, operation, e);
    let serial = p.info().serial;
    if let Some(bitfile) = &settings.bitfile {
        p.configure_fpga(bitfile).map_err(io("configure the FPGA"))?;
    }
    p.update_wire_outs().map_err(io("read the firmware id"))?;
    let board_id = p.wire_out(ep::WIRE_OUT_BOARD_ID).map_err(io("read the firmware id"))?;
    let board_version = p.wire_out(ep::WIRE_OUT_BOARD_VERSION).map_err(io("read the firmware id"))?;
    Ok((serial, board_id, board_version))
}

/// The refusal of a board whose scan found no headstage on any of its ports.
pub(super) fn no_headstages(settings: &BoardSettings) -> BringUpError {
    let ports: String = (0..settings.ports).map(|p| (b'A' + p as u8) as char).collect();
    BringUpError::NoHeadstages { device: settings.name.clone(), ports }
}

/// Brings the board behind `panel` up; see the module documentation.
pub fn bring_up(panel: SharedPanel, settings: BoardSettings) -> Result<RhythmBoard, BringUpError> {
    let interface = Interface::of(settings.board).ok_or_else(|| BringUpError::NotRhd(settings.name.clone()))?;
    let name = settings.name.clone();
    let io = |operation: &'static str| {
        let name = name.clone();
        move |e| panel_error(&name, operation, e)
    };
    let (serial, board_id, board_version);
    {
        let mut p = lock(&panel);
        (serial, board_id, board_version) = identify(&mut **p, &settings)?;
        reset(&mut **p, interface).map_err(io("reset"))?;
        external_fast_settle(&mut **p, interface, None).map_err(io("switch external fast settle off"))?;
    }
    set_sample_rate(&panel, interface, &settings)?;
    {
        let mut p = lock(&panel);
        upload_lists(&mut **p, interface, settings.sample_rate_hz).map_err(io("upload command lists"))?;
    }
    let (chips, delays) = scan(&panel, interface, &settings)?;
    if chips.is_empty() {
        return Err(no_headstages(&settings));
    }
    let streams = plan_streams(&chips, interface);
    let needed = streams.len();
    if needed > interface.max_streams() {
        return Err(BringUpError::TooManyStreams { device: name, needed, max: interface.max_streams() });
    }
    {
        let mut p = lock(&panel);
        configure_streams(&mut **p, interface, &streams, &delays).map_err(io("enable data streams"))?;
    }
    Ok(RhythmBoard {
        panel,
        settings,
        interface,
        serial,
        chips,
        delays,
        streams,
        health: Arc::new(BoardHealth::default()),
        board_id,
        board_version,
        progress: Arc::default(),
        control: Default::default(),
    })
}

pub(super) type PanelResult<T> = Result<T, crate::frontpanel::FrontPanelError>;

fn reset(p: &mut dyn FrontPanel, interface: Interface) -> PanelResult<()> {
    p.set_wire_in(ep::WIRE_IN_RESET_RUN, ep::RESET_BIT, ep::RESET_BIT)?;
    p.update_wire_ins()?;
    p.set_wire_in(ep::WIRE_IN_RESET_RUN, 0, ep::RESET_BIT)?;
    p.update_wire_ins()?;
    if let (Some(block), Some([(block_ep, block_bit), (burst_ep, burst_bit)])) =
        (interface.pipe_block_size(), interface.pipe_setup_triggers())
    {
        // USB 3: the pipe's block size in 32-bit words and the RAM burst size, taken from the
        // multi-use wire by the interface's triggers (RHX and Open Ephys `resetBoard`).
        p.set_wire_in(ep::WIRE_IN_MULTI_USE, (block / 4) as u32, u32::MAX)?;
        p.update_wire_ins()?;
        p.activate_trigger_in(block_ep, block_bit)?;
        p.set_wire_in(ep::WIRE_IN_MULTI_USE, 32, u32::MAX)?;
        p.update_wire_ins()?;
        p.activate_trigger_in(burst_ep, burst_bit)?;
    }
    Ok(())
}

/// Points the firmware's external fast settle at TTL input `input` and enables it, or disables
/// it and points it at input 0 (`None`): RHX `setExternalFastSettleChannel` and
/// `enableExternalFastSettle`, each a value on the multi-use wire taken by its trigger
/// ([`Interface::external_fast_settle_triggers`]).
pub(super) fn external_fast_settle(p: &mut dyn FrontPanel, interface: Interface, input: Option<u8>) -> PanelResult<()> {
    let [(enable_ep, enable_bit), (input_ep, input_bit)] = interface.external_fast_settle_triggers();
    let steps = match input {
        Some(n) => [(u32::from(n), input_ep, input_bit), (1, enable_ep, enable_bit)],
        None => [(0, enable_ep, enable_bit), (0, input_ep, input_bit)],
    };
    for (value, endpoint, bit) in steps {
        p.set_wire_in(ep::WIRE_IN_MULTI_USE, value, u32::MAX)?;
        p.update_wire_ins()?;
        p.activate_trigger_in(endpoint, bit)?;
    }
    Ok(())
}

/// Waits until `done(wire-out value)` holds, polling `endpoint`.
pub(super) fn wait_for(panel: &SharedPanel, endpoint: u8, done: impl Fn(u32) -> bool) -> PanelResult<bool> {
    let deadline = Instant::now() + HARDWARE_TIMEOUT;
    loop {
        {
            let mut p = lock(panel);
            p.update_wire_outs()?;
            if done(p.wire_out(endpoint)?) {
                return Ok(true);
            }
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        thread::sleep(Duration::from_micros(200));
    }
}

/// Programs the clock synthesizer (RHX `setSampleRate`: wait for the last programming to be
/// done, write `256 × M + D`, trigger, wait for the lock). RHD and RHS boards alike.
pub(super) fn set_sample_rate(
    panel: &SharedPanel,
    interface: Interface,
    settings: &BoardSettings,
) -> Result<(), BringUpError> {
    let name = &settings.name;
    let io = |operation| move |e| panel_error(name, operation, e);
    let (m, d) = ep::pll_setting(settings.sample_rate_hz).ok_or_else(|| {
        BringUpError::Device(DeviceError::Io {
            device: name.clone(),
            operation: "set the sample rate",
            source: std::io::Error::other(format!("{} Hz is not an Intan rate", settings.sample_rate_hz)),
        })
    })?;
    let not_locked = || BringUpError::ClockNotLocked {
        device: name.clone(),
        rate_hz: settings.sample_rate_hz,
        timeout_ms: HARDWARE_TIMEOUT.as_millis(),
    };
    if !wait_for(panel, ep::WIRE_OUT_DATA_CLK_LOCKED, |v| v & ep::DCM_PROG_DONE != 0)
        .map_err(io("set the sample rate"))?
    {
        return Err(not_locked());
    }
    {
        let mut p = lock(panel);
        p.set_wire_in(ep::WIRE_IN_DATA_FREQ_PLL, 256 * m + d, u32::MAX).map_err(io("set the sample rate"))?;
        p.update_wire_ins().map_err(io("set the sample rate"))?;
        let (trigger, bit) = interface.dcm_prog_trigger();
        p.activate_trigger_in(trigger, bit).map_err(io("set the sample rate"))?;
    }
    if !wait_for(panel, ep::WIRE_OUT_DATA_CLK_LOCKED, |v| v & ep::DATA_CLOCK_LOCKED != 0)
        .map_err(io("set the sample rate"))?
    {
        return Err(not_locked());
    }
    Ok(())
}

pub(super) fn upload(
    p: &mut dyn FrontPanel,
    interface: Interface,
    slot: usize,
    bank: u32,
    list: &[u16],
) -> PanelResult<()> {
    let (trigger, bit) = interface.ram_write_trigger(slot);
    for (address, &word) in list.iter().enumerate() {
        p.set_wire_in(ep::WIRE_IN_CMD_RAM_DATA, u32::from(word), u32::MAX)?;
        p.set_wire_in(ep::WIRE_IN_CMD_RAM_ADDR, address as u32, u32::MAX)?;
        p.set_wire_in(ep::WIRE_IN_CMD_RAM_BANK, bank, u32::MAX)?;
        p.update_wire_ins()?;
        p.activate_trigger_in(trigger, bit)?;
    }
    Ok(())
}

pub(super) fn select_length(
    p: &mut dyn FrontPanel,
    interface: Interface,
    slot: usize,
    loop_index: u32,
    end: u32,
) -> PanelResult<()> {
    let ((loop_ep, loop_shift, loop_mask), (end_ep, end_shift, end_mask)) = interface.aux_length(slot);
    p.set_wire_in(loop_ep, loop_index << loop_shift, loop_mask << loop_shift)?;
    p.set_wire_in(end_ep, end << end_shift, end_mask << end_shift)?;
    p.update_wire_ins()
}

/// Points aux slot `slot` of every port at `bank`.
pub(super) fn select_bank(p: &mut dyn FrontPanel, slot: usize, bank: u32) -> PanelResult<()> {
    let all_ports = (0..8).fold(0u32, |acc, port| acc | (bank << (4 * port)));
    p.set_wire_in(ep::WIRE_IN_AUX_CMD_BANK[slot], all_ports, u32::MAX)?;
    p.update_wire_ins()
}

fn upload_lists(p: &mut dyn FrontPanel, interface: Interface, rate_hz: f64) -> PanelResult<()> {
    let lists = [(0, commands::aux_inputs()), (1, commands::temperature())];
    for (slot, list) in &lists {
        upload(p, interface, *slot, 0, list)?;
        select_length(p, interface, *slot, 0, list.len() as u32 - 1)?;
        select_bank(p, *slot, 0)?;
    }
    upload(p, interface, CONFIG_SLOT, BANK_CALIBRATE, &commands::register_config(rate_hz, true))?;
    upload(p, interface, CONFIG_SLOT, BANK_STREAMING, &commands::register_config(rate_hz, false))?;
    upload(p, interface, CONFIG_SLOT, BANK_FAST_SETTLE, &commands::register_config_fast_settle(rate_hz))?;
    upload(p, interface, CONFIG_SLOT, BANK_TTL_FAST_SETTLE, &commands::register_config_ttl_fast_settle(rate_hz))?;
    select_length(p, interface, CONFIG_SLOT, 0, REGISTER_CONFIG_LEN as u32 - 1)?;
    select_bank(p, CONFIG_SLOT, BANK_CALIBRATE)
}

/// The MISO lines the scan listens to, one stream each: on USB 3 the even stream of every
/// line; on USB 2 and the Open Ephys USB 3 board the first 8 streams pointed at lines A1..D2
/// (Open Ephys `AcqBoardOpalKelly::scanPorts`: `initStreamPorts`).
fn scan_streams(p: &mut dyn FrontPanel, interface: Interface) -> PanelResult<Vec<usize>> {
    let lines = 2 * interface.ports();
    let mut enable = 0u32;
    match interface.data_source_select() {
        Some(select) => {
            let mut words = [0u32; 2];
            for line in 0..lines {
                let (wire, shift) = Interface::data_source_slot(line);
                words[wire] |= ep::usb2_source_code(line, false) << shift;
                enable |= 1 << line;
            }
            p.set_wire_in(select[0], words[0], interface.data_source_mask())?;
            p.set_wire_in(select[1], words[1], interface.data_source_mask())?;
        }
        None => (0..lines).for_each(|line| enable |= 1 << (2 * line)),
    }
    p.set_wire_in(ep::WIRE_IN_DATA_STREAM_EN, enable, u32::MAX)?;
    p.update_wire_ins()?;
    Ok((0..lines).collect())
}

/// Sets the MISO delay of the first `ports` ports to `delay`.
fn set_all_delays(p: &mut dyn FrontPanel, ports: usize, delay: u32) -> PanelResult<()> {
    let word = (0..ports).fold(0u32, |acc, port| acc | (delay << (4 * port)));
    let mask = if ports >= 8 { u32::MAX } else { (1u32 << (4 * ports)) - 1 };
    p.set_wire_in(ep::WIRE_IN_MISO_DELAY, word, mask)?;
    p.update_wire_ins()
}

/// One bounded run of the port scan at `delay` on the first `ports` ports: sets the delays,
/// runs the sequencer until it stops, and reads the run's frames into `bytes` (which holds
/// exactly the run). RHD and RHS boards alike.
pub(super) fn scan_run(
    panel: &SharedPanel,
    interface: Interface,
    ports: usize,
    delay: u32,
    name: &str,
    frames: usize,
    bytes: &mut [u8],
) -> Result<(), BringUpError> {
    let io = |operation| move |e| panel_error(name, operation, e);
    {
        let mut p = lock(panel);
        set_all_delays(&mut **p, ports, delay).map_err(io("scan ports"))?;
        p.activate_trigger_in(ep::TRIGGER_IN_SPI_START, 0).map_err(io("scan ports"))?;
    }
    let finished = wait_for(panel, ep::WIRE_OUT_SPI_RUNNING, |v| v & 1 == 0).map_err(io("scan ports"))?;
    let words_needed = (bytes.len() / 2) as u64;
    let have = fifo_words(&mut **lock(panel), interface).map_err(io("scan ports"))?;
    if !finished || have < words_needed {
        return Err(BringUpError::RunTimeout {
            device: name.to_string(),
            frames,
            timeout_ms: HARDWARE_TIMEOUT.as_millis(),
        });
    }
    lock(panel).read_pipe_out(ep::PIPE_OUT_DATA, interface.pipe_block_size(), bytes).map_err(io("scan ports"))?;
    Ok(())
}

pub(super) fn set_run_length(p: &mut dyn FrontPanel, interface: Interface, frames: u32) -> PanelResult<()> {
    let (lo, hi) = interface.max_time_step();
    match hi {
        Some(hi) => {
            p.set_wire_in(lo, frames & 0xffff, u32::MAX)?;
            p.set_wire_in(hi, frames >> 16, u32::MAX)?;
        }
        None => p.set_wire_in(lo, frames, u32::MAX)?,
    }
    p.update_wire_ins()
}

/// Words waiting in the FIFO.
pub(crate) fn fifo_words(p: &mut dyn FrontPanel, interface: Interface) -> PanelResult<u64> {
    p.update_wire_outs()?;
    let (lo, hi) = interface.fifo_words();
    let low = u64::from(p.wire_out(lo)?);
    Ok(match hi {
        Some(hi) => low | (u64::from(p.wire_out(hi)?) << 16),
        None => low,
    })
}

/// Runs the scan; returns the chips found and each port's chosen delay.
fn scan(
    panel: &SharedPanel,
    interface: Interface,
    settings: &BoardSettings,
) -> Result<(Vec<FoundChip>, Vec<u8>), BringUpError> {
    let name = &settings.name;
    let io = |operation| move |e| panel_error(name, operation, e);
    let lines = {
        let mut p = lock(panel);
        set_run_length(&mut **p, interface, SCAN_FRAMES as u32).map_err(io("scan ports"))?;
        p.set_wire_in(ep::WIRE_IN_RESET_RUN, 0, ep::CONTINUOUS_RUN_BIT).map_err(io("scan ports"))?;
        p.update_wire_ins().map_err(io("scan ports"))?;
        scan_streams(&mut **p, interface).map_err(io("scan ports"))?
    };
    let format = FrameFormat::new(settings.board, lines.len()).expect("scan streams fit the board");
    let mut block = FrameBlock::new(BlockLayout {
        amplifier_channels: format.amplifier_channels(),
        aux_channels: format.aux_channels(),
        analog_in_channels: ANALOG_INPUTS,
        frames_per_block: SCAN_FRAMES,
    });
    let mut bytes = vec![0u8; SCAN_FRAMES * format.bytes_per_frame()];
    // good[line][delay]: passes that read the ROM intact; chip seen on the line.
    let mut good = vec![[0usize; 16]; lines.len()];
    let mut seen: Vec<Option<RhdChip>> = vec![None; lines.len()];
    let mut results = vec![0u16; REGISTER_CONFIG_LEN];
    for delay in 0..16u32 {
        scan_run(panel, interface, 8, delay, name, SCAN_FRAMES, &mut bytes)?;
        if decode(&format, &bytes, &mut block, None).is_err() {
            // A corrupt scan run counts as no good pass at this delay.
            continue;
        }
        for (s, line_good) in good.iter_mut().enumerate() {
            for pass in 0..SCAN_PASSES {
                // The result of command i arrives with the next frame (aux index i + 1).
                for (i, r) in results.iter_mut().enumerate() {
                    let frame = pass * REGISTER_CONFIG_LEN + i + 1;
                    *r = if frame < SCAN_FRAMES {
                        block.aux[frame * format.aux_channels() + s * 3 + CONFIG_SLOT]
                    } else {
                        0
                    };
                }
                let Some(rom) = RomReading::read(&results, settings.sample_rate_hz) else { continue };
                let chip = RhdChip::from_chip_id(rom.chip_id);
                let marker_ok = chip != Some(RhdChip::Rhd2164) || rom.miso_marker == u16::from(rhd::MISO_A_MARKER);
                if rom.intact && rom.ram_matches && marker_ok {
                    if let Some(chip) = chip {
                        line_good[delay as usize] += 1;
                        seen[s] = Some(chip);
                    }
                }
            }
        }
    }
    let mut chips = Vec::new();
    let mut delays = vec![0u8; interface.ports()];
    for (line, chip) in seen.iter().enumerate() {
        let Some(chip) = *chip else { continue };
        let port = line / 2;
        if port >= settings.ports {
            continue;
        }
        let delay = choose_delay(&good[line], chip);
        delays[port] = delays[port].max(delay);
        chips.push(FoundChip { port, line: line % 2, chip });
    }
    Ok((chips, delays))
}

/// The delay RHX would choose from the good-pass counts of one line.
fn choose_delay(good: &[usize; 16], chip: RhdChip) -> u8 {
    let best = *good.iter().max().unwrap_or(&0);
    let winners: Vec<u8> = (0..16u8).filter(|&d| good[usize::from(d)] == best).collect();
    match winners.len() {
        2 if chip == RhdChip::Rhd2164 => winners[1],
        n if n > 2 => winners[1],
        _ => winners[0],
    }
}

/// One stream per chip (two for an RHD2164), in port and line order.
fn plan_streams(chips: &[FoundChip], interface: Interface) -> Vec<StreamPlan> {
    let mut plans = Vec::new();
    for c in chips {
        let line = 2 * c.port + c.line;
        for half in 0..c.chip.streams() {
            let ddr = half == 1;
            // Chosen sources fill the streams in order; USB 3 has two fixed streams per line.
            let board_stream = match interface.data_source_select() {
                None => 2 * line + half,
                Some(_) => plans.len(),
            };
            plans.push(StreamPlan {
                board_stream,
                port: c.port,
                line: c.line,
                ddr,
                chip: c.chip.into(),
                channels: c.chip.amplifiers().min(32),
            });
        }
    }
    plans.sort_by_key(|s| s.board_stream);
    plans
}

fn configure_streams(
    p: &mut dyn FrontPanel,
    interface: Interface,
    streams: &[StreamPlan],
    delays: &[u8],
) -> PanelResult<()> {
    let mut enable = 0u32;
    let mut select = [0u32; 2];
    for s in streams {
        enable |= 1 << s.board_stream;
        if interface.data_source_select().is_some() {
            let code = ep::usb2_source_code(2 * s.port + s.line, s.ddr);
            let (wire, shift) = Interface::data_source_slot(s.board_stream);
            select[wire] |= code << shift;
        }
    }
    if let Some(wires) = interface.data_source_select() {
        p.set_wire_in(wires[0], select[0], interface.data_source_mask())?;
        p.set_wire_in(wires[1], select[1], interface.data_source_mask())?;
    }
    p.set_wire_in(ep::WIRE_IN_DATA_STREAM_EN, enable, u32::MAX)?;
    let delay_word = delays.iter().enumerate().fold(0u32, |acc, (port, &d)| acc | (u32::from(d) << (4 * port)));
    p.set_wire_in(ep::WIRE_IN_MISO_DELAY, delay_word, u32::MAX)?;
    p.update_wire_ins()?;
    select_bank(p, CONFIG_SLOT, BANK_STREAMING)?;
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
        assert_eq!(choose_delay(&good, RhdChip::Rhd2132), 4);
        assert_eq!(choose_delay(&good, RhdChip::Rhd2164), 5);
        good[6] = 2;
        assert_eq!(choose_delay(&good, RhdChip::Rhd2132), 5);
        let mut one = [0usize; 16];
        one[9] = 1;
        assert_eq!(choose_delay(&one, RhdChip::Rhd2216), 9);
    }

    #[test]
    fn streams_follow_ports_and_lines_with_two_for_an_rhd2164() {
        let chips = [
            FoundChip { port: 0, line: 0, chip: RhdChip::Rhd2164 },
            FoundChip { port: 1, line: 1, chip: RhdChip::Rhd2216 },
        ];
        let usb3 = plan_streams(&chips, Interface::Usb3);
        assert_eq!(
            usb3.iter().map(|s| (s.board_stream, s.ddr, s.channels)).collect::<Vec<_>>(),
            [(0, false, 32), (1, true, 32), (6, false, 16)]
        );
        let usb2 = plan_streams(&chips, Interface::Usb2);
        assert_eq!(usb2.iter().map(|s| s.board_stream).collect::<Vec<_>>(), [0, 1, 2]);
        let open_ephys_usb3 = plan_streams(&chips, Interface::OpenEphysUsb3);
        assert_eq!(open_ephys_usb3.iter().map(|s| s.board_stream).collect::<Vec<_>>(), [0, 1, 2]);
    }
}
