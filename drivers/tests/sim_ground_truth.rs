//! Ground truth: every reported spike is in the data where it is said to be, nothing else
//! spiky is, and the trains have the promised statistics (rates, refractoriness, bursts).

use ephysd_drivers::sim::{GroundTruthSpike, SimConfig, SimMode, SimulatedSource, UnitInfo};
use ephysd_drivers::{FrameBlock, Source};

const UV: f64 = 0.195;

fn source(mode: SimMode, channels: usize, seed: u64) -> SimulatedSource {
    SimulatedSource::new(SimConfig {
        mode,
        amplifier_channels: channels,
        accelerated: true,
        seed,
        ..SimConfig::default()
    })
    .unwrap()
}

/// The first `frames` frames of amplifier data, frame-major.
fn record(source: &mut SimulatedSource, frames: usize) -> Vec<i16> {
    let ch = source.layout().amplifier_channels;
    let mut block = FrameBlock::new(source.layout());
    let mut out = Vec::with_capacity(frames * ch);
    while out.len() < frames * ch {
        source.read_block(&mut block).unwrap();
        out.extend_from_slice(block.amplifier_filled());
    }
    out.truncate(frames * ch);
    out
}

/// Channel `c` in µV.
fn channel(data: &[i16], channels: usize, c: usize) -> Vec<f64> {
    data.iter().skip(c).step_by(channels).map(|&v| v as f64 * UV).collect()
}

/// Median of the samples 2.0–0.7 ms before `frame` (30 kHz): the local baseline, which takes
/// the slow LFP out of a trough measurement.
fn baseline(x: &[f64], frame: usize) -> f64 {
    let mut w: Vec<f64> = x[frame - 60..frame - 20].to_vec();
    w.sort_by(|a, b| a.partial_cmp(b).unwrap());
    w[w.len() / 2]
}

/// The signal minus a centred 1 ms moving average: removes the LFP, keeps spikes and noise.
fn high_pass(x: &[f64]) -> Vec<f64> {
    let h = 15;
    let mut out = vec![0.0; x.len()];
    let mut sum: f64 = x[..2 * h + 1].iter().sum();
    for i in h..x.len() - h - 1 {
        out[i] = x[i] - sum / (2 * h + 1) as f64;
        sum += x[i + h + 1] - x[i - h];
    }
    out
}

fn isis_ms(spikes: &[GroundTruthSpike], unit: u32) -> Vec<f64> {
    let frames: Vec<u64> = spikes.iter().filter(|s| s.unit == unit).map(|s| s.frame).collect();
    frames.windows(2).map(|w| (w[1] - w[0]) as f64 / 30.0).collect()
}

#[test]
fn units_are_realistic() {
    let r = source(SimMode::Spikes, 64, 3);
    let units = r.units();
    assert!(units.len() >= 16, "{} units", units.len());
    for (i, u) in units.iter().enumerate() {
        assert_eq!(u.id as usize, i);
        assert!((50.0..=300.0).contains(&u.peak_amplitude_uv), "{u:?}");
        assert!((0.3..=1.0).contains(&u.trough_to_peak_ms), "{u:?}");
        assert!((1.0..=20.0).contains(&u.firing_rate_hz), "{u:?}");
        assert!(u.channels.contains(&u.peak_channel) && u.channels.end <= 64 && u.channels.len() >= 2, "{u:?}");
        // The waveform is largest on the peak channel and decays with distance.
        let w = r.unit_waveform(u.id).unwrap();
        let depth = |c: usize| -w.channel(c).unwrap().iter().cloned().fold(f32::INFINITY, f32::min) as f64;
        let peak = depth(u.peak_channel);
        assert!((peak - u.peak_amplitude_uv).abs() < 0.01 * u.peak_amplitude_uv, "{peak} vs {u:?}");
        for c in u.channels.clone() {
            assert!(depth(c) <= peak + 1e-3);
            if c.abs_diff(u.peak_channel) >= 2 {
                assert!(depth(c) < 0.6 * peak, "channel {c} of {u:?} barely decays");
            }
        }
    }
    assert!(units.iter().any(|u| u.bursting) && units.iter().any(|u| !u.bursting));
    // Distinct waveforms: no two units share amplitude and trough-to-peak.
    for a in units {
        for b in units {
            if a.id < b.id {
                assert!(a.peak_amplitude_uv != b.peak_amplitude_uv || a.trough_to_peak_ms != b.trough_to_peak_ms);
            }
        }
    }
    assert!(source(SimMode::Sine, 64, 3).units().is_empty());
    assert!(source(SimMode::Lfp, 64, 3).units().is_empty());
    assert!(source(SimMode::Lfp, 64, 3).ground_truth(0..300_000).is_empty());
    assert!(!source(SimMode::Broadband, 64, 3).units().is_empty());
}

