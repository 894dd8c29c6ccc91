//! The simulated device's read side: assembles the signal parts into a [`Source`].

use std::ops::Range;
use std::sync::Arc;

use super::base::{self, Background};
use super::board::Board;
use super::clock::Pacer;
use super::config::{SimConfig, SimConfigError, SimMode};
use super::ground_truth::{self, GroundTruthSpike};
use super::lfp::{Lfp, LfpLevels};
use super::noise::NoiseTables;
use super::outputs::{OutputPlayer, Outputs};
use super::sine::SineTable;
use super::spikes::{max_chunk_frames, SpikeRenderer};
use super::units::{Population, UnitInfo, UnitWaveform};
use crate::frame::{BlockLayout, FrameBlock};
use crate::rates::canonical_sample_rate;
use crate::source::{Source, SourceError};

/// Background noise of the modes meant to look like recordings, µV rms: mid-range of what a
/// good electrode on an Intan amplifier shows in the spike band.
pub const RECORDING_NOISE_RMS_UV: f64 = 4.5;
/// Background noise of `sim-sine`, µV rms: "little noise", so the sines are clean.
pub const SINE_NOISE_RMS_UV: f64 = 1.0;

/// The stream of a simulated acquisition board with headstages on it, producing frames
/// deterministically from its configuration and seed. Everything expensive (noise and LFP tables, unit templates,
/// spike-train buffers) is built in [`SimulatedSource::new`]; [`Source::read_block`] only reads
/// tables and never allocates.
#[derive(Debug, Clone)]
pub struct SimulatedSource {
    config: SimConfig,
    rate: f64,
    noise: NoiseTables,
    background: Background,
    population: Population,
    spikes: Option<SpikeRenderer>,
    board: Board,
    pacer: Pacer,
    frames: u64,
    chunk: u64,
    outputs: DeviceOutputs,
}

/// Every spike a simulated stream embeds, regenerated on request from the seed.
#[derive(Debug, Clone)]
pub(crate) struct SimulatedTruth {
    population: Population,
    seed: u64,
    rate: f64,
}

impl crate::device::GroundTruth for SimulatedTruth {
    fn spikes(&self, frames: Range<u64>) -> Vec<GroundTruthSpike> {
        ground_truth::collect(&self.population, self.seed, self.rate, frames)
    }
}

/// The device's outputs as this stream plays them. A clone of a source is detached from them
/// (the queue of pending pulses has one reader): clones exist to compare signals in tests.
#[derive(Debug, Default)]
struct DeviceOutputs(Option<(Arc<Outputs>, OutputPlayer)>);

impl Clone for DeviceOutputs {
    fn clone(&self) -> Self {
        DeviceOutputs(None)
    }
}

impl SimulatedSource {
    /// Validates `config` and builds the stream. Takes tens to a few hundred milliseconds (table
    /// generation), so do it before streaming starts, not on the acquisition thread.
    pub fn new(config: SimConfig) -> Result<Self, SimConfigError> {
        config.validate()?;
        let rate = canonical_sample_rate(config.sample_rate_hz).expect("validated");
        let config = SimConfig { sample_rate_hz: rate, ..config };
        let channels = config.amplifier_channels;
        let seed = config.seed;
        let noise_rms = if config.mode == SimMode::Sine { SINE_NOISE_RMS_UV } else { RECORDING_NOISE_RMS_UV };
        let noise = NoiseTables::new(seed, channels, rate, noise_rms);
        let background = match LfpLevels::for_mode(config.mode) {
            Some(levels) => Background::Lfp(Box::new(Lfp::new(seed, channels, rate, levels))),
            None => Background::Sine(SineTable::new(seed, channels, rate)),
        };
        let population =
            if config.mode.has_spikes() { Population::new(seed, channels, rate) } else { Population::default() };
        let spikes = config.mode.has_spikes().then(|| SpikeRenderer::new(seed, rate, &population));
        Ok(SimulatedSource {
            board: Board::new(rate, config.digital_in_channels),
            pacer: Pacer::new(rate, config.accelerated),
            chunk: max_chunk_frames(rate),
            config,
            rate,
            noise,
            background,
            population,
            spikes,
            frames: 0,
            outputs: DeviceOutputs::default(),
        })
    }

    /// Wires the device's outputs into this stream (digital out, analog loopback, stimulation
    /// artifacts; see `outputs`).
    pub(crate) fn with_outputs(mut self, outputs: Arc<Outputs>, player: OutputPlayer) -> Self {
        self.outputs = DeviceOutputs(Some((outputs, player)));
        self
    }

    /// The configuration in use (with the sample rate normalised to the exact Intan rate).
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// Frames produced so far (= the frame index of the next frame).
    pub fn frames_produced(&self) -> u64 {
        self.frames
    }

    /// The simulated units (empty in `sim-sine` and `sim-lfp`).
    pub fn units(&self) -> &[UnitInfo] {
        &self.population.infos
    }

    /// The sampled multi-channel waveform of unit `id`.
    pub fn unit_waveform(&self, id: u32) -> Option<UnitWaveform> {
        self.population.waveform(id as usize)
    }

