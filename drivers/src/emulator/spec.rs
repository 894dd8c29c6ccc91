//! What board the emulator plays: its kind, the chips on each port, cable delays, signal and
//! faults, written as one line of `key=value` words so the same text configures the emulator
//! in process (`device.emulator`) and in its C library (the `OKFP_EMU_SPEC` variable):
//!
//! ```text
//! board=rhd-controller ports=A:2164+2164,B:2132,C:2216 delays=A:5,B:9 seed=7 mode=sim-spikes
//! ```
//!
//! | key | meaning | default |
//! |---|---|---|
//! | `board` | a Rhythm board name: `rhd-usb-interface`, `open-ephys`, `open-ephys-usb3`, `rhd-controller`, `xdaq-rhd-gen1`, `xdaq-rhd-gen2`, `xdaq-rhs-gen1`, `xdaq-rhs-gen2` | `rhd-controller` |
//! | `ports` | per port letter, the chips on MISO lines 1 and 2 (RHD boards: `2132`, `2216`, `2164`; XDAQ with RHS headstages: `2116`, ports A–D), `+`-separated | `A:2164` |
//! | `delays` | per port, the MISO delay (0–14) at which the cable reads cleanly; the next one also does | 3 on every port |
//! | `serial` | the board's serial number (up to 10 characters) | `EMU0000001` |
//! | `seed`, `mode` | the simulated signal on the electrodes (`sim-spikes`, `sim-sine`, `sim-lfp`, `sim-broadband`) | 1, `sim-spikes` |
//! | `pace` | `realtime`: frames appear at the sample rate; `free`: as fast as they are read | `realtime` |
//! | `faults` | comma-separated, see [`Fault`] | none |
//! | `open` | per port, amplifier channels (0-based, in the port's stream order) whose electrode is broken off: only a stray 1 pF remains, so it measures as a very high impedance, e.g. `A:3,A:17,C:0` | none |
//! | `ttl-in` | comma-separated, TTL inputs driven high periodically, see [`TtlPattern`], e.g. `5:300:100+60` | none (input 0 pulses as the simulated device's) |
//!
//! `board=sinaps-256`, `sinaps-512` or `sinaps-1024` selects the emulated SmartBox Pro with a
//! SiNAPS probe instead; it takes `probe`, `serial`, `firmware`, `seed`, `mode`, `pace` and
//! `faults` (no ports: see [`crate::emulator::sinaps`]). [`EmulatedBoardSpec`] reads a spec of
//! either kind.

use std::fmt;
use std::str::FromStr;

use crate::rhythm::endpoints::{self as ep, Interface};
use crate::rhythm::rhd::RhdChip;
use crate::rhythm::rhs::RhsChip;
use crate::rhythm::{Board, HeadstageChip};
use crate::sim::SimMode;

/// The environment variable the emulator's C library reads its spec from (not `EPHYSD_*`:
/// the daemon reads those as configuration keys).
pub const SPEC_ENV: &str = "OKFP_EMU_SPEC";

/// One fault the emulator injects, at a point of the stream.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    /// `unplug@S[+R]`: the board disappears S seconds into the run (every operation fails as
    /// a vanished USB device does) and comes back R seconds later (never, without `+R`).
    Unplug { after_s: f64, back_after_s: Option<f64> },
    /// `stall@S[+D]`: S seconds into the run the pipe stops moving data for D seconds (for
    /// good, without `+D`) while the sequencer keeps filling the FIFO: reads wait, and time out
    /// once they have waited longer than FrontPanel's timeout.
    Stall { after_s: f64, for_s: Option<f64> },
    /// `corrupt@F`: the magic number of frame F is damaged on the wire.
    Corrupt { frame: u64 },
    /// `drop@F+N`: N frames starting at frame F never reach USB (their sample indices are
    /// missing from the stream).
    Drop { frame: u64, frames: u64 },
}

