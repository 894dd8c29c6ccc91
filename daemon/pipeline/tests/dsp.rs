//! The filter module: designs equal scipy's, the real-time path equals the f64 reference
//! across blocks, references mix channels as documented, a replaced plan takes over without a
//! transient, and the stage neither allocates nor frees while it processes.

mod common;

use std::sync::{Arc, Mutex};

use ephysd_drivers::{BlockLayout, FrameBlock};
use ephysd_pipeline::dsp::{
    design, sosfilt, sosfilt_zi, DesignError, FilterControl, FilterFamily, FilterKind, FilterPlan, FilterSpec,
    FilterStage, PlanError, ReplaceError, Sos,
};
use ephysd_pipeline::{Stage, StageBlock, StageChain};

#[global_allocator]
static GLOBAL: common::heap::CountingAllocator = common::heap::CountingAllocator;

fn heap_calls() -> u64 {
    common::heap::heap_calls()
}

const FS: f64 = 30_000.0;

/// A small deterministic generator (xorshift64*), for noise and block sizes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in [-1, 1).
    fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn butter(kind: FilterKind, order: u32) -> Sos {
    design(&FilterSpec { kind, family: FilterFamily::Butterworth, order }, FS).unwrap()
}

fn highpass_300() -> Sos {
    butter(FilterKind::Highpass { cutoff_hz: 300.0 }, 2)
}

fn notch_60() -> Sos {
    butter(FilterKind::Notch { centre_hz: 60.0, bandwidth_hz: 2.0 }, 0)
}

/// Noise, a spike-band sine, mains and an offset: `frames` frames of `channels` channels,
/// frame-major, each channel a little different.
fn signal(channels: usize, frames: usize, rng: &mut Rng) -> Vec<f32> {
    let mut x = Vec::with_capacity(channels * frames);
    for f in 0..frames {
        let t = f as f64 / FS;
        for c in 0..channels {
            let phase = c as f64 * 0.3;
            let v = 30.0 * rng.uniform()
                + 80.0 * (2.0 * std::f64::consts::PI * 1000.0 * t + phase).sin()
                + 40.0 * (2.0 * std::f64::consts::PI * 60.0 * t).sin()
                + 5.0 * c as f64;
            x.push(v as f32);
        }
    }
    x
}

fn column(x: &[f32], channels: usize, c: usize) -> Vec<f64> {
    x.iter().skip(c).step_by(channels).map(|&v| f64::from(v)).collect()
}

fn rms(x: &[f64]) -> f64 {
    (x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64).sqrt()
}

