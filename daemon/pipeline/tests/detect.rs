//! The spike detector through its public API: synthetic signals with spikes injected at known
//! frames, fed block by block through a real stage chain.

mod common;

use std::sync::Arc;

use ephysd_drivers::{BlockLayout, FrameBlock};
use ephysd_pipeline::detect::{
    DetectParams, DetectParamsError, DetectorControl, DetectorShared, DetectorStage, Polarity, Spike, Threshold,
    SNIPPET_PRE, SNIPPET_SAMPLES, UNSORTED,
};
use ephysd_pipeline::{EventReader, EventRing, EventsRead, Stage, StageBlock, StageChain};

#[global_allocator]
static GLOBAL: common::heap::CountingAllocator = common::heap::CountingAllocator;

/// Heap calls (allocations and frees) of the current thread so far.
fn allocations() -> u64 {
    common::heap::heap_calls()
}

// ---------------------------------------------------------------------------------------------
// Signals

/// xorshift64* with Box–Muller: deterministic Gaussian noise.
struct Gauss(u64);

impl Gauss {
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let bits = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11;
        (bits as f64 + 0.5) / (1u64 << 53) as f64
    }

    fn next(&mut self) -> f32 {
        let (u, v) = (self.uniform(), self.uniform());
        ((-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()) as f32
    }
}

/// A frame-major signal of `channels` × `frames`.
#[derive(Clone)]
struct Signal {
    channels: usize,
    rate: f64,
    samples: Vec<f32>,
}

impl Signal {
    fn silent(channels: usize, rate: f64, seconds: f64) -> Self {
        Signal { channels, rate, samples: vec![0.0; channels * (seconds * rate).round() as usize] }
    }

    /// Gaussian noise of `sigma(channel)` µV rms.
    fn noise(channels: usize, rate: f64, seconds: f64, seed: u64, sigma: impl Fn(usize) -> f32) -> Self {
        let mut s = Signal::silent(channels, rate, seconds);
        let mut g = Gauss(seed | 1);
        for frame in s.samples.chunks_exact_mut(channels) {
            for (c, v) in frame.iter_mut().enumerate() {
                *v = g.next() * sigma(c);
            }
        }
        s
    }

    fn frames(&self) -> usize {
        self.samples.len() / self.channels
    }

    fn at(&self, frame: usize, channel: usize) -> f32 {
        self.samples[frame * self.channels + channel]
    }

    /// Adds a spike of trough depth `amplitude_uv` (negative for a trough, positive for an
    /// upward spike) with its extreme exactly at `frame`: a Gaussian of 0.1 ms (`width_s`)
    /// and a quarter-height rebound of the other sign 0.5 ms later.
    fn add_spike(&mut self, channel: usize, frame: usize, amplitude_uv: f32, width_s: f64) {
        let span = (0.002 * self.rate) as i64;
        for d in -span..=span {
            let f = frame as i64 + d;
            if f < 0 || f as usize >= self.frames() {
                continue;
            }
            let t = d as f64 / self.rate;
            let main = (-(t / width_s).powi(2) / 2.0).exp();
            let rebound = -0.25 * (-((t - 0.0005) / 0.00025).powi(2) / 2.0).exp();
            self.samples[f as usize * self.channels + channel] += amplitude_uv * (main + rebound) as f32;
        }
    }

    /// Adds a plain Gaussian bump of `amplitude_uv` peaking at `frame`, `width_s` wide.
    fn add_bump(&mut self, channel: usize, frame: usize, amplitude_uv: f32, width_s: f64) {
        let span = (0.002 * self.rate) as usize;
        for f in frame.saturating_sub(span)..(frame + span).min(self.frames()) {
            let t = (f as f64 - frame as f64) / self.rate;
            self.samples[f * self.channels + channel] += amplitude_uv * (-(t / width_s).powi(2) / 2.0).exp() as f32;
        }
    }

    /// The frame of the first sample below `level` (above it for a positive level) in the
    /// millisecond before and up to `frame`.
    fn crossing(&self, channel: usize, frame: usize, level: f32) -> usize {
        let start = frame.saturating_sub((0.001 * self.rate) as usize);
        (start..=frame)
            .find(|&f| if level < 0.0 { self.at(f, channel) < level } else { self.at(f, channel) > level })
            .expect("the spike does not cross")
    }
}

// ---------------------------------------------------------------------------------------------
// The rig: a chain of a stage that writes the signal into the block, then the detector.

/// Writes the next frames of a prepared signal into the block's `signal`, as a filter would.
struct Feed {
    signal: Arc<Vec<f32>>,
    channels: usize,
    cursor: usize,
}

