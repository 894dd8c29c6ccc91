//! What the channels carry in each mode: noise level, LFP, sines, and the board's analog,
//! aux and digital streams.

use ephysd_drivers::sim::{SimConfig, SimMode, SimulatedSource, UnitInfo};
use ephysd_drivers::{FrameBlock, Source};
use std::f64::consts::TAU;

const UV: f64 = 0.195;
const RATE: f64 = 30000.0;

fn source(mode: SimMode, channels: usize) -> SimulatedSource {
    SimulatedSource::new(SimConfig {
        mode,
        amplifier_channels: channels,
        accelerated: true,
        seed: 21,
        ..SimConfig::default()
    })
    .unwrap()
}

struct Capture {
    channels: usize,
    amplifier: Vec<i16>,
    aux: Vec<u16>,
    analog_in: Vec<u16>,
    digital_in: Vec<u16>,
    digital_out: Vec<u16>,
}

fn record(source: &mut SimulatedSource, frames: usize) -> Capture {
    let layout = source.layout();
    let mut block = FrameBlock::new(layout);
    let mut c = Capture {
        channels: layout.amplifier_channels,
        amplifier: vec![],
        aux: vec![],
        analog_in: vec![],
        digital_in: vec![],
        digital_out: vec![],
    };
    while c.digital_in.len() < frames {
        source.read_block(&mut block).unwrap();
        let n = block.frames;
        c.amplifier.extend_from_slice(block.amplifier_filled());
        c.aux.extend_from_slice(&block.aux[..n * layout.aux_channels]);
        c.analog_in.extend_from_slice(&block.analog_in[..n * layout.analog_in_channels]);
        c.digital_in.extend_from_slice(&block.digital_in[..n]);
        c.digital_out.extend_from_slice(&block.digital_out[..n]);
    }
    c
}

impl Capture {
    fn channel_uv(&self, c: usize) -> Vec<f64> {
        self.amplifier.iter().skip(c).step_by(self.channels).map(|&v| v as f64 * UV).collect()
    }
}

fn rms(x: &[f64]) -> f64 {
    let m = x.iter().sum::<f64>() / x.len() as f64;
    (x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / x.len() as f64).sqrt()
}

/// Centred moving average over `2h + 1` samples (edges left at zero).
fn moving_average(x: &[f64], h: usize) -> Vec<f64> {
    let mut out = vec![0.0; x.len()];
    let mut sum: f64 = x[..2 * h + 1].iter().sum();
    for i in h..x.len() - h - 1 {
        out[i] = sum / (2 * h + 1) as f64;
        sum += x[i + h + 1] - x[i - h];
    }
    out
}