impl Fault {
    pub(crate) fn parse(text: &str) -> Result<Fault, String> {
        let (kind, at) = text.split_once('@').ok_or_else(|| format!("{text}: expected kind@when"))?;
        let (first, second) = match at.split_once('+') {
            Some((a, b)) => (a, Some(b)),
            None => (at, None),
        };
        let seconds = |s: &str| {
            s.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| format!("{text}: {s} is not seconds"))
        };
        let frame = |s: &str| s.parse::<u64>().map_err(|_| format!("{text}: {s} is not a frame number"));
        Ok(match kind {
            "unplug" => Fault::Unplug { after_s: seconds(first)?, back_after_s: second.map(seconds).transpose()? },
            "stall" => Fault::Stall { after_s: seconds(first)?, for_s: second.map(seconds).transpose()? },
            "corrupt" => Fault::Corrupt { frame: frame(first)? },
            "drop" => Fault::Drop { frame: frame(first)?, frames: second.map(frame).transpose()?.unwrap_or(1) },
            other => return Err(format!("{other}: allowed unplug, stall, corrupt, drop")),
        })
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Unplug { after_s, back_after_s: Some(b) } => write!(f, "unplug@{after_s}+{b}"),
            Fault::Unplug { after_s, back_after_s: None } => write!(f, "unplug@{after_s}"),
            Fault::Stall { after_s, for_s: Some(d) } => write!(f, "stall@{after_s}+{d}"),
            Fault::Stall { after_s, for_s: None } => write!(f, "stall@{after_s}"),
            Fault::Corrupt { frame } => write!(f, "corrupt@{frame}"),
            Fault::Drop { frame, frames } => write!(f, "drop@{frame}+{frames}"),
        }
    }
}

/// `LINE:PERIOD:FROM+HIGH`: TTL input `LINE` (0–15) is high on the run's frames whose index
/// modulo `PERIOD` lies in `FROM..FROM + HIGH`, low on the others. Driven lines are added to
/// the simulated digital inputs (input 0's 10 ms pulse each second stays), and the FPGA reads
/// them as it reads its TTL inputs: the frames' TTL-in word, wire-out 0x23, external fast
/// settle, the stimulation sequencers' triggers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TtlPattern {
    pub line: u8,
    pub period: u64,
    pub from: u64,
    pub high: u64,
}

impl TtlPattern {
    /// Whether the line is high on frame `frame` of a run.
    #[inline]
    pub fn high_at(&self, frame: u64) -> bool {
        (self.from..self.from + self.high).contains(&(frame % self.period))
    }

    fn parse(text: &str) -> Result<TtlPattern, String> {
        let bad = || format!("{text}: expected LINE:PERIOD:FROM+HIGH, e.g. 5:300:100+60");
        let (line, rest) = text.split_once(':').ok_or_else(bad)?;
        let (period, window) = rest.split_once(':').ok_or_else(bad)?;
        let (from, high) = window.split_once('+').ok_or_else(bad)?;
        let number = |s: &str| s.parse::<u64>().map_err(|_| bad());
        let line = line.parse::<u8>().ok().filter(|l| *l < 16).ok_or_else(|| format!("{text}: line allowed 0..=15"))?;
        let (period, from, high) = (number(period)?, number(from)?, number(high)?);
        if period == 0 || from + high > period {
            return Err(format!("{text}: needs PERIOD >= 1 and FROM + HIGH <= PERIOD"));
        }
        Ok(TtlPattern { line, period, from, high })
    }
}

impl fmt::Display for TtlPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}+{}", self.line, self.period, self.from, self.high)
    }
}

/// One headstage port of the emulated board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmulatedPort {
    /// 0 = A.
    pub port: usize,
    /// The chips on MISO lines 1 and 2.
    pub miso: [Option<HeadstageChip>; 2],
    /// The MISO delay setting at which this cable reads cleanly (this and the next one do).
    pub cable_delay: u8,
}

impl EmulatedPort {
    pub fn letter(&self) -> char {
        (b'A' + self.port as u8) as char
    }
}

/// The emulated board, fully described.
#[derive(Debug, Clone, PartialEq)]
pub struct EmulatorSpec {
    pub board: Board,
    pub serial: String,
    /// Ports with something plugged in, in port order.
    pub ports: Vec<EmulatedPort>,
    pub seed: u64,
    pub mode: SimMode,
    /// Frames appear at the sample rate (`true`) or as fast as they are read.
    pub realtime: bool,
    pub faults: Vec<Fault>,
    /// Broken electrodes: (port, amplifier channel of the port), in the order given.
    pub open: Vec<(usize, usize)>,
    /// TTL inputs driven high periodically (`ttl-in`).
    pub ttl_in: Vec<TtlPattern>,
}

