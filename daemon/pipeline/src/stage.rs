//! Processing stages: the work the acquisition thread does between reading a block from the
//! device and publishing it into the primary cache (filters, spike detection, later
//! stimulation reflexes).
//!
//! A stage is built by the control plane with all its state (filter coefficients and
//! histories, detector thresholds, the [`EventWriter`](crate::events::EventWriter)s it emits
//! into) before the stream starts, then moved onto the acquisition thread inside the stream
//! plan. There it runs once per block and must not allocate, lock, block or log. Parameter
//! changes reach a running stage through whatever lock-free channel the stage owns, and take
//! effect at the next block boundary.
//!
//! Stages see the block twice over: `raw`, the device's samples, and `signal`, a float copy of
//! the amplifier channels in µV that filter stages transform in place and detectors read.
//! The copy is made when the first stage that needs it runs, not before: a stage that can
//! start from the 16-bit samples itself ([`Stage::takes_unconverted`], such as a filter that
//! converts as it filters) saves the chain a pass over the whole block.
//! Stages only ever change the copy. What is published and recorded is the raw block, unless
//! the chain is told to write the signal back after one of its stages
//! ([`StageChain::with_write_back`]): that is how Allego's hardware and stage-1 filters end up
//! in the recorded samples while stage 2 and the detector's own filtering never do. With no
//! filter before that point the write-back is exact: the recorded samples are the device's,
//! bit for bit.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::prefault::prefaulted;
use crate::simd::with_avx2;
use ephysd_drivers::{BlockLayout, FrameBlock, AMPLIFIER_UV_PER_UNIT, ANALOG_IN_VOLTS_PER_CODE, ANALOG_IN_ZERO_CODE};

/// One step of the real-time processing chain.
pub trait Stage: Send {
    /// Short name for logs and status (`"stage-1 filter"`, `"spike detection"`).
    fn name(&self) -> &str;

    /// Processes one block. Runs on the acquisition thread: no allocation, lock, blocking
    /// call or logging.
    fn process(&mut self, block: &mut StageBlock<'_>);

    /// Whether the stage can run on a block whose amplifier signal has not been converted
    /// yet ([`SignalBlock::is_converted`] false: the signal is still only `raw`'s samples).
    /// Such a stage leaves the amplifier signal alone or writes all of it itself
    /// ([`SignalBlock::samples_to_overwrite`]); before any other stage the chain converts it.
    fn takes_unconverted(&self) -> bool {
        false
    }
}

/// The amplifier channels of one block as floats in µV, and its analog inputs in V, both
/// frame-major like [`FrameBlock`].
#[derive(Debug, Clone, PartialEq)]
pub struct SignalBlock {
    channels: usize,
    analog_in_channels: usize,
    /// Frames filled, `<= frames_per_block`.
    frames: usize,
    /// Device frame index of the first filled frame.
    first_frame_index: u64,
    samples: Vec<f32>,
    analog_in: Vec<f32>,
    /// A stage asked to change the samples since they last matched the block's (when it was
    /// filled, or when they were written back into it).
    modified: bool,
    /// `samples` hold the block's amplifier signal; until then it is only in the raw block
    /// (see [`Stage::takes_unconverted`]).
    converted: bool,
}

impl SignalBlock {
    /// A zeroed signal block for `layout`. Allocated once per stream.
    pub fn new(layout: BlockLayout) -> Self {
        SignalBlock {
            channels: layout.amplifier_channels,
            analog_in_channels: layout.analog_in_channels,
            frames: 0,
            first_frame_index: 0,
            samples: prefaulted(layout.frames_per_block * layout.amplifier_channels, 0.0).into_vec(),
            analog_in: prefaulted(layout.frames_per_block * layout.analog_in_channels, 0.0).into_vec(),
            modified: false,
            converted: true,
        }
    }

    /// Amplifier channels per frame.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Frames filled in this block.
    pub fn frames(&self) -> usize {
        self.frames
    }

