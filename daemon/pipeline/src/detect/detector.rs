//! The detector stage: threshold crossings in the filtered signal, turned into [`Spike`]s.
//!
//! # Per frame
//!
//! The common case, no crossing, is one pass over the frame's channels comparing each sample
//! against its channel's two levels (`Channels`), 16 channels at a time with a single
//! branch per 16 (the comparisons vectorize). A hit goes out of line: the channel is put in its
//! dead time (infinite levels, so the pass ignores it) and the crossing joins the pending
//! queue. Everything else that has to happen at a given frame (a dead time ending, a noise
//! sample to keep or estimate to refresh, a pending spike completing) is scheduled: the pass
//! compares the frame count with the earliest such frame and calls out only then.
//!
//! # Snippets across blocks
//!
//! `History` keeps the snippet's pre-crossing span of the previous blocks; pending spikes
//! collect their post-crossing samples as frames arrive (`PendingQueue`) and are pushed the
//! moment their last sample is seen, inside whichever block holds it.
//!
//! # What consumers may assume
//!
//! Spikes are pushed in the order of their crossing frame, channels in ascending order within
//! a frame, across all channels (every spike waits the same number of frames for its
//! snippet). A spike is pushed while the block holding its snippet's last sample (1.96 ms
//! after the crossing) is processed: at most about 2 ms of signal plus one block after its
//! crossing. Everything but parameter changes happens at fixed frames, so the spikes do not
//! depend on how the stream is cut into blocks; parameter changes apply at block boundaries
//! (a spike still waiting for its snippet then is finished with the new peak window, artifact
//! level and width limits). Frames before the stream's first one read as zero in a snippet.

use std::sync::Arc;

use super::after_lobe::AfterLobes;
use super::channels::{Channels, DeadList};
use super::control::{DetectorControl, StageEnds};
use super::history::History;
use super::noise::NoiseTracker;
use super::params::{validate_sample_rate, DetectParams, DetectParamsError};
use super::pending::{Pending, PendingQueue};
use super::shared::DetectorShared;
use super::snippet::{centre, half_peak_width, peak_index, SnippetGeometry};
use super::spike::{Spike, SNIPPET_SAMPLES, UNSORTED};
use crate::events::EventWriter;
use crate::prefault::prefaulted;
use crate::simd::with_avx2;
use crate::stage::{Stage, StageBlock};

/// Most channels a detector can run on: a spike names its channel in 16 bits.
pub const MAX_CHANNELS: usize = 1 << 16;
/// Pending spikes the queue holds per channel (a crossing waits about 2 ms for its snippet;
/// with a 1 ms dead time a channel rarely has more than two waiting).
pub const PENDING_PER_CHANNEL: usize = 4;
/// Fewest pending spikes the queue holds, whatever the channel count.
pub const MIN_PENDING: usize = 256;
/// Channels compared per branch in the scan.
const LANES: usize = 16;

/// Real-time spike detection over `block.signal` (already filtered, µV; left unchanged). See
/// the [module](self) for what consumers of its spikes may assume.
pub struct DetectorStage {
    channels: usize,
    sample_rate_hz: f64,
    geometry: SnippetGeometry,
    params: Vec<DetectParams>,
    settings: Channels,
    dead: DeadList,
    noise: NoiseTracker,
    /// Latest noise estimate per channel, NaN until the first.
    noise_uv: Box<[f32]>,
    history: History,
    pending: PendingQueue,
    after_lobes: AfterLobes,
    /// Frames seen since the start: the clock everything is scheduled on.
    frames_seen: u64,
    /// The earliest frame count at which something scheduled is due.
    next_service: u64,
    spikes: EventWriter<Spike>,
    shared: Arc<DetectorShared>,
    control: StageEnds,
}