fn max_abs_difference(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

/// Blocks in, blocks out, through a [`StageChain`] as on the acquisition thread: a first
/// stage puts the test's f32 signal into the chain's signal block, the filter stage runs, a
/// last stage copies the result out.
struct Harness {
    chain: StageChain,
    raw: FrameBlock,
    channels: usize,
    io: Arc<Mutex<Io>>,
}

#[derive(Default)]
struct Io {
    input: Vec<f32>,
    output: Vec<f32>,
}

struct Feed(Arc<Mutex<Io>>);

impl Stage for Feed {
    fn name(&self) -> &str {
        "feed"
    }
    fn process(&mut self, block: &mut StageBlock<'_>) {
        block.signal.samples_mut().copy_from_slice(&self.0.lock().unwrap().input);
    }
}

struct Collect(Arc<Mutex<Io>>);

impl Stage for Collect {
    fn name(&self) -> &str {
        "collect"
    }
    fn process(&mut self, block: &mut StageBlock<'_>) {
        let mut io = self.0.lock().unwrap();
        io.output.clear();
        io.output.extend_from_slice(block.signal.samples());
    }
}

impl Harness {
    const MAX_FRAMES: usize = 512;

    fn new(stage: FilterStage, channels: usize) -> Harness {
        let layout = BlockLayout {
            amplifier_channels: channels,
            aux_channels: 0,
            analog_in_channels: 0,
            frames_per_block: Self::MAX_FRAMES,
        };
        let io = Arc::new(Mutex::new(Io {
            input: Vec::with_capacity(Self::MAX_FRAMES * channels),
            output: Vec::with_capacity(Self::MAX_FRAMES * channels),
        }));
        let stages: Vec<Box<dyn Stage>> =
            vec![Box::new(Feed(Arc::clone(&io))), Box::new(stage), Box::new(Collect(Arc::clone(&io)))];
        Harness { chain: StageChain::new(layout, stages), raw: FrameBlock::new(layout), channels, io }
    }

    /// Runs one block (frame-major, at most `MAX_FRAMES` frames). Returns the stage's output
    /// and the heap calls the current thread made inside the chain.
    fn block(&mut self, x: &[f32]) -> (Vec<f32>, u64) {
        {
            let mut io = self.io.lock().unwrap();
            io.input.clear();
            io.input.extend_from_slice(x);
        }
        self.raw.frames = x.len() / self.channels;
        let before = heap_calls();
        self.chain.run(&self.raw);
        let calls = heap_calls() - before;
        (self.io.lock().unwrap().output.clone(), calls)
    }

    /// Runs `x` in blocks of the given sizes (frames), cycling through them.
    fn run(&mut self, x: &[f32], sizes: &[usize]) -> Vec<f32> {
        let mut out = Vec::with_capacity(x.len());
        let (mut at, mut i) = (0, 0);
        while at < x.len() {
            let n = (sizes[i % sizes.len()] * self.channels).min(x.len() - at);
            out.extend(self.block(&x[at..at + n]).0);
            at += n;
            i += 1;
        }
        out
    }
}

fn stage(plan: FilterPlan) -> (Harness, FilterControl) {
    let channels = plan.channels();
    let (stage, control) = FilterStage::new("stage-1 filter", plan);
    assert_eq!(stage.name(), "stage-1 filter");
    (Harness::new(stage, channels), control)
}

fn assert_sections_equal(got: &Sos, expected: &[[f64; 6]]) {
    assert_eq!(got.sections().len(), expected.len(), "{got:?}");
    for (g, e) in got.sections().iter().zip(expected) {
        for (a, b) in g.iter().zip(e) {
            assert!((a - b).abs() <= 1e-12 * b.abs().max(1e-3), "{g:?} vs scipy {e:?}");
        }
    }
}

#[test]
fn designs_equal_scipy_section_by_section() {
    // butter(2, 300, 'highpass', output='sos', fs=30000)
    assert_sections_equal(
        &highpass_300(),
        &[[0.9565432255568767, -1.9130864511137533, 0.9565432255568767, 1.0, -1.911197067426073, 0.9149758348014336]],
    );
    // butter(3, [300, 6000], 'bandpass', output='sos', fs=30000)
    assert_sections_equal(
        &butter(FilterKind::Bandpass { low_hz: 300.0, high_hz: 6000.0 }, 3),
        &[
            [
                0.08726583097233712,
                0.17453166194467423,
                0.08726583097233712,
                1.0,
                -0.45286046609779973,
                0.38778776395636494,
            ],
            [1.0, 0.0, -1.0, 1.0, -1.1375979216362906, 0.19076020221856674],
            [1.0, -2.0, 1.0, 1.0, -1.9380068640496964, 0.9419891448775694],
        ],
    );
    // butter(2, [45, 55], 'bandstop', output='sos', fs=25000)
    assert_sections_equal(
        &design(
            &FilterSpec {
                kind: FilterKind::Bandstop { low_hz: 45.0, high_hz: 55.0 },
                family: FilterFamily::Butterworth,
                order: 2,
            },
            25_000.0,
        )
        .unwrap(),
        &[
            [0.9982244250251577, -1.9962927950512241, 0.9982244250251576, 1.0, -1.9979182880026864, 0.9980983685376585],
            [1.0, -1.9998436674206932, 0.9999999999999999, 1.0, -1.9982150220466872, 0.9983504974356591],
        ],
    );
    // cheby1(3, 1, 500, 'lowpass', output='sos', fs=25000)
    let cheby = FilterSpec {
        kind: FilterKind::Lowpass { cutoff_hz: 500.0 },
        family: FilterFamily::ChebyshevI { ripple_db: 1.0 },
        order: 3,
    };
    assert_sections_equal(
        &design(&cheby, 25_000.0).unwrap(),
        &[
            [0.00011464638065965843, 0.00022929276131931686, 0.00011464638065965843, 1.0, -0.939693796443536, 0.0],
            [1.0, 1.0, 0.0, 1.0, -1.92471452041444, 0.9399230892048553],
        ],
    );
    // iirnotch(60, 30, fs=30000)
    assert_sections_equal(
        &notch_60(),
        &[[0.999790604342423, -1.9994233301584798, 0.999790604342423, 1.0, -1.9994233301584798, 0.9995812086848459]],
    );
}

#[test]
fn the_steady_state_equals_scipys_sosfilt_zi() {
    let close = |got: Vec<[f64; 2]>, expected: &[[f64; 2]]| {
        assert_eq!(got.len(), expected.len());
        for (g, e) in got.iter().zip(expected) {
            assert!((g[0] - e[0]).abs() < 1e-9 && (g[1] - e[1]).abs() < 1e-9, "{got:?} vs scipy {expected:?}");
        }
    };
    close(sosfilt_zi(&highpass_300()), &[[-0.9565432255568767, 0.9565432255568767]]);
    // cheby1(4, 0.5, [300, 6000], 'bandpass', output='sos', fs=30000)
    let cheby = FilterSpec {
        kind: FilterKind::Bandpass { low_hz: 300.0, high_hz: 6000.0 },
        family: FilterFamily::ChebyshevI { ripple_db: 0.5 },
        order: 4,
    };
    close(
        sosfilt_zi(&design(&cheby, FS).unwrap()),
        &[
            [0.21399259103017018, -0.06712572394152258],
            [0.530969400880077, -0.3294774567159801],
            [-0.7703265856114794, 0.7703265856114794],
            [0.0, 0.0],
        ],
    );
}

#[test]
fn design_errors_name_the_field_and_its_range() {
    let spec = |kind, order| FilterSpec { kind, family: FilterFamily::Butterworth, order };
    let message = |s: FilterSpec, fs: f64| design(&s, fs).unwrap_err().to_string();
    assert_eq!(
        message(spec(FilterKind::Highpass { cutoff_hz: 20_000.0 }, 2), FS),
        "cutoff_hz 20000 must be above 0 and below the Nyquist frequency 15000 Hz"
    );
    assert_eq!(message(spec(FilterKind::Highpass { cutoff_hz: 300.0 }, 9), FS), "order 9 must be 1 to 8");
    assert_eq!(message(spec(FilterKind::Highpass { cutoff_hz: 300.0 }, 0), FS), "order 0 must be 1 to 8");
    assert!(message(spec(FilterKind::Bandpass { low_hz: 6000.0, high_hz: 300.0 }, 2), FS)
        .contains("low_hz (6000) must be below high_hz (300)"));
    assert_eq!(
        message(spec(FilterKind::Notch { centre_hz: f64::NAN, bandwidth_hz: 1.0 }, 0), FS),
        "centre_hz NaN must be above 0 and below the Nyquist frequency 15000 Hz"
    );
    let cheby = FilterSpec {
        kind: FilterKind::Lowpass { cutoff_hz: 300.0 },
        family: FilterFamily::ChebyshevI { ripple_db: -1.0 },
        order: 4,
    };
    assert_eq!(design(&cheby, FS).unwrap_err(), DesignError::Ripple { value: -1.0 });
    assert_eq!(
        message(spec(FilterKind::Lowpass { cutoff_hz: 300.0 }, 2), 0.0),
        "sample_rate_hz 0 must be above 0 and finite"
    );
}

#[test]
fn plan_errors_name_the_channel_and_the_channel_count() {
    let mut plan = FilterPlan::new(8);
    let e = plan.filter(&[0, 8], &highpass_300()).unwrap_err();
    assert_eq!(e, PlanError::ChannelOutOfRange { channel: 8, channels: 8 });
    assert_eq!(e.to_string(), "channel 8 must be below the plan's channel count 8");
    assert_eq!(plan.reference(9, &[1]).unwrap_err(), PlanError::ChannelOutOfRange { channel: 9, channels: 8 });
    assert_eq!(plan.common_average(&[1, 1]).unwrap_err().to_string(), "channel 1 is listed more than once");
}

/// 37 channels: two groups of 32 lanes with a partial one, filters of 1 to 8 sections side by
/// side, channels without a filter among them.
fn mixed_plan() -> (FilterPlan, Vec<Option<Sos>>) {
    let channels = 37;
    let cheby_bandpass = design(
        &FilterSpec {
            kind: FilterKind::Bandpass { low_hz: 300.0, high_hz: 6000.0 },
            family: FilterFamily::ChebyshevI { ripple_db: 1.0 },
            order: 8,
        },
        FS,
    )
    .unwrap();
    let lowpass = butter(FilterKind::Lowpass { cutoff_hz: 250.0 }, 5);
    let mut plan = FilterPlan::new(channels);
    let highpassed: Vec<usize> = (0..20).collect();
    let bandpassed: Vec<usize> = (20..30).collect();
    plan.filter(&highpassed, &highpass_300()).unwrap();
    plan.filter(&bandpassed, &cheby_bandpass).unwrap();
    plan.filter(&[30, 36], &lowpass).unwrap();
    plan.filter(&[36, 3], &notch_60()).unwrap();
    let mut expected: Vec<Option<Sos>> = vec![None; channels];
    for (c, expected) in expected.iter_mut().enumerate() {
        let mut sections: Vec<[f64; 6]> = Vec::new();
        if c < 20 {
            sections.extend_from_slice(highpass_300().sections());
        }
        if (20..30).contains(&c) {
            sections.extend_from_slice(cheby_bandpass.sections());
        }
        if c == 30 || c == 36 {
            sections.extend_from_slice(lowpass.sections());
        }
        if c == 36 || c == 3 {
            sections.extend_from_slice(notch_60().sections());
        }
        if !sections.is_empty() {
            *expected = Some(Sos::new(sections).unwrap());
        }
    }
    (plan, expected)
}

#[test]
fn every_channel_follows_the_f64_reference_and_unfiltered_channels_pass_unchanged() {
    let (plan, expected) = mixed_plan();
    let channels = plan.channels();
    let mut rng = Rng(7);
    let x = signal(channels, 9000, &mut rng);
    let (mut harness, _control) = stage(plan);
    let y = harness.run(&x, &[128, 100, 1, 511, 37]);
    for (c, sos) in expected.iter().enumerate() {
        let (input, got) = (column(&x, channels, c), column(&y, channels, c));
        match sos {
            None => assert_eq!(got, input, "channel {c} has no filter"),
            Some(sos) => {
                let mut reference = input.clone();
                sosfilt(sos, &mut reference);
                // f32 carries 24 bits (6e-8 relative); the poles near the unit circle of up to
                // 16th-order designs amplify the rounding a few hundred times, which stays
                // below 1e-4 of the signal (here about 0.01 µV, a twentieth of the
                // amplifier's 0.195 µV step).
                let error = max_abs_difference(&got, &reference);
                assert!(error < 1e-4 * rms(&input), "channel {c}: error {error} µV, rms {}", rms(&input));
            }
        }
    }
}

#[test]
fn splitting_the_signal_into_other_blocks_changes_nothing() {
    let (plan, _) = mixed_plan();
    let channels = plan.channels();
    let mut rng = Rng(11);
    let x = signal(channels, 6000, &mut rng);
    let whole = stage(plan.clone()).0.run(&x, &[Harness::MAX_FRAMES]);
    let sizes: Vec<usize> = (0..50).map(|_| 1 + rng.below(Harness::MAX_FRAMES)).collect();
    let split = stage(plan).0.run(&x, &sizes);
    // Each channel goes through the same operations in the same order whatever the blocks:
    // the results are not merely close, they are identical.
    assert_eq!(whole, split);
}

#[test]
fn common_average_subtracts_each_frames_mean_of_its_channels() {
    let mut plan = FilterPlan::new(5);
    plan.common_average(&[0, 1, 2, 4]).unwrap();
    let x = [1.0, 2.0, 3.0, 100.0, 6.0, -4.0, 0.0, 4.0, 7.0, 8.0];
    let y = stage(plan).0.run(&x, &[2]);
    assert_eq!(y, [-2.0, -1.0, 0.0, 100.0, 3.0, -6.0, -2.0, 2.0, 7.0, 6.0]);
}

#[test]
fn a_reference_is_taken_before_it_is_subtracted_and_paired_references_chain_in_order() {
    // Virtual reference: channel 1 from every channel, itself included.
    let mut plan = FilterPlan::new(4);
    plan.reference(1, &[0, 1, 2, 3]).unwrap();
    assert_eq!(stage(plan).0.run(&[5.0, 2.0, -1.0, 10.0], &[1]), [3.0, 0.0, -3.0, 8.0]);
    // Paired references: 0 − 1, then 1 − 2, then 2 − 3, each reading the frame as the
    // previous step left it.
    let mut plan = FilterPlan::new(4);
    plan.reference(1, &[0]).unwrap().reference(2, &[1]).unwrap().reference(3, &[2]).unwrap();
    assert_eq!(stage(plan).0.run(&[5.0, 2.0, -1.0, 10.0], &[1]), [3.0, 3.0, -11.0, 10.0]);
}

#[test]
fn steps_run_in_the_order_they_were_added() {
    let channels = 3;
    let mut rng = Rng(3);
    let x = signal(channels, 3000, &mut rng);
    let mut plan = FilterPlan::new(channels);
    plan.reference(0, &[1]).unwrap().filter(&[1], &highpass_300()).unwrap().common_average(&[1, 2]).unwrap();
    let y = stage(plan).0.run(&x, &[100]);
    // By hand, in f64: x1 − x0, highpassed, then the mean of it and x2 taken from both.
    let (x0, x1, x2) = (column(&x, 3, 0), column(&x, 3, 1), column(&x, 3, 2));
    let mut referenced: Vec<f64> = x1.iter().zip(&x0).map(|(a, b)| a - b).collect();
    sosfilt(&highpass_300(), &mut referenced);
    let mean: Vec<f64> = referenced.iter().zip(&x2).map(|(a, b)| (a + b) / 2.0).collect();
    let expected1: Vec<f64> = referenced.iter().zip(&mean).map(|(a, m)| a - m).collect();
    let expected2: Vec<f64> = x2.iter().zip(&mean).map(|(a, m)| a - m).collect();
    assert_eq!(column(&y, 3, 0), x0);
    assert!(max_abs_difference(&column(&y, 3, 1), &expected1) < 1e-3);
    assert!(max_abs_difference(&column(&y, 3, 2), &expected2) < 1e-3);
}

/// 500 µV of offset under a 10 µV, 1 kHz sine: a highpass switched on from zero state rings
/// with the offset, one switched on at rest for the last sample does not.
#[test]
fn a_replacement_highpass_starts_at_rest_for_the_current_input_and_does_not_ring() {
    let channels = 4;
    let frames = 6000;
    let x: Vec<f32> = (0..frames)
        .flat_map(|f| {
            let v = 500.0 + 10.0 * (2.0 * std::f64::consts::PI * 1000.0 * f as f64 / FS).sin();
            (0..channels).map(move |c| (v + c as f64) as f32)
        })
        .collect();
    let all: Vec<usize> = (0..channels).collect();
    let (mut harness, control) = stage(FilterPlan::new(channels));
    let half = frames / 2 * channels;
    let before = harness.run(&x[..half], &[128]);
    assert_eq!(before, x[..half], "no filter yet");
    let mut highpass = FilterPlan::new(channels);
    highpass.filter(&all, &highpass_300()).unwrap();
    control.replace(highpass.clone()).unwrap();
    let after = harness.run(&x[half..], &[128]);
    let peak = after.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(peak < 25.0, "the switch made the output ring up to {peak} µV");

    // The same switch from zero state, as a new filter would start.
    let cold = stage(highpass).0.run(&x[half..], &[128]);
    let cold_peak = cold.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(cold_peak > 300.0, "from zero state the highpass rings with the offset ({cold_peak} µV)");
}

#[test]
fn an_unchanged_cascade_keeps_its_state_exactly_across_a_replacement() {
    let channels = 40;
    let mut rng = Rng(5);
    let x = signal(channels, 4000, &mut rng);
    let all: Vec<usize> = (0..channels).collect();
    let mut first = FilterPlan::new(channels);
    first.filter(&all, &highpass_300()).unwrap();
    // The second plan adds a notch on channel 33 only, and an 8-section bandpass on 39
    // instead of the highpass.
    let mut second = FilterPlan::new(channels);
    second.filter(&all[..39], &highpass_300()).unwrap().filter(&[33], &notch_60()).unwrap();
    second.filter(&[39], &butter(FilterKind::Bandpass { low_hz: 300.0, high_hz: 6000.0 }, 8)).unwrap();

    let (mut switched, control) = stage(first.clone());
    let mut unswitched = stage(first).0;
    let half = x.len() / 2 / channels * channels;
    assert_eq!(switched.run(&x[..half], &[200]), unswitched.run(&x[..half], &[200]));
    control.replace(second).unwrap();
    let (a, b) = (switched.run(&x[half..], &[200]), unswitched.run(&x[half..], &[200]));
    for c in 0..channels {
        let (a, b) = (column(&a, channels, c), column(&b, channels, c));
        if c == 33 || c == 39 {
            assert_ne!(a, b, "channel {c} changed filter");
        } else {
            assert_eq!(a, b, "channel {c} kept its filter and so its state, bit for bit");
        }
    }
}

#[test]
fn a_waiting_plan_is_superseded_and_the_control_checks_the_plan_and_the_stage() {
    let channels = 2;
    let mut lowpass = FilterPlan::new(channels);
    lowpass.filter(&[0, 1], &butter(FilterKind::Lowpass { cutoff_hz: 100.0 }, 4)).unwrap();
    let (mut harness, control) = stage(FilterPlan::new(channels));
    assert_eq!(control.channels(), 2);
    // Two plans before the next block: only the newer (pass everything) takes effect.
    control.replace(lowpass).unwrap();
    control.replace(FilterPlan::new(channels)).unwrap();
    let x = [1.0, 2.0, 3.0, 4.0];
    assert_eq!(harness.run(&x, &[2]), x);
    assert_eq!(control.replace(FilterPlan::new(3)), Err(ReplaceError::ChannelCount { expected: 2, got: 3 }));
    assert!(control.collect());
    drop(harness);
    assert!(!control.collect());
    assert_eq!(control.replace(FilterPlan::new(channels)), Err(ReplaceError::StageGone));
}

#[test]
fn the_filter_stage_neither_allocates_nor_frees_while_processing_even_when_its_plan_is_replaced() {
    let channels = 64;
    let all: Vec<usize> = (0..channels).collect();
    let plan = |notch: bool| {
        let mut plan = FilterPlan::new(channels);
        plan.reference(0, &all[1..32]).unwrap().common_average(&all[32..]).unwrap();
        plan.filter(&all, &highpass_300()).unwrap();
        if notch {
            plan.filter(&all[..40], &notch_60()).unwrap();
        }
        plan
    };
    let mut rng = Rng(13);
    let x = signal(channels, 128, &mut rng);
    let (mut harness, control) = stage(plan(false));
    harness.block(&x);
    for round in 0..6 {
        // Built and handed over on this thread, outside the measured blocks.
        control.replace(plan(round % 2 == 0)).unwrap();
        for _ in 0..3 {
            let (_, calls) = harness.block(&x);
            assert_eq!(calls, 0, "round {round}: the chain allocated or freed {calls} times");
        }
    }
    assert!(control.collect());
}