    /// Device frame index of frame 0 of this block.
    pub fn first_frame_index(&self) -> u64 {
        self.first_frame_index
    }

    /// The filled samples, frame-major, µV. Only for a converted block (every stage but one
    /// that [takes unconverted](Stage::takes_unconverted) blocks sees one).
    pub fn samples(&self) -> &[f32] {
        debug_assert!(self.converted, "the amplifier signal was read before it was converted");
        &self.samples[..self.frames * self.channels]
    }

    /// The filled samples, frame-major, µV, for stages that transform them in place (which
    /// marks the block [modified](Self::is_modified)). Only for a converted block.
    pub fn samples_mut(&mut self) -> &mut [f32] {
        debug_assert!(self.converted, "the amplifier signal was changed before it was converted");
        self.modified = true;
        &mut self.samples[..self.frames * self.channels]
    }

    /// Whether the samples hold the amplifier signal. While they do not, the signal is the raw
    /// block's samples in µV, exactly what converting them would give.
    pub fn is_converted(&self) -> bool {
        self.converted
    }

    /// Room for the filled samples, for a stage that writes every one of them (from the raw
    /// block's samples, say, when the block is not converted yet). Marks the block converted
    /// and [modified](Self::is_modified).
    pub fn samples_to_overwrite(&mut self) -> &mut [f32] {
        self.converted = true;
        self.modified = true;
        &mut self.samples[..self.frames * self.channels]
    }

    /// Whether a stage has asked to change the samples or analog inputs since they last matched
    /// the block's own (when the block was filled, or written back): while they match, the
    /// block's 16-bit samples already are the signal, rounded, so a stage that wants it in
    /// 16 bits can copy them instead of converting, and a write-back has nothing to do.
    pub fn is_modified(&self) -> bool {
        self.modified
    }

    /// Board analog inputs per frame.
    pub fn analog_in_channels(&self) -> usize {
        self.analog_in_channels
    }

    /// The filled analog inputs, frame-major, V.
    pub fn analog_in(&self) -> &[f32] {
        &self.analog_in[..self.frames * self.analog_in_channels]
    }

    /// The filled analog inputs, frame-major, V, for stages that transform them in place
    /// (which marks the block [modified](Self::is_modified)).
    pub fn analog_in_mut(&mut self) -> &mut [f32] {
        self.modified = true;
        &mut self.analog_in[..self.frames * self.analog_in_channels]
    }

    /// Writes the samples back into `raw` (the block they were filled from): amplifier
    /// samples rounded to the amplifier's unit, unless never converted (then they are `raw`'s
    /// own already), and analog-input codes; returns how many were beyond the 16-bit range
    /// (stored at its end).
    fn store_into(&self, raw: &mut FrameBlock) -> u64 {
        let n = self.frames * self.channels;
        let saturated = if self.converted { uv_to_units(&mut raw.amplifier[..n], &self.samples[..n]) } else { 0 };
        u64::from(saturated) + self.store_analog_in(&mut raw.analog_in)
    }

    /// Writes the filled frames of the block filled from `raw` into frame-major amplifier
    /// samples (rounded to the amplifier's unit; `raw`'s own if never converted) and
    /// analog-input codes; returns how many values were beyond the 16-bit range (stored at
    /// its end). `amplifier` and `analog_in` hold at least the filled frames.
    pub(crate) fn store_lanes(&self, raw: &FrameBlock, amplifier: &mut [i16], analog_in: &mut [u16]) -> u64 {
        let n = self.frames * self.channels;
        let saturated = if self.converted {
            uv_to_units(&mut amplifier[..n], &self.samples[..n])
        } else {
            amplifier[..n].copy_from_slice(&raw.amplifier[..n]);
            0
        };
        u64::from(saturated) + self.store_analog_in(analog_in)
    }