/// A spec that does not describe a board the emulator can play.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("emulator spec {key}: {message}")]
pub struct EmulatorSpecError {
    /// The key at fault.
    pub key: String,
    pub message: String,
}

fn refuse(key: &str, message: impl Into<String>) -> EmulatorSpecError {
    EmulatorSpecError { key: key.to_string(), message: message.into() }
}

/// `seed=`, the simulated signal's seed (shared by every emulated board's spec).
pub(crate) fn parse_seed(key: &str, value: &str) -> Result<u64, EmulatorSpecError> {
    value.parse().map_err(|_| refuse(key, format!("{value}: an integer")))
}

/// `mode=`, the simulated signal on the electrodes.
pub(crate) fn parse_mode(key: &str, value: &str) -> Result<SimMode, EmulatorSpecError> {
    value.parse().map_err(|_| {
        let names: Vec<_> = SimMode::ALL.iter().map(|m| m.name()).collect();
        refuse(key, format!("{value}: allowed {}", names.join(", ")))
    })
}

/// `pace=`: whether frames appear in real time (`realtime`) or as fast as read (`free`).
pub(crate) fn parse_pace(key: &str, value: &str) -> Result<bool, EmulatorSpecError> {
    match value {
        "realtime" => Ok(true),
        "free" => Ok(false),
        _ => Err(refuse(key, format!("{value}: allowed realtime, free"))),
    }
}

/// `faults=`, comma-separated [`Fault`]s.
pub(crate) fn parse_faults(key: &str, value: &str) -> Result<Vec<Fault>, EmulatorSpecError> {
    value.split(',').filter(|s| !s.is_empty()).map(Fault::parse).collect::<Result<_, _>>().map_err(|m| refuse(key, m))
}

const DEFAULT_DELAY: u8 = 3;

impl Default for EmulatorSpec {
    fn default() -> Self {
        EmulatorSpec {
            board: Board::RhdController,
            serial: "EMU0000001".into(),
            ports: vec![EmulatedPort {
                port: 0,
                miso: [Some(HeadstageChip::Rhd(RhdChip::Rhd2164)), None],
                cable_delay: DEFAULT_DELAY,
            }],
            seed: 1,
            mode: SimMode::Spikes,
            realtime: true,
            faults: Vec::new(),
            open: Vec::new(),
            ttl_in: Vec::new(),
        }
    }
}

impl EmulatorSpec {
    pub fn serial(&self) -> &str {
        &self.serial
    }