impl DetectorStage {
    /// A detector for `channels` amplifier channels sampled at `sample_rate_hz`, with one
    /// entry of `params` per channel, pushing into `spikes`; and the control plane's handle on
    /// it. Every parameter is validated here (errors name the channel and the field). All
    /// memory the detector will use is allocated and faulted in here.
    pub fn new(
        channels: usize,
        sample_rate_hz: f64,
        params: Vec<DetectParams>,
        spikes: EventWriter<Spike>,
    ) -> Result<(DetectorStage, DetectorControl), DetectParamsError> {
        validate_sample_rate(sample_rate_hz)?;
        if channels > MAX_CHANNELS {
            return Err(DetectParamsError::new("channels", channels, format!("0 to {MAX_CHANNELS}")));
        }
        if params.len() != channels {
            return Err(DetectParamsError::new(
                "params",
                format!("{} entries", params.len()),
                format!("one entry per channel ({channels})"),
            ));
        }
        for (c, p) in params.iter().enumerate() {
            p.validate(sample_rate_hz).map_err(|e| e.on_channel(c))?;
        }
        let shared = Arc::new(DetectorShared::new(channels));
        let (control, ends) = DetectorControl::new(sample_rate_hz, params.clone(), Arc::clone(&shared));
        let geometry = SnippetGeometry::new(sample_rate_hz);
        let pending = PendingQueue::new((PENDING_PER_CHANNEL * channels).max(MIN_PENDING), geometry.len, geometry.pre);
        let mut stage = DetectorStage {
            channels,
            sample_rate_hz,
            history: History::new(channels, geometry.pre),
            geometry,
            params,
            settings: Channels::new(channels),
            dead: DeadList::new(channels),
            noise: NoiseTracker::new(channels, sample_rate_hz),
            noise_uv: prefaulted(channels, f32::NAN),
            pending,
            after_lobes: AfterLobes::new(channels, sample_rate_hz),
            frames_seen: 0,
            next_service: 0,
            spikes,
            shared,
            control: ends,
        };
        stage.configure_all();
        stage.schedule();
        Ok((stage, control))
    }

    /// Spikes that can wait for their snippet at once; crossings beyond are dropped and
    /// counted ([`DetectorShared::pending_overflows`]).
    pub fn pending_capacity(&self) -> usize {
        self.pending.capacity()
    }

    fn configure_all(&mut self) {
        for c in 0..self.channels {
            self.settings.configure(c, &self.params[c], self.noise_uv[c], self.sample_rate_hz, &self.shared);
        }
    }

    /// Takes the newest parameter table the control plane sent, if any, and sends the one it
    /// replaces back to be freed there.
    fn apply_updates(&mut self) {
        let mut changed = false;
        while let Ok(table) = self.control.updates.try_recv() {
            let old = std::mem::replace(&mut self.params, table);
            // Never full (see `control`); if the control plane is gone the table is freed here.
            let _ = self.control.returns.try_send(old);
            changed = true;
        }
        if changed {
            self.configure_all();
        }
    }

    fn schedule(&mut self) {
        let completion = self.pending.next_completion().unwrap_or(u64::MAX);
        self.next_service = self.dead.next_due.min(self.noise.next_due()).min(completion);
    }

    /// Compares frame `row` (frame count `n`, device frame `frame`) against every channel's
    /// levels.
    #[inline(always)]
    fn scan(&mut self, row: &[f32], n: u64, frame: u64) {
        let whole = row.len() - row.len() % LANES;
        let mut b = 0;
        while let Some(hit) = first_beyond(&row[..whole], &self.settings.lo, &self.settings.hi, b) {
            self.crossings(row, hit..hit + LANES, n, frame);
            b = hit + LANES;
        }
        if whole < row.len() {
            self.crossings(row, whole..row.len(), n, frame);
        }
    }

    /// Detects the crossings among `range`'s channels of `row`.
    #[inline(never)]
    fn crossings(&mut self, row: &[f32], range: std::ops::Range<usize>, n: u64, frame: u64) {
        for c in range {
            let v = row[c];
            let negative = v < self.settings.lo[c];
            if !(negative || v > self.settings.hi[c]) {
                continue;
            }
            let until = n + self.settings.shadow[c] - 1;
            self.dead.kill(&mut self.settings, c, until);
            if !self.pending.push(frame, n, c, negative) {
                self.shared.count_pending_overflow();
            }
            self.schedule();
        }
    }

    /// Does what is due at frame `i` of `block` (whose first frame is frame count `first`).
    #[inline(never)]
    fn service(&mut self, block: &[f32], first: u64, i: usize) {
        let n = first + i as u64;
        let row = &block[i * self.channels..(i + 1) * self.channels];
        if n >= self.dead.next_due {
            self.dead.revive(&mut self.settings, row, n);
        }
        if n >= self.noise.next_due() {
            let (settings, params, noise_uv, shared, rate) =
                (&mut self.settings, &self.params, &mut self.noise_uv, &*self.shared, self.sample_rate_hz);
            self.noise.on_frame(n, row, |c, noise| {
                noise_uv[c] = noise;
                shared.set_noise(c, noise);
                settings.configure(c, &params[c], noise, rate, shared);
            });
        }
        let channels = self.channels;
        let history = &self.history;
        let sample = |m: u64, c: usize| {
            if m < first {
                history.get(m, c)
            } else {
                block[(m - first) as usize * channels + c]
            }
        };
        let (geometry, settings, spikes, shared) = (&self.geometry, &self.settings, &mut self.spikes, &*self.shared);
        let lobes = &mut self.after_lobes;
        while self
            .pending
            .complete_front(n + 1, sample, |p, raw| emit(p, raw, geometry, settings, lobes, spikes, shared))
        {}
        self.schedule();
    }
}