impl Stage for Feed {
    fn name(&self) -> &str {
        "feed"
    }
    fn process(&mut self, block: &mut StageBlock<'_>) {
        let n = block.signal.frames() * self.channels;
        block.signal.samples_mut().copy_from_slice(&self.signal[self.cursor..self.cursor + n]);
        self.cursor += n;
    }
}

/// Device frame index of the signal's first frame: not zero, so frame reporting is tested.
const FIRST_FRAME: u64 = 1_000_000;

struct Rig {
    chain: StageChain,
    raw: FrameBlock,
    frames_done: usize,
    frames: usize,
    ring: Arc<EventRing<Spike>>,
    reader: EventReader<Spike>,
    control: DetectorControl,
    shared: Arc<DetectorShared>,
    pending_capacity: usize,
}

impl Rig {
    fn new(signal: &Signal, params: Vec<DetectParams>, max_block: usize) -> Rig {
        Rig::with_ring(signal, params, max_block, 1 << 16)
    }

    fn with_ring(signal: &Signal, params: Vec<DetectParams>, max_block: usize, ring_capacity: usize) -> Rig {
        let layout = BlockLayout {
            amplifier_channels: signal.channels,
            aux_channels: 0,
            analog_in_channels: 0,
            frames_per_block: max_block,
        };
        let (writer, ring) = EventRing::<Spike>::new(ring_capacity);
        let (detector, control) = DetectorStage::new(signal.channels, signal.rate, params, writer).unwrap();
        let pending_capacity = detector.pending_capacity();
        let feed = Feed { signal: Arc::new(signal.samples.clone()), channels: signal.channels, cursor: 0 };
        let stages: Vec<Box<dyn Stage>> = vec![Box::new(feed), Box::new(detector)];
        Rig {
            chain: StageChain::new(layout, stages),
            raw: FrameBlock::new(layout),
            frames_done: 0,
            frames: signal.frames(),
            reader: ring.reader_at(0, 4096),
            ring,
            shared: control.shared(),
            control,
            pending_capacity,
        }
    }

    /// Runs one block of `frames` frames (fewer at the end of the signal).
    fn step(&mut self, frames: usize) {
        let frames = frames.min(self.frames - self.frames_done).min(self.raw.layout().frames_per_block);
        self.raw.frames = frames;
        for (i, index) in self.raw.frame_index[..frames].iter_mut().enumerate() {
            *index = FIRST_FRAME + (self.frames_done + i) as u64;
        }
        self.chain.run(&self.raw);
        self.frames_done += frames;
    }

    fn done(&self) -> bool {
        self.frames_done == self.frames
    }

    /// Runs the rest of the signal in blocks of `block` frames and returns every spike.
    fn run(&mut self, block: usize) -> Vec<Spike> {
        while !self.done() {
            self.step(block);
        }
        self.spikes()
    }

    /// Spikes pushed since the last call.
    fn spikes(&mut self) -> Vec<Spike> {
        let mut out = Vec::new();
        loop {
            let read = self.reader.read(&self.ring, |s| out.push(*s));
            assert_eq!(read.lost, 0, "the test ring is too small");
            if read.events == 0 {
                return out;
            }
        }
    }
}

fn microvolts(negative: f32, positive: f32) -> DetectParams {
    DetectParams { threshold: Threshold::Microvolts { negative, positive }, ..DetectParams::default() }
}

fn frame_of(spike: &Spike) -> usize {
    (spike.frame - FIRST_FRAME) as usize
}

fn snippet_mean(spike: &Spike) -> f32 {
    spike.samples.iter().sum::<f32>() / SNIPPET_SAMPLES as f32
}

fn argmin(values: &[f32]) -> usize {
    (0..values.len()).min_by(|&a, &b| values[a].total_cmp(&values[b])).unwrap()
}

/// Checks that a 25 kHz snippet is the raw samples around the crossing minus their mean.
fn assert_raw_snippet(signal: &Signal, spike: &Spike) {
    let cross = frame_of(spike);
    let raw: Vec<f32> =
        (0..SNIPPET_SAMPLES).map(|j| signal.at(cross + j - SNIPPET_PRE, spike.channel as usize)).collect();
    let mean = raw.iter().sum::<f32>() / SNIPPET_SAMPLES as f32;
    for (j, (s, r)) in spike.samples.iter().zip(&raw).enumerate() {
        assert!((s - (r - mean)).abs() < 1e-3, "frame {cross}, point {j}: {s} vs {}", r - mean);
    }
}

// ---------------------------------------------------------------------------------------------