    /// Every spike embedded with a frame in `frames`, ordered by frame then unit. Regenerated
    /// from the seed, so it works for any range — past, current or future — at a cost of
    /// about a microsecond per unit per second of range.
    pub fn ground_truth(&self, frames: Range<u64>) -> Vec<GroundTruthSpike> {
        ground_truth::collect(&self.population, self.config.seed, self.rate, frames)
    }

    /// The ground truth of this stream, detached from it (shared with other threads).
    pub(crate) fn truth(&self) -> SimulatedTruth {
        SimulatedTruth { population: self.population.clone(), seed: self.config.seed, rate: self.rate }
    }

    /// Design rms of the background noise (µV) on every channel.
    pub fn noise_rms_uv(&self) -> f64 {
        if self.config.mode == SimMode::Sine {
            SINE_NOISE_RMS_UV
        } else {
            RECORDING_NOISE_RMS_UV
        }
    }

    /// In `sim-sine`, the exact frequency of the sine on `channel`.
    pub fn sine_frequency_hz(&self, channel: usize) -> Option<f64> {
        match &self.background {
            Background::Sine(s) if channel < self.config.amplifier_channels => Some(s.frequency_hz(channel)),
            _ => None,
        }
    }

    /// Generates the next `n` frames into `block` (no pacing).
    fn generate(&mut self, block: &mut FrameBlock, n: usize) {
        let first = self.frames;
        let channels = self.config.amplifier_channels;
        for (i, idx) in block.frame_index[..n].iter_mut().enumerate() {
            *idx = first + i as u64;
        }
        let end = first + n as u64;
        let mut a = first;
        while a < end {
            let b = end.min(a + self.chunk);
            base::render(&self.noise, &mut self.background, a, b, first, &mut block.amplifier, channels);
            if let Some(spikes) = &mut self.spikes {
                spikes.render(&self.population, a, b, first, &mut block.amplifier, channels);
            }
            a = b;
        }
        self.board.fill(first, n, block);
        block.frames = n;
        if let Some((outputs, player)) = &mut self.outputs.0 {
            player.apply(outputs, first, block);
        }
        self.frames = end;
    }
}

impl Source for SimulatedSource {
    fn layout(&self) -> BlockLayout {
        self.config.layout()
    }

    /// Fills `block` with the next `frames_per_block` frames. Unless accelerated, returns no
    /// earlier than the moment the block's last frame exists in real time.
    fn read_block(&mut self, block: &mut FrameBlock) -> Result<(), SourceError> {
        if block.layout() != self.config.layout() {
            return Err(SourceError::LayoutMismatch { expected: self.config.layout(), got: block.layout() });
        }
        self.pacer.start();
        let n = self.config.frames_per_block;
        self.generate(block, n);
        self.pacer.wait_for(self.frames);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(mode: SimMode, channels: usize) -> SimConfig {
        SimConfig { mode, amplifier_channels: channels, accelerated: true, seed: 42, ..SimConfig::default() }
    }

    fn read(rig: &mut SimulatedSource, frames: usize) -> Vec<i16> {
        let mut block = FrameBlock::new(rig.layout());
        let mut out = Vec::new();
        while out.len() < frames * rig.config.amplifier_channels {
            rig.read_block(&mut block).unwrap();
            out.extend_from_slice(block.amplifier_filled());
        }
        out.truncate(frames * rig.config.amplifier_channels);
        out
    }

    /// The spikes added to the data are exactly the ground-truth spikes with the unit
    /// templates: the data equal the same source without spikes plus the templates placed at the
    /// ground-truth frames (away from saturation, additions commute).
    #[test]
    fn embedded_spikes_are_exactly_the_ground_truth() {
        let ch = 24;
        let frames = 60_000;
        let mut with = SimulatedSource::new(config(SimMode::Spikes, ch)).unwrap();
        let mut without = with.clone();
        without.spikes = None;
        let data = read(&mut with, frames);
        let base = read(&mut without, frames);
        let mut expect: Vec<i32> = base.iter().map(|&v| v as i32).collect();
        let truth = with.ground_truth(0..frames as u64 + 200);
        assert!(truth.len() > 50, "{}", truth.len());
        for s in &truth {
            let m = &with.population.models[s.unit as usize];
            let info = &with.population.infos[s.unit as usize];
            let len = m.len();
            let scale = s.amplitude_uv as f64 / info.peak_amplitude_uv;
            let nch = info.channels.len();
            for (k, c) in info.channels.clone().enumerate() {
                for j in 0..len {
                    let f = s.frame as i64 - m.pre as i64 + j as i64;
                    if f < 0 || f >= frames as i64 {
                        continue;
                    }
                    let v = with.population.templates[m.template_offset + j * nch + k] * scale as f32;
                    expect[f as usize * ch + c] += v.round_ties_even() as i32;
                }
            }
        }
        // The scale is reconstructed from the reported amplitude, so allow one unit of
        // rounding; a missing or extra spike would differ by tens to hundreds of units.
        let worst = data.iter().zip(&expect).map(|(&d, &e)| (d as i32 - e).abs()).max().unwrap();
        assert!(worst <= 1, "worst difference {worst} units");
    }
}
