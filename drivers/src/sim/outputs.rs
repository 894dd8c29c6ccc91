//! The simulated device's outputs, and what they do to its stream.
//!
//! The simulated board is wired so that everything its control side does shows up in the
//! frames, where a test (or a lab checking its set-up) can see it:
//! * digital out: the word driven is the `digital_out` word of every frame from the next block;
//! * analog out: output n is looped back to analog input n (a cable from each DAC to the
//!   matching ADC), so a driven output replaces that input's own signal, in ADC codes;
//! * stimulation: a pulse adds its artifact to its channel from the first frame of the next
//!   block: each phase a rectangle of [`ARTIFACT_UV_PER_UA`] µV per µA for its duration.
//!
//! The control side writes atomics and a wait-free queue; the source reads them once per block,
//! so the real-time side never waits for the control plane.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::control::{StimPulse, ANALOG_OUT_FULL_SCALE_V, MAX_STIM_PHASES};
use crate::frame::{FrameBlock, AMPLIFIER_UV_PER_UNIT};

/// Analog outputs (DACs) of the simulated board.
pub const ANALOG_OUT_CHANNELS: usize = 8;
/// Artifact a stimulation phase leaves on its channel, µV per µA of current.
pub const ARTIFACT_UV_PER_UA: f64 = 100.0;
/// Pulses that may wait for the next block.
pub const STIM_QUEUE_CAPACITY: usize = 256;
/// Pulses that may be playing out at once (on all channels together).
pub const STIM_PLAYING_CAPACITY: usize = 1024;

/// ADC codes per volt of the board's analog inputs (±10.24 V over 16 bits).
const ADC_CODES_PER_VOLT: f64 = 32768.0 / ANALOG_OUT_FULL_SCALE_V;
/// Marks an analog output that has never been driven (its input keeps its own signal).
const UNDRIVEN: u64 = u64::MAX;

/// Output state shared by the control side (writer) and the streams' sources (readers).
#[derive(Debug)]
pub(crate) struct Outputs {
    digital_out: AtomicU32,
    /// Volts as f64 bits, or [`UNDRIVEN`].
    analog_out: [AtomicU64; ANALOG_OUT_CHANNELS],
    /// Pulses that could not be played because [`STIM_PLAYING_CAPACITY`] were playing.
    stims_dropped: AtomicU64,
}

impl Outputs {
    pub fn new() -> Self {
        Outputs {
            digital_out: AtomicU32::new(0),
            analog_out: std::array::from_fn(|_| AtomicU64::new(UNDRIVEN)),
            stims_dropped: AtomicU64::new(0),
        }
    }

    pub fn set_digital_out(&self, word: u16) {
        self.digital_out.store(u32::from(word), Ordering::Relaxed);
    }

    pub fn stims_dropped(&self) -> u64 {
        self.stims_dropped.load(Ordering::Relaxed)
    }

    pub fn set_analog_out(&self, output: usize, volts: f64) {
        self.analog_out[output].store(volts.to_bits(), Ordering::Relaxed);
    }

    /// The ADC code a driven analog output reads back as, if it is driven.
    fn analog_code(&self, output: usize) -> Option<u16> {
        let bits = self.analog_out[output].load(Ordering::Relaxed);
        (bits != UNDRIVEN).then(|| {
            let code = 32768.0 + f64::from_bits(bits) * ADC_CODES_PER_VOLT;
            code.round().clamp(0.0, 65535.0) as u16
        })
    }
}

/// A pulse being played into the stream.
#[derive(Debug, Clone, Copy)]
struct Playing {
    channel: usize,
    /// Frame at which each phase starts, and the frame after the last phase.
    edges: [u64; MAX_STIM_PHASES + 1],
    /// Artifact of each phase, in amplifier units.
    units: [f64; MAX_STIM_PHASES],
    phases: usize,
}

impl Playing {
    fn new(pulse: &StimPulse, start: u64, rate: f64) -> Self {
        let mut edges = [start; MAX_STIM_PHASES + 1];
        let mut units = [0.0; MAX_STIM_PHASES];
        let mut at = start as f64;
        for (i, phase) in pulse.phases().iter().enumerate() {
            units[i] = f64::from(phase.current_ua) * ARTIFACT_UV_PER_UA / AMPLIFIER_UV_PER_UNIT;
            // At least one frame per phase, so a phase shorter than a sample still shows.
            at += (f64::from(phase.duration_us) * 1e-6 * rate).max(1.0);
            edges[i + 1] = at.round() as u64;
        }
        Playing { channel: pulse.channel, edges, units, phases: pulse.phases().len() }
    }

    fn end(&self) -> u64 {
        self.edges[self.phases]
    }
}

/// The stream side of the outputs: applies them to each block the source generates.
#[derive(Debug)]
pub(crate) struct OutputPlayer {
    rate: f64,
    pending: rtrb::Consumer<StimPulse>,
    playing: Vec<Playing>,
}

impl OutputPlayer {
    /// A player for one stream, and the queue its pulses arrive on.
    pub fn new(rate: f64) -> (rtrb::Producer<StimPulse>, Self) {
        let (producer, pending) = rtrb::RingBuffer::new(STIM_QUEUE_CAPACITY);
        (producer, OutputPlayer { rate, pending, playing: Vec::with_capacity(STIM_PLAYING_CAPACITY) })
    }

    /// Applies the outputs to frames `first..first + block.frames` of `block`. Never allocates:
    /// the playing list was sized for every pulse the queue can hold.
    pub fn apply(&mut self, outputs: &Outputs, first: u64, block: &mut FrameBlock) {
        let n = block.frames;
        let layout = block.layout();
        let word = outputs.digital_out.load(Ordering::Relaxed) as u16;
        block.digital_out[..n].fill(word);
        for output in 0..ANALOG_OUT_CHANNELS.min(layout.analog_in_channels) {
            if let Some(code) = outputs.analog_code(output) {
                for frame in
                    block.analog_in[..n * layout.analog_in_channels].chunks_exact_mut(layout.analog_in_channels)
                {
                    frame[output] = code;
                }
            }
        }
        while let Ok(pulse) = self.pending.pop() {
            if self.playing.len() < self.playing.capacity() {
                self.playing.push(Playing::new(&pulse, first, self.rate));
            } else {
                outputs.stims_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        let channels = layout.amplifier_channels;
        let end = first + n as u64;
        for p in &self.playing {
            if p.channel >= channels {
                continue;
            }
            for phase in 0..p.phases {
                let (from, to) = (p.edges[phase].max(first), p.edges[phase + 1].min(end));
                for frame in from..to {
                    let sample = &mut block.amplifier[(frame - first) as usize * channels + p.channel];
                    *sample = (f64::from(*sample) + p.units[phase]).round().clamp(-32768.0, 32767.0) as i16;
                }
            }
        }
        self.playing.retain(|p| p.end() > end);
    }
}