#[test]
fn every_injected_spike_is_found_at_its_crossing_with_its_snippet() {
    let rate = 30_000.0;
    let mut signal = Signal::noise(8, rate, 1.0, 7, |_| 5.0);
    let mut injected = Vec::new();
    for k in 0..40usize {
        let (channel, frame) = (k % 8, 600 + k * 700 + (k * 37) % 300);
        let amplitude = -(80.0 + (k * 29 % 120) as f32);
        signal.add_spike(channel, frame, amplitude, 0.0001);
        injected.push((channel, frame));
    }
    let level = -40.0;
    let mut rig = Rig::new(&signal, vec![microvolts(level, 40.0); 8], 128);
    let spikes = rig.run(128);
    // (crossing frame, channel, trough frame), in the order spikes are pushed.
    let mut expected: Vec<(usize, usize, usize)> =
        injected.iter().map(|&(c, trough)| (signal.crossing(c, trough, level), c, trough)).collect();
    expected.sort();
    assert_eq!(
        spikes.iter().map(|s| (frame_of(s), s.channel as usize)).collect::<Vec<_>>(),
        expected.iter().map(|&(cross, c, _)| (cross, c)).collect::<Vec<_>>()
    );
    for (spike, &(cross, c, trough)) in spikes.iter().zip(&expected) {
        assert_eq!(spike.unit, UNSORTED);
        assert!(snippet_mean(spike).abs() < 1e-3, "mean {}", snippet_mean(spike));
        // The peak is the trough of the raw signal, before centring.
        let trough_uv = (cross..cross + 24).map(|f| signal.at(f, c)).fold(f32::INFINITY, f32::min);
        assert_eq!(spike.peak_uv, trough_uv);
        // The snippet's trough sits where the injected trough is, on the 25 kHz time axis.
        let expected_at = SNIPPET_PRE as f64 + (trough - cross) as f64 * 25_000.0 / rate;
        let at = argmin(&spike.samples) as f64;
        assert!((at - expected_at).abs() <= 1.0, "trough at point {at}, expected {expected_at}");
    }
    assert_eq!(rig.shared.spikes_total(), 40);
    assert_eq!((0..8).map(|c| rig.shared.spikes(c)).sum::<u64>(), 40);
    assert_eq!(rig.shared.outside_width(), 0);
}

#[test]
fn pure_noise_at_five_times_its_noise_gives_at_most_a_handful() {
    // 16 channels × 4 s at 30 kHz; P(|x| > 5σ) = 5.7e-7 per sample, so about one crossing is
    // expected over the 3.5 s after the first estimates.
    let signal = Signal::noise(16, 30_000.0, 4.0, 11, |_| 10.0);
    let params = DetectParams {
        polarity: Polarity::Both,
        threshold: Threshold::NoiseMultiple { negative: 5.0, positive: 5.0 },
        ..DetectParams::default()
    };
    let mut rig = Rig::new(&signal, vec![params; 16], 256);
    let spikes = rig.run(256);
    assert!(spikes.len() <= 6, "{} spikes in pure noise", spikes.len());
    for c in 0..16 {
        let (neg, pos) = rig.shared.threshold_uv(c);
        assert!((neg + 50.0).abs() < 7.5 && (pos - 50.0).abs() < 7.5, "channel {c}: levels {neg}, {pos}");
    }
}

#[test]
fn noise_multiples_detect_nothing_before_the_first_estimate_and_the_estimate_comes_within_a_second() {
    let mut signal = Signal::noise(4, 30_000.0, 1.0, 5, |_| 2.0);
    for k in 0..10 {
        signal.add_spike(1, 1000 + k * 2800, -100.0, 0.0001);
    }
    let params = DetectParams {
        threshold: Threshold::NoiseMultiple { negative: 10.0, positive: 10.0 },
        ..DetectParams::default()
    };
    let mut rig = Rig::new(&signal, vec![params; 4], 300);
    rig.step(300);
    assert_eq!(rig.shared.noise_uv(1), None);
    assert!(rig.shared.threshold_uv(1).0.is_nan());
    let spikes = rig.run(300);
    // Spikes before ~0.5 s (frame 15 000, spike 5) are missed, every later one found.
    let nearest_trough = |s: &Spike| (frame_of(s) + 1400 - 1000) / 2800;
    let found: Vec<usize> = spikes.iter().map(nearest_trough).collect();
    assert!(!found.is_empty() && found[0] >= 5 && found[0] <= 6, "{found:?}");
    assert_eq!(found, (found[0]..10).collect::<Vec<_>>());
    assert!(rig.shared.noise_uv(1).is_some());
}

