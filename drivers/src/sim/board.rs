//! The non-electrode streams of the simulated board: BNC analog inputs, headstage aux inputs
//! and the digital words. Each is a pure function of the frame index (block-size independent)
//! and chosen to be recognisable on a scope view:
//!
//! * analog in 0: a 1 Hz, ±2 V sine (the board ADCs are ±10.24 V over 16 bits, 312.5 µV/code);
//!   the other inputs sit at mid-scale (0 V), as unconnected inputs do;
//! * aux: near-constant codes like a resting accelerometer, with a slow wobble of a few codes;
//! * digital in: line 0 carries a 10 ms pulse once per second (a sync/TTL train), so digital
//!   events exist to be detected and recorded; other lines stay low;
//! * digital out: all low (nothing drives the outputs).

use std::f64::consts::TAU;

use crate::frame::FrameBlock;

/// ADC code of 0 V on the board analog inputs.
pub(crate) const ANALOG_MID_SCALE: u16 = crate::frame::ANALOG_IN_ZERO_CODE;
/// Peak deviation of the analog-in-0 sine, in codes (2 V at 312.5 µV/code).
pub(crate) const ANALOG_SINE_CODES: f64 = 6400.0;
/// Frequency of the analog-in-0 sine.
pub(crate) const ANALOG_SINE_HZ: f64 = 1.0;
/// Length of the digital-in-0 pulse.
pub(crate) const PULSE_SECONDS: f64 = 0.010;

/// Resting aux codes, cycled over the aux channels (x, y, z of an accelerometer at rest,
/// z carrying 1 g).
const AUX_BASE: [u16; 3] = [43_800, 44_300, 47_900];
/// Slow wobble of the aux codes.
const AUX_WOBBLE_HZ: f64 = 0.3;
const AUX_WOBBLE_CODES: f64 = 12.0;
/// Frames over which the aux wobble is held: it changes by under one code in that time, and
/// holding it avoids a `sin` per frame (frame-aligned, so blocks of any size see the same steps).
const AUX_HOLD: u64 = 1024;

#[derive(Debug, Clone)]
pub(crate) struct Board {
    rate: f64,
    pulse_period: u64,
    pulse_width: u64,
    digital_in_lines: usize,
    /// One period of the analog-in-0 sine in ADC codes (`round(rate)` frames: exactly 1 Hz at
    /// every integer Intan rate), precomputed so no `sin` runs per frame.
    analog_sine: Vec<u16>,
}

impl Board {
    pub fn new(rate: f64, digital_in_lines: usize) -> Self {
        let period = (rate / ANALOG_SINE_HZ).round() as usize;
        let analog_sine = (0..period)
            .map(|i| {
                (ANALOG_MID_SCALE as f64 + (ANALOG_SINE_CODES * (TAU * i as f64 / period as f64).sin()).round()) as u16
            })
            .collect();
        Board {
            rate,
            pulse_period: rate.round() as u64,
            pulse_width: ((PULSE_SECONDS * rate).round() as u64).max(1),
            digital_in_lines,
            analog_sine,
        }
    }

    /// Digital input word at `frame`.
    #[inline]
    pub fn digital_in(&self, frame: u64) -> u16 {
        if self.digital_in_lines > 0 && frame % self.pulse_period < self.pulse_width {
            1
        } else {
            0
        }
    }

    /// Aux wobble (codes) at `frame`, held over `AUX_HOLD` frames.
    fn aux_wobble(&self, frame: u64) -> f64 {
        let t = (frame / AUX_HOLD * AUX_HOLD) as f64 / self.rate;
        AUX_WOBBLE_CODES * (TAU * AUX_WOBBLE_HZ * t).sin()
    }

    /// Fills the aux, analog and digital parts of frames `[first, first + n)` of `block`.
    pub fn fill(&self, first: u64, n: usize, block: &mut FrameBlock) {
        let layout = block.layout();
        let (n_aux, n_adc) = (layout.aux_channels, layout.analog_in_channels);
        let period = self.analog_sine.len() as u64;
        let mut wobble = (u64::MAX, 0.0);
        for i in 0..n {
            let frame = first + i as u64;
            if n_adc > 0 {
                let row = &mut block.analog_in[i * n_adc..(i + 1) * n_adc];
                row.fill(ANALOG_MID_SCALE);
                row[0] = self.analog_sine[(frame % period) as usize];
            }
            if n_aux > 0 {
                if wobble.0 != frame / AUX_HOLD {
                    wobble = (frame / AUX_HOLD, self.aux_wobble(frame));
                }
                for (j, v) in block.aux[i * n_aux..(i + 1) * n_aux].iter_mut().enumerate() {
                    let scale = (j % 3) as f64 + 1.0;
                    *v = (AUX_BASE[j % 3] as f64 + (wobble.1 * scale).round()) as u16;
                }
            }
            block.digital_in[i] = self.digital_in(frame);
            block.digital_out[i] = 0;
        }
    }
}
