//! A small real stage for tests: finds negative threshold crossings and emits them as events.
#![allow(dead_code)]

pub mod heap;

use ephysd_pipeline::{Event, EventWriter, Stage, StageBlock};

/// A negative threshold crossing on one channel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Crossing {
    /// Device frame index of the first sample below the threshold.
    pub frame: u64,
    pub channel: u32,
    /// The sample there, µV.
    pub uv: f32,
}

impl Event for Crossing {
    const WORDS: usize = 2;
    fn encode(&self, words: &mut [u64]) {
        words[0] = self.frame;
        words[1] = u64::from(self.channel) | u64::from(self.uv.to_bits()) << 32;
    }
    fn decode(words: &[u64]) -> Self {
        Crossing { frame: words[0], channel: words[1] as u32, uv: f32::from_bits((words[1] >> 32) as u32) }
    }
}

/// Emits a [`Crossing`] whenever a channel goes from at or above `threshold_uv` to below it.
pub struct CrossingDetector {
    threshold_uv: f32,
    below: Vec<bool>,
    events: EventWriter<Crossing>,
}

impl CrossingDetector {
    pub fn new(channels: usize, threshold_uv: f32, events: EventWriter<Crossing>) -> Self {
        CrossingDetector { threshold_uv, below: vec![false; channels], events }
    }
}

impl Stage for CrossingDetector {
    fn name(&self) -> &str {
        "crossing detector"
    }

    fn process(&mut self, block: &mut StageBlock<'_>) {
        let channels = block.signal.channels();
        let first = block.signal.first_frame_index();
        for (i, frame) in block.signal.samples().chunks_exact(channels).enumerate() {
            for (c, &v) in frame.iter().enumerate() {
                let below = v < self.threshold_uv;
                if below && !self.below[c] {
                    self.events.push(&Crossing { frame: first + i as u64, channel: c as u32, uv: v });
                }
                self.below[c] = below;
            }
        }
    }
}