#[test]
fn a_second_crossing_within_the_dead_time_is_ignored() {
    let rate = 30_000.0;
    let mut signal = Signal::silent(1, rate, 0.1);
    // Crossings 20 frames apart (under 1 ms), then 40 frames apart (over it).
    for trough in [300, 320, 1000, 1040] {
        signal.add_spike(0, trough, -100.0, 0.00005);
    }
    let level = -40.0;
    let mut rig = Rig::new(&signal, vec![microvolts(level, 40.0)], 64);
    let found: Vec<usize> = rig.run(64).iter().map(frame_of).collect();
    let cross = |t| signal.crossing(0, t, level);
    assert_eq!(found, [cross(300), cross(1000), cross(1040)]);

    let longer = DetectParams { shadow_s: 0.002, ..microvolts(level, 40.0) };
    let mut rig = Rig::new(&signal, vec![longer], 64);
    let found: Vec<usize> = rig.run(64).iter().map(frame_of).collect();
    assert_eq!(found, [cross(300), cross(1000)]);
}

#[test]
fn a_channel_stuck_beyond_its_level_fires_once_until_it_comes_back() {
    let mut signal = Signal::silent(1, 30_000.0, 0.1);
    for f in 100..1100 {
        signal.samples[f] = -200.0;
    }
    signal.samples[1500] = -200.0;
    let params = DetectParams { artifact_level: None, ..microvolts(-40.0, 40.0) };
    let mut rig = Rig::new(&signal, vec![params], 100);
    assert_eq!(rig.run(100).iter().map(frame_of).collect::<Vec<_>>(), [100, 1500]);
}

#[test]
fn a_spike_straddling_blocks_gets_its_samples_from_both() {
    // At 25 kHz the snippet is the raw samples: check them exactly, with block boundaries put
    // right at the crossings.
    let rate = 25_000.0;
    let mut signal = Signal::noise(3, rate, 0.2, 3, |_| 4.0);
    let troughs = [300, 900, 1500, 2100];
    for (k, &t) in troughs.iter().enumerate() {
        signal.add_spike(k % 3, t, -120.0, 0.0001);
    }
    let level = -40.0;
    let c: Vec<usize> = troughs.iter().enumerate().map(|(k, &t)| signal.crossing(k % 3, t, level)).collect();
    // The first crossing is the last frame of its block, the second the first frame of its
    // block (all pre-samples from earlier blocks), the third five frames into its block; the
    // fourth sits in a 13-frame block, its snippet spread over seven blocks.
    let mut boundaries: Vec<usize> = vec![c[0] + 1, c[1], c[2] - 5, c[3] - 10, c[3] + 3];
    boundaries.extend((0..signal.frames()).step_by(32));
    boundaries.push(signal.frames());
    boundaries.sort();
    boundaries.dedup();
    let mut rig = Rig::new(&signal, vec![microvolts(level, 40.0); 3], 64);
    for pair in boundaries.windows(2) {
        rig.step(pair[1] - pair[0]);
    }
    assert!(rig.done());
    let spikes = rig.spikes();
    assert_eq!(spikes.iter().map(frame_of).collect::<Vec<_>>(), c);
    for spike in &spikes {
        assert_raw_snippet(&signal, spike);
    }
}

#[test]
fn the_spikes_do_not_depend_on_the_block_size() {
    let rate = 30_000.0;
    let mut signal = Signal::noise(8, rate, 2.0, 99, |c| 4.0 + c as f32);
    for k in 0..300usize {
        let amplitude = if k % 5 == 0 { 90.0 } else { -(60.0 + (k % 7) as f32 * 20.0) };
        signal.add_spike(k * 3 % 8, 200 + k * 197, amplitude, 0.0001);
    }
    let params = DetectParams { polarity: Polarity::Both, ..DetectParams::default() };
    let run = |block: usize| {
        let mut rig = Rig::new(&signal, vec![params.clone(); 8], block);
        let spikes = rig.run(block);
        let noise: Vec<Option<f32>> = (0..8).map(|c| rig.shared.noise_uv(c)).collect();
        (spikes, noise)
    };
    let (reference, noise) = run(128);
    assert!(reference.len() > 200, "{} spikes", reference.len());
    // In (frame, channel) order.
    assert!(reference.windows(2).all(|w| (w[0].frame, w[0].channel) < (w[1].frame, w[1].channel)));
    for block in [1, 7, 100, 1000, 60_000] {
        let (spikes, n) = run(block);
        assert_eq!(spikes.len(), reference.len(), "block of {block}");
        assert!(spikes == reference, "block of {block}: different spikes");
        assert_eq!(n, noise);
    }
}