    /// The FrontPanel module the board is built on, as the vendor library names it.
    pub fn model(&self) -> &'static str {
        match self.board {
            Board::RhdUsbInterface | Board::OpenEphys | Board::RhsController => "XEM6010LX45",
            // Open Ephys `Rhd2000EvalBoard::open`: an XEM6310-LX45 is its USB 3 board.
            Board::RhdController | Board::OpenEphysUsb3 => "XEM6310LX45",
            Board::XdaqRhd(_) | Board::XdaqRhs(_) => "XEM7310A75",
        }
    }

    /// The spec in [`SPEC_ENV`], or the default spec when it is unset.
    pub fn from_env() -> Result<EmulatorSpec, EmulatorSpecError> {
        match std::env::var(SPEC_ENV) {
            Ok(text) => text.parse(),
            Err(std::env::VarError::NotPresent) => Ok(EmulatorSpec::default()),
            Err(e) => Err(refuse(SPEC_ENV, e.to_string())),
        }
    }

    /// The board's register map: an RHD board's, or for XDAQ with RHS headstages the map its
    /// frames leave the board through ([`ep::rhs::TRANSPORT`]; the rest of that map is in
    /// [`ep::rhs`]).
    pub fn interface(&self) -> Interface {
        Interface::of(self.board).unwrap_or(ep::rhs::TRANSPORT)
    }

    /// SPI ports with headstage connectors.
    pub fn port_count(&self) -> usize {
        match Interface::of(self.board) {
            Some(interface) => interface.ports(),
            None => ep::rhs::PORTS,
        }
    }

    /// Amplifier channels across every chip.
    pub fn amplifier_channels(&self) -> usize {
        self.ports.iter().flat_map(|p| p.miso.iter().flatten()).map(|c| c.amplifiers()).sum()
    }

    /// Amplifier channels of port `port` (0 = A).
    pub fn port_channels(&self, port: usize) -> usize {
        self.ports.iter().filter(|p| p.port == port).flat_map(|p| p.miso.iter().flatten()).map(|c| c.amplifiers()).sum()
    }

    /// The electrode index (among [`amplifier_channels`](Self::amplifier_channels), in port and
    /// MISO-line order) of amplifier channel `channel` of port `port`.
    pub fn electrode_index(&self, port: usize, channel: usize) -> Option<usize> {
        if channel >= self.port_channels(port) {
            return None;
        }
        let before: usize = (0..port).map(|p| self.port_channels(p)).sum();
        Some(before + channel)
    }

    fn validate(&self) -> Result<(), EmulatorSpecError> {
        if Interface::of(self.board).is_none() && !matches!(self.board, Board::XdaqRhs(_)) {
            return Err(refuse(
                "board",
                format!(
                    "{}: the emulator plays RHD boards and XDAQ with RHS headstages (xdaq-rhs-gen1, xdaq-rhs-gen2); \
                     Intan's RHS controller is not emulated",
                    self.board.name()
                ),
            ));
        }
        let family = self.board.chip();
        if self.serial.is_empty() || self.serial.len() > 10 || !self.serial.is_ascii() {
            return Err(refuse("serial", format!("{:?}: 1 to 10 ASCII characters", self.serial)));
        }
        for p in &self.ports {
            if p.port >= self.port_count() {
                let last = (b'A' + self.port_count() as u8 - 1) as char;
                return Err(refuse(
                    "ports",
                    format!("port {}: {} has ports A..={last}", p.letter(), self.board.name()),
                ));
            }
            if p.cable_delay > 14 {
                return Err(refuse("delays", format!("port {}: {} (allowed 0..=14)", p.letter(), p.cable_delay)));
            }
            if let Some(chip) = p.miso.iter().flatten().find(|c| c.family() != family) {
                let takes = match family {
                    crate::rhythm::ChipFamily::Rhd => "RHD headstages (2132, 2216, 2164)",
                    crate::rhythm::ChipFamily::Rhs => "RHS headstages (2116)",
                };
                return Err(refuse(
                    "ports",
                    format!("port {}: {} on {}, which takes {takes}", p.letter(), chip.name(), self.board.name()),
                ));
            }
        }
        for &(port, channel) in &self.open {
            let have = self.port_channels(port);
            if channel >= have {
                let letter = (b'A' + port as u8) as char;
                return Err(refuse("open", format!("{letter}:{channel}: port {letter} has {have} amplifier channels")));
            }
        }
        let streams: usize = self.ports.iter().flat_map(|p| p.miso.iter().flatten()).map(|c| c.streams()).sum();
        if streams > self.board.max_streams() {
            return Err(refuse(
                "ports",
                format!(
                    "the chips need {streams} data streams, {} carries {}",
                    self.board.name(),
                    self.board.max_streams()
                ),
            ));
        }
        Ok(())
    }
}

fn parse_port_letter(key: &str, text: &str) -> Result<usize, EmulatorSpecError> {
    match text.as_bytes() {
        [c @ b'A'..=b'H'] => Ok((c - b'A') as usize),
        _ => Err(refuse(key, format!("{text}: a port letter A..=H"))),
    }
}

fn parse_chip(text: &str) -> Result<Option<HeadstageChip>, EmulatorSpecError> {
    Ok(Some(match text {
        "2132" => HeadstageChip::Rhd(RhdChip::Rhd2132),
        "2216" => HeadstageChip::Rhd(RhdChip::Rhd2216),
        "2164" => HeadstageChip::Rhd(RhdChip::Rhd2164),
        "2116" => HeadstageChip::Rhs(RhsChip::Rhs2116),
        "none" | "-" => return Ok(None),
        other => return Err(refuse("ports", format!("{other}: allowed 2132, 2216, 2164, 2116, none"))),
    }))
}