/// Amplitude of the `hz` component of `x` (Goertzel), in the units of `x`.
fn goertzel_amplitude(x: &[f64], hz: f64, rate: f64) -> f64 {
    let w = TAU * hz / rate;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for &v in x {
        let s = v + coeff * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    2.0 * power.max(0.0).sqrt() / x.len() as f64
}

#[test]
fn background_noise_is_a_few_microvolts_rms() {
    let ch = 32;
    let frames = 60_000;
    let mut r = source(SimMode::Spikes, ch);
    let cap = record(&mut r, frames);
    let truth = r.ground_truth(0..frames as u64 + 200);
    let units: Vec<UnitInfo> = r.units().to_vec();
    for c in [0, 9, 17, 31] {
        // Spike-free stretches of channel c: away from every spike of every unit reaching it.
        let mut quiet = vec![true; frames];
        for s in truth.iter().filter(|s| units[s.unit as usize].channels.contains(&c)) {
            let lo = (s.frame as usize).saturating_sub(90).min(frames);
            let hi = (s.frame as usize + 150).min(frames);
            quiet[lo..hi].iter_mut().for_each(|q| *q = false);
        }
        // Take the LFP out (moving-average high-pass; it also removes a little of the low end
        // of the noise band) and measure what is left where no spike is.
        let x = cap.channel_uv(c);
        let lfp = moving_average(&x, 15);
        let hp: Vec<f64> = (15..frames - 16).filter(|&i| quiet[i]).map(|i| x[i] - lfp[i]).collect();
        assert!(hp.len() > frames / 4, "channel {c}: only {} quiet samples", hp.len());
        let noise = rms(&hp);
        assert!((3.0..=6.0).contains(&noise), "channel {c}: noise {noise:.2} µV rms");
    }
    assert_eq!(r.noise_rms_uv(), 4.5);
}

#[test]
fn spikes_mode_has_a_modest_slow_lfp() {
    let mut r = source(SimMode::Spikes, 8);
    let cap = record(&mut r, 90_000);
    let x = cap.channel_uv(3);
    // 10 ms moving average: the slow part, with spikes and noise averaged away.
    let slow = moving_average(&x, 150);
    let lfp = rms(&slow[150..slow.len() - 151]);
    assert!((10.0..=60.0).contains(&lfp), "LFP {lfp:.1} µV rms");
}

#[test]
fn sine_mode_has_one_dominant_line_per_channel() {
    let ch = 16;
    let mut r = source(SimMode::Sine, ch);
    let frames = 30_000;
    let cap = record(&mut r, frames);
    assert!(r.units().is_empty());
    assert!((r.sine_frequency_hz(0).unwrap() - 1000.0).abs() < 1.0);
    assert_eq!(r.sine_frequency_hz(ch), None);
    let mut distinct = std::collections::BTreeSet::new();
    for c in 0..ch {
        let hz = r.sine_frequency_hz(c).unwrap();
        distinct.insert(hz.round() as u64);
        let x = cap.channel_uv(c);
        let line = goertzel_amplitude(&x, hz, RATE);
        assert!((line - 100.0).abs() < 5.0, "channel {c}: {line:.1} µV at {hz} Hz");
        // Nearly all the power is in the line: rms of a 100 µV sine is 70.7 µV.
        let total = rms(&x);
        assert!((total - 100.0 / 2f64.sqrt()).abs() < 3.0, "channel {c}: rms {total:.1}");
        // Far enough from the line that the 1 s window's leakage stays well below 1 µV.
        let off = goertzel_amplitude(&x, hz * 2.5 + 137.0, RATE);
        assert!(off < 2.0, "channel {c}: {off:.2} µV off the line");
    }
    assert!(distinct.len() >= 6, "frequencies vary by channel: {distinct:?}");
    // No LFP in sine mode: the source is not an LFP source.
    assert_eq!(source(SimMode::Sine, 4).noise_rms_uv(), 1.0);
}

#[test]
fn lfp_mode_is_dominated_by_large_low_frequency_rhythms() {
    let mut r = source(SimMode::Lfp, 64);
    let cap = record(&mut r, 90_000);
    let x = cap.channel_uv(5);
    let total = rms(&x);
    assert!((80.0..=600.0).contains(&total), "LFP rms {total:.1} µV");
    let slow = moving_average(&x, 150);
    let slow_rms = rms(&slow[150..slow.len() - 151]);
    // Nearly everything is below ~100 Hz.
    assert!(slow_rms > 0.95 * total, "slow {slow_rms:.1} of {total:.1}");
    // Theta is a strong component: the 4–12 Hz band carries far more than 40–45 Hz or 300 Hz.
    let theta: f64 = (8..=24).map(|k| goertzel_amplitude(&x, k as f64 * 0.5, RATE)).fold(0.0, f64::max);
    let high = goertzel_amplitude(&x, 300.0, RATE);
    assert!(theta > 30.0 && high < 3.0, "theta {theta:.1} µV, 300 Hz {high:.2} µV");
    // Neighbouring channels see nearly the same LFP; distant ones differ.
    let near = cap.channel_uv(6);
    let far = cap.channel_uv(60);
    let diff = |a: &[f64], b: &[f64]| rms(&a.iter().zip(b).map(|(p, q)| p - q).collect::<Vec<_>>());
    assert!(diff(&x, &near) < 0.2 * total, "neighbours differ by {:.1}", diff(&x, &near));
    assert!(diff(&x, &far) > diff(&x, &near));
}

#[test]
fn the_four_modes_are_distinct() {
    let frames = 60_000;
    let caps: Vec<(SimMode, Vec<f64>)> =
        SimMode::ALL.iter().map(|&m| (m, record(&mut source(m, 16), frames).channel_uv(2))).collect();
    let features = |x: &[f64]| {
        // Below ~50 Hz (10 ms average) and above ~300 Hz (minus a 1 ms average).
        let slow = moving_average(x, 150);
        let slow_rms = rms(&slow[150..x.len() - 151]);
        let ms = moving_average(x, 15);
        let fast: Vec<f64> = (150..x.len() - 151).map(|i| x[i] - ms[i]).collect();
        let most_negative = fast.iter().cloned().fold(f64::INFINITY, f64::min);
        (slow_rms, most_negative)
    };
    for (m, x) in &caps {
        let (slow, neg) = features(x);
        match m {
            SimMode::Spikes => assert!(slow < 60.0 && neg < -50.0, "{m}: slow {slow:.1}, min {neg:.1}"),
            SimMode::Lfp => assert!(slow > 80.0 && neg > -30.0, "{m}: slow {slow:.1}, min {neg:.1}"),
            SimMode::Broadband => assert!(slow > 40.0 && neg < -50.0, "{m}: slow {slow:.1}, min {neg:.1}"),
            SimMode::Sine => {} // checked by its spectral line
        }
    }
    for (i, (a, xa)) in caps.iter().enumerate() {
        for (b, xb) in &caps[i + 1..] {
            assert!(xa != xb, "{a} and {b} are identical");
        }
    }
}

#[test]
fn board_streams_are_recognisable() {
    let mut r = source(SimMode::Spikes, 4);
    let frames = 90_000; // 3 s
    let cap = record(&mut r, frames);
    // Digital in: line 0 pulses for 10 ms once per second; nothing else; outputs low.
    let mut rising = vec![];
    let mut high = 0;
    for i in 0..frames {
        let w = cap.digital_in[i];
        assert!(w <= 1, "only line 0 moves: {w:#x}");
        high += w as usize;
        if w == 1 && (i == 0 || cap.digital_in[i - 1] == 0) {
            rising.push(i);
        }
    }
    assert_eq!(rising, vec![0, 30_000, 60_000]);
    assert_eq!(high, 3 * 300);
    assert!(cap.digital_out.iter().all(|&w| w == 0));
    // Analog in 0: a 1 Hz sine around mid-scale; the others sit at mid-scale.
    let adc0: Vec<f64> = cap.analog_in.iter().step_by(8).map(|&v| v as f64 - 32768.0).collect();
    assert!((goertzel_amplitude(&adc0[..60_000], 1.0, RATE) - 6400.0).abs() < 50.0);
    for k in 1..8 {
        assert!(cap.analog_in.iter().skip(k).step_by(8).all(|&v| v == 32768));
    }
    // Aux: steady codes, a few tens of codes of wobble at most.
    for k in 0..3 {
        let aux: Vec<u16> = cap.aux.iter().skip(k).step_by(3).copied().collect();
        let (lo, hi) = (aux.iter().min().unwrap(), aux.iter().max().unwrap());
        assert!(hi - lo < 100 && *lo > 30_000, "aux {k}: {lo}..{hi}");
    }
}