#[test]
fn microvolt_and_noise_multiple_levels() {
    // Channel 0 at -60 µV; channel 1 at 20 × its 2 µV noise, i.e. about -40 µV. Both see the
    // same signal: spikes of 50 µV cross only channel 1's level, of 90 µV both.
    let mut signal = Signal::noise(2, 30_000.0, 2.0, 17, |_| 2.0);
    for k in 0..20 {
        let t = 33_000 + k * 1300;
        let amplitude = if k % 2 == 0 { -50.0 } else { -90.0 };
        for c in 0..2 {
            signal.add_spike(c, t, amplitude, 0.0001);
        }
    }
    let params = vec![
        microvolts(-60.0, 60.0),
        DetectParams {
            threshold: Threshold::NoiseMultiple { negative: 20.0, positive: 20.0 },
            ..DetectParams::default()
        },
    ];
    let mut rig = Rig::new(&signal, params, 128);
    let spikes = rig.run(128);
    let on = |c: u16| spikes.iter().filter(|s| s.channel == c).count();
    assert_eq!(on(0), 10);
    assert_eq!(on(1), 20);
    let (neg, pos) = rig.shared.threshold_uv(0);
    assert!(neg == -60.0 && pos.is_nan(), "a negative-only channel has no positive level: {pos}");
    let (neg, pos) = rig.shared.threshold_uv(1);
    assert!((neg + 40.0).abs() < 3.0, "{neg}");
    assert!(pos.is_nan());
    let noise = rig.shared.noise_uv(1).unwrap();
    assert!((noise - 2.0).abs() < 0.15, "{noise}");
}

#[test]
fn polarity_selects_troughs_peaks_or_both() {
    let mut signal = Signal::noise(1, 30_000.0, 0.2, 23, |_| 3.0);
    let (down, up) = ([500, 2500, 4500], [1500, 3500, 5500]);
    for &t in &down {
        signal.add_spike(0, t, -100.0, 0.0001);
    }
    for &t in &up {
        signal.add_spike(0, t, 100.0, 0.0001);
    }
    let run = |polarity| {
        let params = DetectParams { polarity, ..microvolts(-40.0, 40.0) };
        Rig::new(&signal, vec![params], 128).run(128)
    };
    let cross_down: Vec<usize> = down.iter().map(|&t| signal.crossing(0, t, -40.0)).collect();
    let cross_up: Vec<usize> = up.iter().map(|&t| signal.crossing(0, t, 40.0)).collect();

    let negative = run(Polarity::Negative);
    assert_eq!(negative.iter().map(frame_of).collect::<Vec<_>>(), cross_down);
    assert!(negative.iter().all(|s| s.peak_uv < -90.0));

    let positive = run(Polarity::Positive);
    assert_eq!(positive.iter().map(frame_of).collect::<Vec<_>>(), cross_up);
    assert!(positive.iter().all(|s| s.peak_uv > 90.0));
    // An upward spike's snippet peaks where the spike does.
    for s in &positive {
        let at = (0..SNIPPET_SAMPLES).max_by(|&a, &b| s.samples[a].total_cmp(&s.samples[b])).unwrap();
        assert!((SNIPPET_PRE..SNIPPET_PRE + 10).contains(&at), "peak at point {at}");
    }

    let both = run(Polarity::Both);
    let mut all: Vec<usize> = cross_down.iter().chain(&cross_up).copied().collect();
    all.sort();
    assert_eq!(both.iter().map(frame_of).collect::<Vec<_>>(), all);
    for s in &both {
        let downward = cross_down.contains(&frame_of(s));
        assert_eq!(s.peak_uv < 0.0, downward, "the peak is searched on the side that was crossed");
    }
}

#[test]
fn a_snippet_beyond_the_artifact_level_is_discarded_and_counted() {
    let mut signal = Signal::noise(1, 30_000.0, 0.2, 29, |_| 3.0);
    signal.add_spike(0, 600, -800.0, 0.0001); // beyond -500: artifact
    signal.add_spike(0, 1600, -100.0, 0.0001); // a spike
    signal.add_spike(0, 2600, -100.0, 0.0001); // a spike followed by a large positive swing
    signal.add_bump(0, 2630, 700.0, 0.0002);
    signal.add_spike(0, 3600, -100.0, 0.0001); // a spike
    let params = DetectParams {
        artifact_level: Some(Threshold::Microvolts { negative: -500.0, positive: 500.0 }),
        ..microvolts(-40.0, 40.0)
    };
    let mut rig = Rig::new(&signal, vec![params.clone()], 128);
    let spikes = rig.run(128);
    assert_eq!(
        spikes.iter().map(frame_of).collect::<Vec<_>>(),
        [signal.crossing(0, 1600, -40.0), signal.crossing(0, 3600, -40.0)]
    );
    assert_eq!(rig.shared.artifacts_rejected(), 2);
    assert_eq!(rig.shared.spikes(0), 2);

    let keep_all = DetectParams { artifact_level: None, ..params };
    assert_eq!(Rig::new(&signal, vec![keep_all], 128).run(128).len(), 4);
}