impl FromStr for EmulatorSpec {
    type Err = EmulatorSpecError;

    fn from_str(text: &str) -> Result<EmulatorSpec, EmulatorSpecError> {
        let mut spec = EmulatorSpec::default();
        let mut delays: Vec<(usize, u8)> = Vec::new();
        for word in text.split_whitespace() {
            let (key, value) = word.split_once('=').ok_or_else(|| refuse(word, "expected key=value"))?;
            match key {
                "board" => {
                    spec.board = Board::from_name(value).ok_or_else(|| {
                        let names: Vec<_> = Board::ALL.iter().map(|b| b.name()).collect();
                        refuse(key, format!("{value}: allowed {}", names.join(", ")))
                    })?
                }
                "serial" => spec.serial = value.to_string(),
                "seed" => spec.seed = parse_seed(key, value)?,
                "mode" => spec.mode = parse_mode(key, value)?,
                "pace" => spec.realtime = parse_pace(key, value)?,
                "ports" => {
                    spec.ports.clear();
                    for item in value.split(',').filter(|s| !s.is_empty()) {
                        let (letter, chips) =
                            item.split_once(':').ok_or_else(|| refuse(key, format!("{item}: expected A:2132")))?;
                        let port = parse_port_letter(key, letter)?;
                        let mut miso = [None, None];
                        let parts: Vec<&str> = chips.split('+').collect();
                        if parts.len() > 2 {
                            return Err(refuse(key, format!("{item}: a port has two MISO lines")));
                        }
                        for (slot, part) in parts.into_iter().enumerate() {
                            miso[slot] = parse_chip(part)?;
                        }
                        if spec.ports.iter().any(|p| p.port == port) {
                            return Err(refuse(key, format!("port {letter} given twice")));
                        }
                        spec.ports.push(EmulatedPort { port, miso, cable_delay: DEFAULT_DELAY });
                    }
                    spec.ports.sort_by_key(|p| p.port);
                }
                "delays" => {
                    for item in value.split(',').filter(|s| !s.is_empty()) {
                        let (letter, delay) =
                            item.split_once(':').ok_or_else(|| refuse(key, format!("{item}: expected A:5")))?;
                        let delay = delay.parse().map_err(|_| refuse(key, format!("{item}: allowed 0..=14")))?;
                        delays.push((parse_port_letter(key, letter)?, delay));
                    }
                }
                "open" => {
                    spec.open.clear();
                    for item in value.split(',').filter(|s| !s.is_empty()) {
                        let (letter, channel) =
                            item.split_once(':').ok_or_else(|| refuse(key, format!("{item}: expected A:3")))?;
                        let channel = channel.parse().map_err(|_| refuse(key, format!("{item}: a channel number")))?;
                        spec.open.push((parse_port_letter(key, letter)?, channel));
                    }
                }
                "ttl-in" => {
                    spec.ttl_in = value
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .map(TtlPattern::parse)
                        .collect::<Result<_, _>>()
                        .map_err(|m| refuse(key, m))?
                }
                "faults" => spec.faults = parse_faults(key, value)?,
                other => {
                    return Err(refuse(
                        other,
                        "unknown key (allowed board, ports, delays, serial, seed, mode, pace, faults, open, ttl-in)",
                    ))
                }
            }
        }
        for (port, delay) in delays {
            let p =
                spec.ports.iter_mut().find(|p| p.port == port).ok_or_else(|| {
                    refuse("delays", format!("port {}: nothing plugged in", (b'A' + port as u8) as char))
                })?;
            p.cable_delay = delay;
        }
        spec.validate()?;
        Ok(spec)
    }
}