    /// Writes the filled frames' analog inputs as codes; returns how many were beyond the
    /// code range (stored at its end).
    fn store_analog_in(&self, analog_in: &mut [u16]) -> u64 {
        let mut saturated = 0u32;
        let n = self.frames * self.analog_in_channels;
        for (out, &volts) in analog_in[..n].iter_mut().zip(&self.analog_in[..n]) {
            let (code, clipped) = volts_to_code(volts);
            saturated += u32::from(clipped);
            *out = code;
        }
        u64::from(saturated)
    }

    /// Takes `raw` as the block's: its frames, its analog inputs converted to volts, and its
    /// amplifier samples as the signal, to be converted by [`convert`](Self::convert) when a
    /// stage needs them as floats.
    fn fill_from(&mut self, raw: &FrameBlock) {
        self.frames = raw.frames;
        self.modified = false;
        self.converted = false;
        self.first_frame_index = raw.frame_index.first().copied().unwrap_or(0);
        let n = raw.frames * self.analog_in_channels;
        for (out, &code) in self.analog_in.iter_mut().zip(&raw.analog_in[..n]) {
            *out = code_to_volts(code);
        }
    }

    /// Converts the amplifier signal from `raw` (the block it was filled from) to µV, unless
    /// that is done already.
    fn convert(&mut self, raw: &FrameBlock) {
        if !self.converted {
            units_to_uv(&mut self.samples, raw.amplifier_filled());
            self.converted = true;
        }
    }
}

/// µV per amplifier unit, as the stages compute in it: a sample in µV is
/// `f32::from(units) * UV_PER_UNIT`, wherever it is converted.
pub(crate) const UV_PER_UNIT: f32 = AMPLIFIER_UV_PER_UNIT as f32;

/// `out[i] = f32::from(units[i]) * scale`, as many as both hold: the one conversion of 16-bit
/// samples to floats, wherever it happens (here, and as the filter bank loads its input).
#[inline(always)]
pub(crate) fn scale_units(out: &mut [f32], units: &[i16], scale: f32) {
    for (o, &u) in out.iter_mut().zip(units) {
        *o = f32::from(u) * scale;
    }
}

with_avx2! {
    /// Amplifier samples in µV (as many as both slices hold).
    fn units_to_uv(out: &mut [f32], units: &[i16]) {
        scale_units(out, units, UV_PER_UNIT);
    }
}

with_avx2! {
    /// µV rounded to the nearest amplifier unit (as many as both slices hold); returns how
    /// many were beyond the 16-bit range, stored at its end.
    fn uv_to_units(out: &mut [i16], uv: &[f32]) -> u32 {
        let units_per_uv = (1.0 / AMPLIFIER_UV_PER_UNIT) as f32;
        // Counted in 32 bits inside the loop (a block has far fewer than 2^32 values), which
        // keeps it vectorized.
        let mut saturated = 0u32;
        for (out, &uv) in out.iter_mut().zip(uv) {
            let units = nearest_integer(uv * units_per_uv);
            let stored = units.clamp(i32::from(i16::MIN), i32::from(i16::MAX));
            saturated += u32::from(stored != units);
            *out = stored as i16;
        }
        saturated
    }
}

/// An analog-input code in volts, as the stages see it.
#[inline]
pub(crate) fn code_to_volts(code: u16) -> f32 {
    (i32::from(code) - i32::from(ANALOG_IN_ZERO_CODE)) as f32 * ANALOG_IN_VOLTS_PER_CODE as f32
}

/// Volts as the nearest analog-input code, and whether it was beyond the code range (then
/// stored at its end). Exact for every value [`code_to_volts`] gives.
#[inline]
pub(crate) fn volts_to_code(volts: f32) -> (u16, bool) {
    let code = nearest_integer(volts / ANALOG_IN_VOLTS_PER_CODE as f32) + i32::from(ANALOG_IN_ZERO_CODE);
    let stored = code.clamp(0, i32::from(u16::MAX));
    (stored as u16, stored != code)
}

/// `x` rounded to the nearest integer (ties to even), limited to ±2^20; NaN gives -2^20.
///
/// Written so that loops over blocks vectorize: `f32::round` is a call into libm per value on
/// the baseline x86-64 target, and a saturating `as` adds checks per value. Adding and
/// subtracting 1.5 × 2^23 rounds any |x| < 2^22 in the default rounding mode, and the bound
/// makes the conversion to an integer exact. Anything beyond the bound is far beyond the 16
/// bits it ends up in, so callers still see it as out of range.
#[inline(always)]
// `clamp` would keep NaN, which the conversion below must never see.
#[allow(clippy::manual_clamp)]
pub(crate) fn nearest_integer(x: f32) -> i32 {
    const BOUND: f32 = 1_048_576.0;
    const ROUNDER: f32 = 12_582_912.0;
    // `max` returns its other operand for NaN, so NaN becomes -BOUND here.
    let bounded = x.max(-BOUND).min(BOUND);
    let rounded = (bounded + ROUNDER) - ROUNDER;
    // SAFETY: `rounded` is an integer-valued finite float within ±2^20, representable in i32.
    unsafe { rounded.to_int_unchecked::<i32>() }
}

/// What a stage gets for one block.
pub struct StageBlock<'a> {
    /// The block as the device delivered it (after the write-back, for the stages that follow
    /// it: what is published and recorded).
    pub raw: &'a FrameBlock,
    /// The amplifier channels in µV, as transformed by the stages before this one.
    pub signal: &'a mut SignalBlock,
}