#[test]
fn a_disabled_channel_detects_nothing() {
    let mut signal = Signal::noise(3, 30_000.0, 0.2, 31, |_| 3.0);
    for c in 0..3 {
        for k in 0..5 {
            signal.add_spike(c, 400 + k * 1000, -100.0, 0.0001);
        }
    }
    let off = DetectParams { enabled: false, ..microvolts(-40.0, 40.0) };
    let mut rig = Rig::new(&signal, vec![microvolts(-40.0, 40.0), off, microvolts(-40.0, 40.0)], 128);
    let spikes = rig.run(128);
    assert_eq!(spikes.len(), 10);
    assert!(spikes.iter().all(|s| s.channel != 1));
    assert_eq!(rig.shared.spikes(1), 0);
    let (neg, pos) = rig.shared.threshold_uv(1);
    assert!(neg.is_nan() && pos.is_nan());
}

#[test]
fn a_live_parameter_change_takes_effect_at_the_next_block() {
    let block = 300;
    let mut signal = Signal::noise(2, 30_000.0, 0.2, 37, |_| 3.0);
    // One 70 µV spike early in each block, on both channels.
    for b in 0..20 {
        for c in 0..2 {
            signal.add_spike(c, b * block + 20, -70.0, 0.0001);
        }
    }
    let mut rig = Rig::new(&signal, vec![microvolts(-100.0, 100.0); 2], block);
    for _ in 0..5 {
        rig.step(block);
    }
    assert!(rig.spikes().is_empty());
    // Lowering channel 1's level between blocks 4 and 5: found from block 5 on.
    rig.control.update(vec![(1, microvolts(-50.0, 50.0))]).unwrap();
    assert_eq!(rig.control.params()[1], microvolts(-50.0, 50.0));
    rig.step(block);
    let spikes = rig.spikes();
    assert_eq!(spikes.iter().map(|s| (frame_of(s) / block, s.channel)).collect::<Vec<_>>(), [(5, 1)]);
    assert_eq!(rig.shared.threshold_uv(1).0, -50.0);
    // Several updates before the next block: the last one wins.
    rig.control.update(vec![(0, microvolts(-50.0, 50.0))]).unwrap();
    rig.control.update(vec![(0, microvolts(-60.0, 60.0)), (1, microvolts(-90.0, 90.0))]).unwrap();
    rig.control.update(vec![(1, microvolts(-55.0, 55.0))]).unwrap();
    rig.step(block);
    let mut spikes: Vec<_> = rig.spikes().iter().map(|s| (frame_of(s) / block, s.channel)).collect();
    spikes.sort();
    assert_eq!(spikes, [(6, 0), (6, 1)]);
    assert_eq!(rig.shared.threshold_uv(0).0, -60.0);
    assert_eq!(rig.shared.threshold_uv(1).0, -55.0);
    // A refused change changes nothing.
    let err = rig.control.update(vec![(0, microvolts(-30.0, 30.0)), (1, microvolts(30.0, 30.0))]).unwrap_err();
    assert_eq!((err.channel, err.field), (Some(1), "threshold.negative"));
    assert_eq!(rig.control.params()[0], microvolts(-60.0, 60.0));
    let err = rig.control.update(vec![(2, DetectParams::default())]).unwrap_err();
    assert_eq!(err.field, "channel");
    rig.step(block);
    assert_eq!(rig.spikes().len(), 2);
}

#[test]
fn the_noise_estimate_is_within_a_few_percent_of_the_true_sigma_after_two_seconds() {
    let sigma = |c: usize| 3.0 + c as f32 * 0.75;
    let channels = 32;
    let mut signal = Signal::noise(channels, 30_000.0, 2.0, 41, sigma);
    // Spikes at 20 Hz per channel hardly move a median.
    for c in 0..channels {
        for k in 0..40 {
            signal.add_spike(c, 500 + k * 1490 + c * 13, -150.0, 0.0001);
        }
    }
    let mut rig = Rig::new(&signal, vec![DetectParams::default(); channels], 128);
    rig.run(128);
    let errors: Vec<f32> = (0..channels).map(|c| rig.shared.noise_uv(c).unwrap() / sigma(c) - 1.0).collect();
    let rms = (errors.iter().map(|e| e * e).sum::<f32>() / channels as f32).sqrt();
    // Two seconds of 1024 decimated samples each: a relative standard error of about 2.6%.
    assert!(rms < 0.05, "rms error {rms}: {errors:?}");
    assert!(errors.iter().all(|e| e.abs() < 0.15), "{errors:?}");
    let mean = errors.iter().sum::<f32>() / channels as f32;
    assert!(mean.abs() < 0.03, "bias {mean}");
}