#[test]
fn truth_spikes_are_visible_in_the_data() {
    let ch = 32;
    let frames = 90_000;
    let mut r = source(SimMode::Spikes, ch, 5);
    let data = record(&mut r, frames);
    let truth = r.ground_truth(100..frames as u64 - 100);
    assert!(truth.len() > 100, "{} spikes in 3 s", truth.len());
    let chans: Vec<Vec<f64>> = (0..ch).map(|c| channel(&data, ch, c)).collect();
    let noise = r.noise_rms_uv();
    let (mut seen, mut depth_ok, mut full) = (0, 0, 0);
    for s in &truth {
        let x = &chans[s.channel];
        let depth = baseline(x, s.frame as usize) - x[s.frame as usize];
        if depth > 5.0 * noise {
            seen += 1;
        }
        if s.amplitude_uv as f64 == r.units()[s.unit as usize].peak_amplitude_uv as f32 as f64 {
            full += 1;
            if (depth - s.amplitude_uv as f64).abs() < 25.0 {
                depth_ok += 1;
            }
        }
    }
    // A few spikes overlap another unit's repolarisation or an attenuated burst tail.
    assert!(seen as f64 >= 0.97 * truth.len() as f64, "{seen} of {} visible", truth.len());
    assert!(depth_ok as f64 >= 0.9 * full as f64, "{depth_ok} of {full} at their stated depth");
}

#[test]
fn nothing_spiky_in_the_data_is_missing_from_ground_truth() {
    let ch = 32;
    let frames = 60_000;
    let mut r = source(SimMode::Spikes, ch, 6);
    let data = record(&mut r, frames);
    let truth = r.ground_truth(0..frames as u64 + 200);
    let units: &[UnitInfo] = r.units();
    let threshold = -8.0 * r.noise_rms_uv();
    let mut crossings = 0;
    for c in 0..ch {
        let x = high_pass(&channel(&data, ch, c));
        let mut i = 20;
        while i < x.len() - 20 {
            if x[i] < threshold {
                crossings += 1;
                // Some unit reaching this channel has a spike within ±2 ms.
                let near = truth
                    .iter()
                    .any(|s| units[s.unit as usize].channels.contains(&c) && (s.frame as i64 - i as i64).abs() <= 60);
                assert!(near, "unexplained crossing on channel {c} at frame {i}");
                i += 30;
            } else {
                i += 1;
            }
        }
    }
    assert!(crossings > 100, "{crossings}");
}