/// The stages of one stream, in order, with the signal block they share.
pub struct StageChain {
    stages: Vec<Box<dyn Stage>>,
    signal: SignalBlock,
    write_back: Option<WriteBack>,
}

/// Where the chain writes its signal back into the published block.
struct WriteBack {
    /// Stages run before the write-back.
    after: usize,
    /// Samples beyond the 16-bit range, stored at its end.
    saturated: Arc<AtomicU64>,
}

impl StageChain {
    /// A chain running `stages` in order over blocks of `layout`.
    pub fn new(layout: BlockLayout, stages: Vec<Box<dyn Stage>>) -> Self {
        // No stages, no signal: a bare stream pays nothing for the seam.
        let signal = if stages.is_empty() {
            SignalBlock::new(BlockLayout { frames_per_block: 0, ..layout })
        } else {
            SignalBlock::new(layout)
        };
        StageChain { stages, signal, write_back: None }
    }

    /// Writes the signal as the first `after` stages leave it back into the block's amplifier
    /// samples (rounded to the amplifier's unit), so it is what gets published and recorded.
    /// Values beyond the 16-bit range are stored at its end and counted in `saturated`.
    pub fn with_write_back(mut self, after: usize, saturated: Arc<AtomicU64>) -> Self {
        if !self.stages.is_empty() {
            self.write_back = Some(WriteBack { after: after.min(self.stages.len()), saturated });
        }
        self
    }

    /// Names of the stages, in the order they run.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.stages.iter().map(|s| s.name())
    }

    /// Whether the chain has no stages.
    pub fn is_empty(&self) -> bool {
        self.stages.is_empty()
    }

    /// Runs every stage over `raw`, in order, leaving `raw` as it is (a chain made
    /// [`with_write_back`](Self::with_write_back) writes back only through
    /// [`run_block`](Self::run_block)). Does nothing for an empty chain.
    pub fn run(&mut self, raw: &FrameBlock) {
        if self.stages.is_empty() {
            return;
        }
        self.signal.fill_from(raw);
        for stage in &mut self.stages {
            run_stage(stage.as_mut(), raw, &mut self.signal);
        }
    }

    /// Runs every stage over `block`, writing the signal back into it where the chain says
    /// (see [`with_write_back`](Self::with_write_back)). What the acquisition thread calls.
    pub fn run_block(&mut self, block: &mut FrameBlock) {
        let Some(after) = self.write_back.as_ref().map(|w| w.after) else {
            return self.run(block);
        };
        self.signal.fill_from(block);
        for stage in &mut self.stages[..after] {
            run_stage(stage.as_mut(), block, &mut self.signal);
        }
        // Nothing changed the signal: the block already holds it, bit for bit.
        let saturated = if self.signal.is_modified() { self.signal.store_into(block) } else { 0 };
        self.signal.modified = false;
        if saturated > 0 {
            if let Some(w) = &self.write_back {
                w.saturated.fetch_add(saturated, Ordering::Relaxed);
            }
        }
        for stage in &mut self.stages[after..] {
            run_stage(stage.as_mut(), block, &mut self.signal);
        }
    }
}