#[test]
fn a_reader_that_falls_behind_is_told_how_many_spikes_it_lost() {
    let mut signal = Signal::silent(1, 30_000.0, 0.2);
    for k in 0..20 {
        signal.add_spike(0, 300 + k * 200, -100.0, 0.0001);
    }
    let mut rig = Rig::with_ring(&signal, vec![microvolts(-40.0, 40.0)], 128, 8);
    let mut late = rig.ring.reader_at(0, 100);
    while !rig.done() {
        rig.step(128);
    }
    let mut got = Vec::new();
    assert_eq!(late.read(&rig.ring, |s| got.push(frame_of(s))), EventsRead { events: 8, lost: 12 });
    let expected: Vec<usize> = (12..20).map(|k| signal.crossing(0, 300 + k * 200, -40.0)).collect();
    assert_eq!(got, expected);
    assert_eq!(rig.shared.spikes_total(), 20);
}

#[test]
fn snippets_are_the_raw_samples_at_25_khz_and_resampled_at_30_khz() {
    // The same spike (trough at 10 ms) sampled at both rates, without noise.
    let spike_at = |rate: f64| {
        let mut signal = Signal::silent(1, rate, 0.03);
        signal.add_spike(0, (0.01 * rate) as usize, -100.0, 0.00015);
        let spikes = Rig::new(&signal, vec![microvolts(-40.0, 40.0)], 64).run(64);
        assert_eq!(spikes.len(), 1);
        (signal, spikes[0])
    };
    let (signal, spike) = spike_at(25_000.0);
    assert_raw_snippet(&signal, &spike);

    let (signal, spike) = spike_at(30_000.0);
    let cross = frame_of(&spike) as f64;
    // Linear interpolation of the 30 kHz samples at the 25 kHz points around the crossing.
    let points: Vec<f32> = (0..SNIPPET_SAMPLES)
        .map(|j| {
            let p = cross + (j as f64 - SNIPPET_PRE as f64) * 30_000.0 / 25_000.0;
            let (i, frac) = (p.floor() as usize, (p - p.floor()) as f32);
            let a = signal.at(i, 0);
            if frac == 0.0 {
                a
            } else {
                a + (signal.at(i + 1, 0) - a) * frac
            }
        })
        .collect();
    let mean = points.iter().sum::<f32>() / SNIPPET_SAMPLES as f32;
    for (j, (s, p)) in spike.samples.iter().zip(&points).enumerate() {
        assert!((s - (p - mean)).abs() < 1e-3, "point {j}: {s} vs {}", p - mean);
    }
    // Both show the trough 10 ms - crossing later, on the same time axis.
    let trough_point = SNIPPET_PRE as f64 + (0.01 * 30_000.0 - cross) * 25_000.0 / 30_000.0;
    assert!((argmin(&spike.samples) as f64 - trough_point).abs() <= 1.0);
}

#[test]
fn a_half_peak_width_outside_the_allowed_range_is_emitted_and_counted() {
    let mut signal = Signal::silent(1, 30_000.0, 0.1);
    signal.add_spike(0, 500, -100.0, 0.0001); // 0.24 ms at half peak
    signal.add_bump(0, 1500, -100.0, 0.00065); // 1.5 ms
    signal.add_spike(0, 2500, -100.0, 0.00003); // 0.07 ms
                                                // The snippet spans 3 ms around a crossing on the spike's flank, so widths are measured
                                                // up to about 2 ms.
    let params = DetectParams { spike_width_s: (0.00015, 0.001), ..microvolts(-40.0, 40.0) };
    let mut rig = Rig::new(&signal, vec![params], 128);
    assert_eq!(rig.run(128).len(), 3);
    assert_eq!(rig.shared.outside_width(), 2);
    assert_eq!(rig.shared.spikes_total(), 3);
}