impl fmt::Display for EmulatorSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let chip = |c: &Option<HeadstageChip>| c.map_or("none", |c| &c.name()[3..]);
        let ports: Vec<String> =
            self.ports.iter().map(|p| format!("{}:{}+{}", p.letter(), chip(&p.miso[0]), chip(&p.miso[1]))).collect();
        let delays: Vec<String> = self.ports.iter().map(|p| format!("{}:{}", p.letter(), p.cable_delay)).collect();
        write!(
            f,
            "board={} serial={} ports={} delays={} seed={} mode={} pace={}",
            self.board.name(),
            self.serial,
            ports.join(","),
            delays.join(","),
            self.seed,
            self.mode.name(),
            if self.realtime { "realtime" } else { "free" }
        )?;
        if !self.faults.is_empty() {
            let faults: Vec<String> = self.faults.iter().map(|x| x.to_string()).collect();
            write!(f, " faults={}", faults.join(","))?;
        }
        if !self.open.is_empty() {
            let open: Vec<String> =
                self.open.iter().map(|&(p, c)| format!("{}:{c}", (b'A' + p as u8) as char)).collect();
            write!(f, " open={}", open.join(","))?;
        }
        if !self.ttl_in.is_empty() {
            let ttl: Vec<String> = self.ttl_in.iter().map(|t| t.to_string()).collect();
            write!(f, " ttl-in={}", ttl.join(","))?;
        }
        Ok(())
    }
}

/// A spec of any board the emulator plays: a Rhythm board, or (with `board=sinaps-*`) the
/// SmartBox Pro with a SiNAPS probe.
#[derive(Debug, Clone, PartialEq)]
pub enum EmulatedBoardSpec {
    Rhythm(EmulatorSpec),
    Sinaps(super::sinaps::SinapsEmulatorSpec),
}

impl EmulatedBoardSpec {
    /// The spec in [`SPEC_ENV`], or the default Rhythm board when it is unset.
    pub fn from_env() -> Result<EmulatedBoardSpec, EmulatorSpecError> {
        match std::env::var(SPEC_ENV) {
            Ok(text) => text.parse(),
            Err(std::env::VarError::NotPresent) => Ok(EmulatedBoardSpec::Rhythm(EmulatorSpec::default())),
            Err(e) => Err(refuse(SPEC_ENV, e.to_string())),
        }
    }

    /// A provider of a board of its own, alone on its bus.
    pub fn provider(&self) -> std::sync::Arc<dyn crate::frontpanel::PanelProvider> {
        match self {
            EmulatedBoardSpec::Rhythm(s) => std::sync::Arc::new(super::EmulatorProvider::new(s.clone())),
            EmulatedBoardSpec::Sinaps(s) => std::sync::Arc::new(super::sinaps::SinapsEmulatorProvider::new(s.clone())),
        }
    }
}

impl FromStr for EmulatedBoardSpec {
    type Err = EmulatorSpecError;

    fn from_str(text: &str) -> Result<EmulatedBoardSpec, EmulatorSpecError> {
        if super::sinaps::is_sinaps_spec(text) {
            text.parse().map(EmulatedBoardSpec::Sinaps)
        } else {
            text.parse().map(EmulatedBoardSpec::Rhythm)
        }
    }
}