/// Runs `stage` over `raw` and the signal, converting the signal first unless the stage takes
/// it unconverted.
#[inline]
fn run_stage(stage: &mut dyn Stage, raw: &FrameBlock, signal: &mut SignalBlock) {
    if !stage.takes_unconverted() {
        signal.convert(raw);
    }
    stage.process(&mut StageBlock { raw, signal });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Adds a constant to the signal: a stand-in for a filter.
    struct Offset(f32);

    impl Stage for Offset {
        fn name(&self) -> &str {
            "offset"
        }
        fn process(&mut self, block: &mut StageBlock<'_>) {
            block.signal.samples_mut().iter_mut().for_each(|v| *v += self.0);
        }
    }

    /// Remembers what it saw last.
    struct Probe(std::sync::Arc<std::sync::Mutex<Vec<f32>>>);

    impl Stage for Probe {
        fn name(&self) -> &str {
            "probe"
        }
        fn process(&mut self, block: &mut StageBlock<'_>) {
            *self.0.lock().unwrap() = block.signal.samples().to_vec();
        }
    }

    #[test]
    fn stages_run_in_order_on_a_microvolt_copy_and_leave_the_raw_block_alone() {
        let layout = BlockLayout { amplifier_channels: 2, aux_channels: 0, analog_in_channels: 0, frames_per_block: 4 };
        let mut raw = FrameBlock::new(layout);
        raw.frames = 3;
        raw.frame_index[..3].copy_from_slice(&[100, 101, 102]);
        raw.amplifier[..6].copy_from_slice(&[10, -10, 20, -20, 0, 1000]);
        let before = raw.clone();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut chain = StageChain::new(layout, vec![Box::new(Offset(1.0)), Box::new(Probe(seen.clone()))]);
        assert_eq!(chain.names().collect::<Vec<_>>(), ["offset", "probe"]);
        chain.run(&raw);
        let expected: Vec<f32> = [10, -10, 20, -20, 0, 1000].iter().map(|&v| v as f32 * 0.195 + 1.0).collect();
        assert_eq!(*seen.lock().unwrap(), expected);
        assert_eq!(raw, before);
    }

    #[test]
    fn a_filter_converting_as_it_filters_gives_what_a_converted_block_gives() {
        use crate::dsp::{FilterPlan, FilterStage, Sos};
        let layout =
            BlockLayout { amplifier_channels: 40, aux_channels: 0, analog_in_channels: 0, frames_per_block: 64 };
        let mut raw = FrameBlock::new(layout);
        raw.frames = 64;
        for (i, v) in raw.amplifier.iter_mut().enumerate() {
            *v = (i.wrapping_mul(7919) % 65536) as u16 as i16;
        }
        let sos = Sos::new(vec![[0.9, -1.8, 0.9, 1.0, -1.7, 0.75]]).unwrap();
        let filter = || {
            let mut plan = FilterPlan::new(40);
            plan.filter(&(0..40).collect::<Vec<_>>(), &sos).unwrap();
            Box::new(FilterStage::new("filter", plan).0)
        };
        let (fused, converted) =
            (Arc::new(std::sync::Mutex::new(Vec::new())), Arc::new(std::sync::Mutex::new(Vec::new())));
        // The filter first takes the block unconverted; after a stage that needs the signal
        // (a probe), it gets it converted.
        let mut first = StageChain::new(layout, vec![filter(), Box::new(Probe(fused.clone()))]);
        let mut second = StageChain::new(
            layout,
            vec![
                Box::new(Probe(Arc::new(std::sync::Mutex::new(Vec::new())))),
                filter(),
                Box::new(Probe(converted.clone())),
            ],
        );
        for _ in 0..3 {
            first.run(&raw);
            second.run(&raw);
            let (a, b) = (fused.lock().unwrap().clone(), converted.lock().unwrap().clone());
            assert_eq!(
                a.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                b.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            );
            assert!(
                a.iter().zip(&raw.amplifier).any(|(&f, &u)| f != f32::from(u) * UV_PER_UNIT),
                "the signal was filtered"
            );
        }
    }

    #[test]
    fn nearest_integer_rounds_bounds_and_takes_nan_out_of_range() {
        assert_eq!(nearest_integer(2.4), 2);
        assert_eq!(nearest_integer(-2.6), -3);
        assert_eq!(nearest_integer(2.5), 2, "ties to even");
        assert_eq!(nearest_integer(1e30), 1 << 20);
        assert_eq!(nearest_integer(f32::NEG_INFINITY), -(1 << 20));
        assert_eq!(nearest_integer(f32::NAN), -(1 << 20));
    }

    #[test]
    fn amplifier_samples_survive_the_trip_through_microvolts_and_nan_is_counted() {
        let layout = BlockLayout { amplifier_channels: 1, aux_channels: 0, analog_in_channels: 0, frames_per_block: 1 };
        let mut signal = SignalBlock::new(layout);
        let mut raw = FrameBlock::new(layout);
        raw.frames = 1;
        for v in i16::MIN..=i16::MAX {
            raw.amplifier[0] = v;
            signal.fill_from(&raw);
            signal.convert(&raw);
            let mut out = [0i16];
            assert_eq!(signal.store_lanes(&raw, &mut out, &mut []), 0);
            assert_eq!(out[0], v);
        }
        signal.samples_mut()[0] = f32::NAN;
        let mut out = [0i16];
        assert_eq!(signal.store_lanes(&raw, &mut out, &mut []), 1, "a NaN is counted");
        assert_eq!(out[0], i16::MIN);
    }

    #[test]
    fn analog_input_codes_survive_the_trip_through_volts() {
        for code in 0..=u16::MAX {
            assert_eq!(volts_to_code(code_to_volts(code)), (code, false), "code {code}");
        }
        assert_eq!(volts_to_code(11.0), (u16::MAX, true));
        assert_eq!(volts_to_code(-11.0), (0, true));
    }

    #[test]
    fn a_write_back_publishes_the_signal_after_its_stages_and_is_exact_without_filters() {
        let layout = BlockLayout { amplifier_channels: 2, aux_channels: 0, analog_in_channels: 0, frames_per_block: 4 };
        let mut raw = FrameBlock::new(layout);
        raw.frames = 4;
        raw.amplifier.copy_from_slice(&[10, -10, 32767, -32768, 0, 1, 12345, -7]);
        let untouched = raw.clone();
        let saturated = Arc::new(AtomicU64::new(0));
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        // Nothing before the write-back: the block comes out bit for bit as it went in.
        let mut chain = StageChain::new(layout, vec![Box::new(Offset(1.0)), Box::new(Probe(seen.clone()))])
            .with_write_back(0, Arc::clone(&saturated));
        chain.run_block(&mut raw);
        assert_eq!(raw, untouched);
        // An offset of 0.195 µV before it: one unit more, the top sample saturating.
        let mut chain =
            StageChain::new(layout, vec![Box::new(Offset(0.195))]).with_write_back(1, Arc::clone(&saturated));
        chain.run_block(&mut raw);
        assert_eq!(raw.amplifier, [11, -9, 32767, -32767, 1, 2, 12346, -6]);
        assert_eq!(saturated.load(Ordering::Relaxed), 1);
    }
}