#[test]
fn crossings_beyond_the_pending_table_are_dropped_and_counted_in_order() {
    // 128 channels each crossing every other frame for 400 frames: 25 600 crossings, about
    // 3 800 waiting at once for their 2 ms of snippet, more than the 512 the table holds.
    let channels = 128;
    let mut signal = Signal::silent(channels, 30_000.0, 0.05);
    for f in (0..400).step_by(2) {
        signal.samples[f * channels..(f + 1) * channels].fill(-100.0);
    }
    let params = DetectParams { shadow_s: 0.0, artifact_level: None, ..microvolts(-40.0, 40.0) };
    let mut rig = Rig::new(&signal, vec![params; channels], 500);
    assert_eq!(rig.pending_capacity, 512);
    let spikes = rig.run(500);
    let shared = &rig.shared;
    assert!(shared.pending_overflows() > 0);
    assert_eq!(shared.spikes_total() + shared.pending_overflows(), 200 * channels as u64);
    assert_eq!(spikes.len() as u64, shared.spikes_total());
    assert!(spikes.windows(2).all(|w| (w[0].frame, w[0].channel) < (w[1].frame, w[1].channel)));
    shared.reset_counts();
    assert_eq!((shared.spikes_total(), shared.pending_overflows(), shared.spikes(0)), (0, 0, 0));
}

#[test]
fn invalid_parameters_are_refused_naming_the_channel_and_the_field() {
    let new = |channels: usize, rate: f64, params: Vec<DetectParams>| -> DetectParamsError {
        let (writer, _) = EventRing::<Spike>::new(4);
        DetectorStage::new(channels, rate, params, writer).err().expect("accepted")
    };
    let bad = DetectParams { window_post_s: 0.005, ..DetectParams::default() };
    let err = new(3, 30_000.0, vec![DetectParams::default(), DetectParams::default(), bad]);
    assert_eq!((err.channel, err.field), (Some(2), "window_post_s"));
    assert!(err.to_string().contains("allowed 0 to 0.00196 s"), "{err}");

    let err = new(3, 30_000.0, vec![DetectParams::default(); 2]);
    assert_eq!(err.field, "params");
    let err = new(1, f64::INFINITY, vec![DetectParams::default()]);
    assert_eq!(err.field, "sample_rate_hz");
    let err = new(70_000, 30_000.0, vec![DetectParams::default(); 70_000]);
    assert_eq!(err.field, "channels");

    let cases = [
        (
            DetectParams {
                threshold: Threshold::Microvolts { negative: -50.0, positive: -50.0 },
                ..DetectParams::default()
            },
            "threshold.positive",
        ),
        (
            DetectParams {
                threshold: Threshold::NoiseMultiple { negative: f32::INFINITY, positive: 4.0 },
                ..DetectParams::default()
            },
            "threshold.negative",
        ),
        (
            DetectParams {
                artifact_level: Some(Threshold::Microvolts { negative: -30.0, positive: 1e3 }),
                ..microvolts(-50.0, 50.0)
            },
            "artifact_level.negative",
        ),
        (DetectParams { window_pre_s: f32::NAN, ..DetectParams::default() }, "window_pre_s"),
        (DetectParams { shadow_s: -0.001, ..DetectParams::default() }, "shadow_s"),
        (DetectParams { spike_width_s: (0.0002, 0.01), ..DetectParams::default() }, "spike_width_s.max"),
    ];
    for (params, field) in cases {
        let err = params.validate(30_000.0).unwrap_err();
        assert_eq!(err.field, field, "{err}");
        assert_eq!(new(1, 30_000.0, vec![params]).field, field);
    }
}

#[test]
fn processing_allocates_nothing() {
    let channels = 64;
    let mut signal = Signal::noise(channels, 30_000.0, 3.0, 43, |_| 5.0);
    for k in 0..3000 {
        signal.add_spike(k * 7 % channels, 100 + k * 29, if k % 3 == 0 { 120.0 } else { -150.0 }, 0.0001);
    }
    signal.add_spike(5, 40_000, -3000.0, 0.0001); // an artifact
    let params = DetectParams { polarity: Polarity::Both, ..DetectParams::default() };
    let mut rig = Rig::new(&signal, vec![params; channels], 128);
    let mut allocated = 0;
    let mut blocks = 0;
    while !rig.done() {
        if blocks % 100 == 50 {
            // Prepared (and allocated) here; the stage only takes it.
            let change = vec![(blocks % channels, microvolts(-60.0 - blocks as f32 / 100.0, 60.0))];
            rig.control.update(change).unwrap();
        }
        let before = allocations();
        rig.step(128);
        allocated += allocations() - before;
        blocks += 1;
    }
    assert_eq!(allocated, 0, "the detector allocated or freed while processing");
    assert!(rig.shared.spikes_total() > 2000);
    assert_eq!(rig.shared.artifacts_rejected(), 1);
    assert!(rig.spikes().len() > 2000);
}

#[test]
fn the_control_side_can_be_shared_across_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<DetectorControl>();
    shareable::<DetectorShared>();
    fn sendable<T: Send>() {}
    sendable::<DetectorStage>();
}