impl fmt::Display for EmulatedBoardSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EmulatedBoardSpec::Rhythm(s) => s.fmt(f),
            EmulatedBoardSpec::Sinaps(s) => s.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_reads_back_what_it_prints() {
        let text = "board=xdaq-rhd-gen2 ports=A:2164+2164,C:2216 delays=A:5,C:11 serial=XD1 seed=9 mode=sim-sine pace=free faults=unplug@1.5+2,drop@300+7,corrupt@1000,stall@4,stall@2+0.5 open=A:127,C:3 ttl-in=5:300:100+60,0:7:0+7";
        let spec: EmulatorSpec = text.parse().unwrap();
        assert_eq!(spec.amplifier_channels(), 128 + 16);
        assert_eq!(spec.open, [(0, 127), (2, 3)]);
        assert_eq!(spec.electrode_index(2, 3), Some(131));
        assert_eq!(spec.electrode_index(2, 16), None);
        assert_eq!(spec.ports[1].cable_delay, 11);
        assert_eq!(spec.faults[1], Fault::Drop { frame: 300, frames: 7 });
        assert_eq!(spec.ttl_in[0], TtlPattern { line: 5, period: 300, from: 100, high: 60 });
        assert!(!spec.ttl_in[0].high_at(399) && spec.ttl_in[0].high_at(400) && !spec.ttl_in[0].high_at(460));
        let again: EmulatorSpec = spec.to_string().parse().unwrap();
        assert_eq!(again, spec);
    }

    #[test]
    fn each_bad_key_is_named_with_what_is_allowed() {
        let e = "board=rhs-controller".parse::<EmulatorSpec>().unwrap_err();
        assert!(e.key == "board" && e.message.contains("RHD boards"), "{e}");
        let e = "board=rhd-usb-interface ports=E:2132".parse::<EmulatorSpec>().unwrap_err();
        assert!(e.message.contains("A..=D"), "{e}");
        let e = "ports=A:2164+2164,B:2164+2164,C:2164+2164,D:2164+2164,E:2164+2164,F:2164+2164,G:2164+2164,H:2164+2164,A:2132"
            .parse::<EmulatorSpec>()
            .unwrap_err();
        assert!(e.message.contains("twice"), "{e}");
        let e = "board=rhd-usb-interface ports=A:2164+2164,B:2164+2164,C:2132".parse::<EmulatorSpec>().unwrap_err();
        assert!(e.message.contains("9 data streams"), "{e}");
        let e = "ports=A:2133".parse::<EmulatorSpec>().unwrap_err();
        assert!(e.message.contains("allowed 2132, 2216, 2164"), "{e}");
        let e = "delays=B:3".parse::<EmulatorSpec>().unwrap_err();
        assert!(e.message.contains("nothing plugged in"), "{e}");
        let e = "delays=A:15".parse::<EmulatorSpec>().unwrap_err();
        assert!(e.message.contains("0..=14"), "{e}");
        let e = "faults=melt@3".parse::<EmulatorSpec>().unwrap_err();
        assert!(e.message.contains("unplug, stall"), "{e}");
        let e = "ports=A:2216 open=A:16".parse::<EmulatorSpec>().unwrap_err();
        assert!(e.key == "open" && e.message.contains("16 amplifier channels"), "{e}");
        let e = "ttl-in=16:10:0+1".parse::<EmulatorSpec>().unwrap_err();
        assert!(e.key == "ttl-in" && e.message.contains("0..=15"), "{e}");
        let e = "ttl-in=1:10:5+6".parse::<EmulatorSpec>().unwrap_err();
        assert!(e.key == "ttl-in" && e.message.contains("FROM + HIGH <= PERIOD"), "{e}");
        let e = "colour=red".parse::<EmulatorSpec>().unwrap_err();
        assert!(e.key == "colour" && e.message.contains("allowed board"), "{e}");
    }

    #[test]
    fn xdaq_with_rhs_headstages_takes_rhs2116_chips_on_ports_a_to_d() {
        let text = "board=xdaq-rhs-gen2 ports=A:2116+2116,D:none+2116 delays=A:2,D:12 seed=4 pace=free";
        let spec: EmulatorSpec = text.parse().unwrap();
        assert_eq!(spec.amplifier_channels(), 48);
        assert_eq!((spec.port_channels(0), spec.port_channels(3)), (32, 16));
        assert_eq!(spec.port_count(), 4);
        assert_eq!(spec.ports[0].miso[1], Some(HeadstageChip::Rhs(RhsChip::Rhs2116)));
        let again: EmulatorSpec = spec.to_string().parse().unwrap();
        assert_eq!(again, spec);
        assert!(spec.to_string().contains("ports=A:2116+2116,D:none+2116"), "{spec}");
        let e = "board=xdaq-rhs-gen1 ports=E:2116".parse::<EmulatorSpec>().unwrap_err();
        assert!(e.key == "ports" && e.message.contains("A..=D"), "{e}");
        let e = "board=xdaq-rhs-gen1 ports=A:2116+2132".parse::<EmulatorSpec>().unwrap_err();
        assert!(e.key == "ports" && e.message.contains("RHD2132 on xdaq-rhs-gen1"), "{e}");
        let e = "board=xdaq-rhd-gen1 ports=B:2116".parse::<EmulatorSpec>().unwrap_err();
        assert!(e.message.contains("RHS2116 on xdaq-rhd-gen1, which takes RHD headstages"), "{e}");
        let e = "ports=A:2117".parse::<EmulatorSpec>().unwrap_err();
        assert!(e.message.contains("2116"), "{e}");
    }
}