#[test]
fn ground_truth_is_regenerated_exactly() {
    let r = source(SimMode::Broadband, 64, 9);
    let whole = r.ground_truth(0..300_000);
    assert!(whole.windows(2).all(|w| (w[0].frame, w[0].unit) <= (w[1].frame, w[1].unit)), "sorted");
    // Any split of the range gives the same spikes.
    let mut parts = r.ground_truth(0..12_345);
    parts.extend(r.ground_truth(12_345..29_999));
    parts.extend(r.ground_truth(29_999..30_000));
    parts.extend(r.ground_truth(30_000..300_000));
    assert_eq!(whole, parts);
    // A source that has streamed for a while reports the same as a fresh one, and far-future
    // ranges (10 h in) are as cheap and as deterministic as the start.
    let mut streamed = source(SimMode::Broadband, 64, 9);
    record(&mut streamed, 40_000);
    assert_eq!(streamed.ground_truth(0..300_000), whole);
    let late = 10 * 3600 * 30_000u64;
    let far = r.ground_truth(late..late + 60_000);
    assert!(!far.is_empty());
    assert_eq!(far, source(SimMode::Broadband, 64, 9).ground_truth(late..late + 60_000));
    assert!(r.ground_truth(5..5).is_empty());
    for s in &whole {
        assert_eq!(s.channel, r.units()[s.unit as usize].peak_channel);
    }
}

#[test]
fn refractory_period_is_respected() {
    let r = source(SimMode::Spikes, 64, 10);
    let truth = r.ground_truth(0..30_000 * 120);
    for u in r.units() {
        let min = isis_ms(&truth, u.id).into_iter().fold(f64::INFINITY, f64::min);
        assert!(min >= u.refractory_ms - 1.0 / 30.0, "unit {} min ISI {min} ms < {} ms", u.id, u.refractory_ms);
    }
}

#[test]
fn firing_rates_match_the_units() {
    let seconds = 300u64;
    let r = source(SimMode::Spikes, 64, 11);
    let truth = r.ground_truth(0..30_000 * seconds);
    for u in r.units() {
        let n = truth.iter().filter(|s| s.unit == u.id).count() as f64;
        let rate = n / seconds as f64;
        // Poisson counts over 300 s: a few % sd at these rates; bursts add variance.
        let tolerance = if u.bursting { 0.3 } else { 0.15 };
        assert!(
            (rate - u.firing_rate_hz).abs() <= tolerance * u.firing_rate_hz,
            "unit {}: {rate} Hz vs {} Hz",
            u.id,
            u.firing_rate_hz
        );
    }
}

#[test]
fn bursting_units_fire_short_attenuating_bursts() {
    let r = source(SimMode::Spikes, 128, 12);
    let truth = r.ground_truth(0..30_000 * 120);
    let mut bursting = 0;
    for u in r.units() {
        let isis = isis_ms(&truth, u.id);
        let short = isis.iter().filter(|&&d| d < 10.0).count() as f64 / isis.len() as f64;
        let spikes: Vec<&GroundTruthSpike> = truth.iter().filter(|s| s.unit == u.id).collect();
        if u.bursting {
            bursting += 1;
            assert!(short > 0.2, "bursting unit {} has only {short:.2} short ISIs", u.id);
            // Within bursts each spike is smaller than the one before. Ground truth does not
            // mark burst membership, and a new event may follow a burst within 10 ms, so
            // require it of most (not all) short-ISI pairs.
            let pairs: Vec<_> = spikes.windows(2).filter(|w| w[1].frame - w[0].frame < 300).collect();
            let smaller = pairs.iter().filter(|w| w[1].amplitude_uv < w[0].amplitude_uv).count();
            assert!(
                smaller as f64 >= 0.8 * pairs.len() as f64,
                "unit {}: {smaller} of {} attenuate",
                u.id,
                pairs.len()
            );
            // Burst ISIs are 3–8 ms (same caveat).
            let in_range = isis.iter().filter(|&&d| (2.9..=8.2).contains(&d)).count();
            let short_n = isis.iter().filter(|&&d| d < 10.0).count();
            assert!(in_range as f64 >= 0.8 * short_n as f64, "unit {}: {in_range} of {short_n}", u.id);
        } else {
            assert!(spikes.iter().all(|s| s.amplitude_uv as f64 == u.peak_amplitude_uv as f32 as f64));
        }
    }
    assert!(bursting >= 3, "{bursting} bursting units");
}
