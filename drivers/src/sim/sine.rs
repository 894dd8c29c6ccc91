//! The test sines of `sim-sine`, as one precomputed periodic table.
//!
//! Calling `sin` per sample per channel would dominate the budget, so every column of the table
//! holds a whole number of cycles over `rows` frames (rows ≈ half a second), i.e. frequencies
//! on a ~2 Hz grid, and the table simply loops. Like the noise it is frame-major and shared by
//! channel groups, each group starting at its own row (its own phase).

use super::noise::MAX_WIDTH;
use super::rng::{stream, Rng};
use crate::frame::AMPLIFIER_UV_PER_UNIT;

/// Target frequencies (Hz) cycled over the columns: a 1 kHz test tone on channel 0 and a
/// spread down to a few Hz, so filters and displays can be checked across the band.
const TARGETS_HZ: [f64; 8] = [1000.0, 500.0, 250.0, 100.0, 50.0, 20.0, 10.0, 4.0];

/// Amplitude of every sine.
pub(crate) const SINE_AMPLITUDE_UV: f64 = 100.0;

#[derive(Debug, Clone)]
pub(crate) struct SineTable {
    width: usize,
    rows: usize,
    table: Vec<i16>,
    offsets: Vec<u64>,
    freqs: Vec<f64>,
}

impl SineTable {
    pub fn new(seed: u64, channels: usize, rate: f64) -> Self {
        let width = channels.clamp(1, MAX_WIDTH);
        let rows = ((rate / 2.0).round() as usize).max(1);
        let df = rate / rows as f64;
        let cycles: Vec<usize> = (0..width)
            .map(|j| {
                let target = TARGETS_HZ[j % TARGETS_HZ.len()].min(rate / 5.0);
                ((target / df).round() as usize).max(1)
            })
            .collect();
        let amp = SINE_AMPLITUDE_UV / AMPLIFIER_UV_PER_UNIT;
        let mut table = vec![0i16; rows * width];
        for r in 0..rows {
            for (j, &k) in cycles.iter().enumerate() {
                // Reduce k·r mod rows first so the argument stays small and exact.
                let ph = ((k * r) % rows) as f64 / rows as f64;
                table[r * width + j] = (amp * (std::f64::consts::TAU * ph).sin()).round() as i16;
            }
        }
        let mut rng = Rng::from_key(&[seed, stream::SINE]);
        let offsets = (0..channels.div_ceil(width)).map(|_| rng.below(rows as u64)).collect();
        let freqs = cycles.iter().map(|&k| k as f64 * df).collect();
        SineTable { width, rows, table, offsets, freqs }
    }

    /// The row channel group `group` adds at `frame`.
    #[inline]
    pub fn row(&self, group: usize, frame: u64) -> &[i16] {
        let r = ((frame + self.offsets[group]) % self.rows as u64) as usize;
        &self.table[r * self.width..(r + 1) * self.width]
    }

    /// Exact frequency of the sine on `channel`.
    pub fn frequency_hz(&self, channel: usize) -> f64 {
        self.freqs[channel % self.width]
    }
}