with_avx2! {
    /// The first channel from `from` on (a multiple of [`LANES`]) of the group of `LANES`
    /// holding a sample of `row` (whole groups) beyond its channel's levels.
    fn first_beyond(row: &[f32], lo: &[f32], hi: &[f32], from: usize) -> Option<usize> {
        let (row, lo, hi) = (&row[from..], &lo[from..row.len()], &hi[from..row.len()]);
        let groups = row.chunks_exact(LANES).zip(lo.chunks_exact(LANES)).zip(hi.chunks_exact(LANES));
        for (g, ((x, lo), hi)) in groups.enumerate() {
            if beyond(x.try_into().unwrap(), lo.try_into().unwrap(), hi.try_into().unwrap()) {
                return Some(from + g * LANES);
            }
        }
        None
    }
}

/// Whether any of 16 samples is beyond its channel's levels; written without early exits so
/// it compiles to a few vector compares.
#[inline(always)]
fn beyond(x: &[f32; LANES], lo: &[f32; LANES], hi: &[f32; LANES]) -> bool {
    let mut any = false;
    for i in 0..LANES {
        any |= (x[i] < lo[i]) | (x[i] > hi[i]);
    }
    any
}

/// Turns a completed pending spike into a [`Spike`] and pushes it, or counts it as an
/// artifact.
fn emit(
    p: &Pending,
    raw: &[f32],
    geometry: &SnippetGeometry,
    settings: &Channels,
    lobes: &mut AfterLobes,
    spikes: &mut EventWriter<Spike>,
    shared: &DetectorShared,
) {
    let c = p.channel as usize;
    let (art_lo, art_hi) = (settings.artifact_lo[c], settings.artifact_hi[c]);
    if raw.iter().any(|&v| v < art_lo || v > art_hi) {
        shared.count_artifact();
        return;
    }
    let pre = geometry.pre;
    let from = pre - settings.window_pre[c].min(pre);
    let to = (pre + settings.window_post[c]).min(raw.len() - 1);
    let peak = peak_index(raw, from, to, pre, p.negative);
    if lobes.is_after_lobe(c, p.frame, raw[peak]) {
        shared.count_after_lobe();
        return;
    }
    let width = half_peak_width(raw, peak);
    let outside = width < settings.width_min[c] || width > settings.width_max[c];
    let mut spike = Spike {
        frame: p.frame,
        channel: c as u16,
        unit: UNSORTED,
        peak_uv: raw[peak],
        samples: [0.0; SNIPPET_SAMPLES],
    };
    geometry.resample(raw, &mut spike.samples);
    centre(&mut spike.samples);
    spikes.push(&spike);
    shared.count_spike(c, outside);
}

impl Stage for DetectorStage {
    fn name(&self) -> &str {
        "spike detection"
    }

    fn process(&mut self, block: &mut StageBlock<'_>) {
        self.apply_updates();
        let signal = &*block.signal;
        assert_eq!(
            signal.channels(),
            self.channels,
            "the spike detector was built for {} channels and got a block of {}",
            self.channels,
            signal.channels()
        );
        let samples = signal.samples();
        let (first, first_frame) = (self.frames_seen, signal.first_frame_index());
        if self.channels == 0 {
            return;
        }
        for (i, row) in samples.chunks_exact(self.channels).enumerate() {
            let n = first + i as u64;
            self.scan(row, n, first_frame + i as u64);
            if n >= self.next_service {
                self.service(samples, first, i);
            }
        }
        let end = first + signal.frames() as u64;
        // Spikes still waiting take this block's samples with them before it is gone.
        let (channels, history) = (self.channels, &self.history);
        self.pending.fill(end, |m, c| {
            if m < first {
                history.get(m, c)
            } else {
                samples[(m - first) as usize * channels + c]
            }
        });
        self.history.keep(first, samples);
        self.frames_seen = end;
    }
}
