//! The KPI thread and its handle.
//!
//! The thread (`ephysd-kpi`) is a cache reader like the recorder: every update period it copies
//! the most recent packet of frames out of the primary cache and drains the spike ring, off the
//! acquisition thread, which never waits for it. It computes the packet's metrics with nothing
//! locked and only then publishes them, with the running average, behind a mutex the handle
//! reads: publishing and reading are copies of small tables, and nothing here is on the
//! real-time path. Spikes are matched to a packet by device frame index; a spike the detector
//! emits after the packet was copied (its snippet still being completed) counts in the later
//! packets that cover its frame.
//!
//! The handle outlives streams: the engine points it at each new stream's cache and spike ring
//! ([`KpiHandle::attach`]) and lets go of them when the stream stops ([`KpiHandle::detach`]);
//! each attachment starts the metrics afresh. Dropping the handle stops and joins the thread.

use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use ephysd_pipeline::detect::{DetectorShared, Spike};
use ephysd_pipeline::{CacheSlots, EventReader, EventRing, FilteredCache, FrameSpan, PrimaryCache};

use super::blend::Averager;
use super::metric::{KpiMetric, METRIC_COUNT};
use super::packet::{measure, Samples, Scratch, SpikeSummary};
use super::settings::{check_lookback, check_packet_dur, check_update_period, KpiSettings};
use super::KpiError;

/// Spikes copied per read of the ring.
const SPIKE_BATCH: usize = 4096;

/// Starts KPI threads.
pub struct KpiWorker;

impl KpiWorker {
    /// Starts the KPI thread measuring `cache` (and the spikes of `spikes`, when the stream
    /// detects any) with `settings`, checked against the cache's length.
    pub fn spawn(
        cache: impl Into<FilteredCache>,
        spikes: Option<Arc<EventRing<Spike>>>,
        settings: KpiSettings,
    ) -> Result<KpiHandle, KpiError> {
        let cache = cache.into();
        settings.validate(Some(cache_seconds(&cache)))?;
        let handle = KpiWorker::idle(settings)?;
        handle.attach(cache, spikes);
        Ok(handle)
    }

    /// Starts the KPI thread with no stream to measure yet (see [`KpiHandle::attach`]).
    pub fn idle(settings: KpiSettings) -> Result<KpiHandle, KpiError> {
        settings.validate(None)?;
        let shared =
            Arc::new(Mutex::new(State { settings, generation: 0, source: None, published: Published::default() }));
        let (wake, woken) = crossbeam_channel::bounded(1);
        let thread = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("ephysd-kpi".into())
                .spawn(move || {
                    yield_to_serving_threads();
                    run(&shared, &woken)
                })
                .map_err(|e| KpiError::Thread(e.to_string()))?
        };
        Ok(KpiHandle { shared, wake: Some(wake), thread: Some(thread) })
    }
}

/// The control side of the KPI thread: settings, the stream it measures, and its results.
pub struct KpiHandle {
    shared: Arc<Mutex<State>>,
    /// Wakes the thread (a new update period); dropped to stop it.
    wake: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// Where the KPI thread stands.
#[derive(Debug, Clone, PartialEq)]
pub struct KpiStatus {
    /// Seconds of signal a packet measures.
    pub packet_dur_s: f64,
    /// Seconds between packets.
    pub update_period_s: f64,
    /// Seconds of signal the averaged values reflect.
    pub lookback_s: f64,
    /// Weight of each packet in the average on a running stream, `update_period / lookback`
    /// (at most 1).
    pub beta: f64,
    /// Processing headroom, `1 - compute time / update period`, smoothed: near 1 is idle, 0 or
    /// less is falling behind. NaN before the first packet.
    pub headroom: f64,
    /// Packets measured since the stream was attached.
    pub packets_computed: u64,
    /// Amplifier channels of the attached stream (0 when none is).
    pub channels: usize,
    /// Frames per second of the attached stream.
    pub sample_rate_hz: Option<f64>,
    /// Whether a stream is attached.
    pub attached: bool,
    /// The last packet measured.
    pub last_packet: Option<PacketSpan>,
    /// Stream frames from the first packet's start to the last packet's end: the span the
    /// averaged values were computed over.
    pub computed: Option<FrameSpan>,
    /// Frames of packets the cache's writer overwrote before they were copied.
    pub frames_lost: u64,
    /// Spikes the ring's writer overwrote before they were read.
    pub events_lost: u64,
    /// Approximate memory held: both tables and the packet copy.
    pub memory_bytes: u64,
}

/// The frames of one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketSpan {
    /// Stream frames (cache sequence numbers: frame 0 is the stream's first), `[start, end)`.
    pub frames: FrameSpan,
    /// Device frame index of its first frame.
    pub first_device_frame: u64,
    /// Device frame index of its last frame; spikes are counted in the packet when their
    /// frame lies from the first to this one.
    pub last_device_frame: u64,
}

/// Metrics of some channels: row per channel, column per metric.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsTable {
    /// Amplifier channel of each row.
    pub channels: Vec<usize>,
    /// Metric of each column.
    pub metrics: Vec<KpiMetric>,
    /// `channels.len() * metrics.len()` values, row-major.
    pub values: Vec<f64>,
    /// Stream frames the values cover: the packet's for packet values, from the first
    /// packet's start to the last one's end for averaged values; empty before any packet.
    pub span: FrameSpan,
    /// Frames per second of the stream.
    pub sample_rate_hz: f64,
    /// Whether these are averaged values rather than the last packet's.
    pub averaged: bool,
    /// Packets measured when the table was taken (0: nothing measured yet, every value is
    /// [`KpiMetric::unmeasured`]).
    pub packets: u64,
}

impl MetricsTable {
    /// The value of row `row`, column `column`.
    pub fn get(&self, row: usize, column: usize) -> f64 {
        self.values[row * self.metrics.len() + column]
    }

    /// The value of `metric` for `channel`, when the table holds both.
    pub fn value(&self, channel: usize, metric: KpiMetric) -> Option<f64> {
        let row = self.channels.iter().position(|&c| c == channel)?;
        let column = self.metrics.iter().position(|&m| m == metric)?;
        Some(self.get(row, column))
    }
}

/// Metrics are background work: the KPI thread runs at nice +10 so it never takes the cores
/// from the threads that serve requests and write recordings when the machine is busy. A
/// refusal only means it keeps the default priority.
fn yield_to_serving_threads() {
    if let Err(e) = ephysd_pipeline::placement::lower_current_thread_priority(10) {
        tracing::debug!("the KPI thread keeps the default priority: {e}");
    }
}

impl KpiHandle {
    /// Measures `cache` (a new stream) from the next update on, forgetting the previous
    /// stream's metrics. The packet duration is not checked against this cache: a packet
    /// longer than the cache measures what the cache holds.
    pub fn attach(&self, cache: impl Into<FilteredCache>, spikes: Option<Arc<EventRing<Spike>>>) {
        self.attach_with_detector(cache, spikes, None);
    }

    /// As [`attach`](Self::attach), with the spike detector whose noise estimate `NOISE_UV`
    /// and `SNR` report.
    pub fn attach_with_detector(
        &self,
        cache: impl Into<FilteredCache>,
        spikes: Option<Arc<EventRing<Spike>>>,
        detector: Option<Arc<DetectorShared>>,
    ) {
        let cache = cache.into();
        let mut state = self.lock();
        let channels = cache.current().layout().amplifier_channels;
        tracing::debug!(channels, spikes = spikes.is_some(), "KPI attached");
        state.generation += 1;
        state.source = Some(Source { cache, spikes, detector });
        state.published = Published::default();
    }

    /// Stops measuring (the stream stopped) and forgets its metrics.
    pub fn detach(&self) {
        let mut state = self.lock();
        state.generation += 1;
        state.source = None;
        state.published = Published::default();
    }

    /// The settings in force.
    pub fn settings(&self) -> KpiSettings {
        self.lock().settings
    }

    /// Sets the packet duration, from the next update on. Refused (naming `packet_dur_s` and
    /// the range) outside 0.001..=5 s or beyond the attached cache's length.
    pub fn set_packet_dur(&self, seconds: f64) -> Result<(), KpiError> {
        let mut state = self.lock();
        let cache_s = state.source.as_ref().map(|s| cache_seconds(&s.cache));
        state.settings.packet_dur_s = check_packet_dur(seconds, cache_s)?;
        tracing::info!(settings = %state.settings, "KPI packet duration set");
        Ok(())
    }

    /// Sets the update period; the next update comes one new period after the last one.
    pub fn set_update_period(&self, seconds: f64) -> Result<(), KpiError> {
        let mut state = self.lock();
        state.settings.update_period_s = check_update_period(seconds)?;
        tracing::info!(settings = %state.settings, "KPI update period set");
        drop(state);
        if let Some(wake) = &self.wake {
            // A full channel already holds a wake-up.
            let _ = wake.try_send(());
        }
        Ok(())
    }

    /// Sets the averaging window, from the next update on.
    pub fn set_lookback(&self, seconds: f64) -> Result<(), KpiError> {
        let mut state = self.lock();
        if state.settings.lookback_s != seconds {
            state.settings.lookback_s = check_lookback(seconds)?;
            tracing::info!(settings = %state.settings, "KPI lookback set");
        }
        Ok(())
    }

    /// Where the thread stands.
    pub fn status(&self) -> KpiStatus {
        let state = self.lock();
        let s = state.settings;
        let p = &state.published;
        let (channels, rate) = state.source.as_ref().map_or((0, None), |src| {
            (src.cache.current().layout().amplifier_channels, Some(src.cache.sample_rate_hz()))
        });
        let packet_frames = rate.map_or(0.0, |r| (s.packet_dur_s * r).round());
        let tables = 2 * channels * METRIC_COUNT * std::mem::size_of::<f64>();
        KpiStatus {
            packet_dur_s: s.packet_dur_s,
            update_period_s: s.update_period_s,
            lookback_s: s.lookback_s,
            beta: s.beta(),
            headroom: p.headroom,
            packets_computed: p.packets_computed,
            channels,
            sample_rate_hz: rate,
            attached: state.source.is_some(),
            last_packet: p.packet.as_ref().map(|t| t.span),
            computed: p.averaged.as_ref().map(|t| t.span.frames),
            frames_lost: p.frames_lost,
            events_lost: p.events_lost,
            memory_bytes: tables as u64 + (packet_frames * (channels * 2 + 8) as f64) as u64,
        }
    }

    /// The metrics of `channels` (amplifier channels, in the order of the rows) and `metrics`
    /// (in the order of the columns): the running averages when `averaged`, else the last
    /// packet's. Before the first packet every value is [`KpiMetric::unmeasured`]. Refused
    /// when no stream is attached or a channel is beyond the stream's.
    pub fn metrics(&self, channels: &[usize], metrics: &[KpiMetric], averaged: bool) -> Result<MetricsTable, KpiError> {
        let (table, count, rate, packets) = {
            let state = self.lock();
            let source = state.source.as_ref().ok_or(KpiError::NotStreaming)?;
            let p = &state.published;
            let table = if averaged { p.averaged.clone() } else { p.packet.clone() };
            (
                table,
                source.cache.current().layout().amplifier_channels,
                source.cache.sample_rate_hz(),
                p.packets_computed,
            )
        };
        if let Some(&index) = channels.iter().find(|&&c| c >= count) {
            return Err(KpiError::Channel { index, count });
        }
        let mut values = Vec::with_capacity(channels.len() * metrics.len());
        for &ch in channels {
            for &m in metrics {
                values.push(table.as_ref().map_or(m.unmeasured(), |t| t.values[ch * METRIC_COUNT + m.column()]));
            }
        }
        Ok(MetricsTable {
            channels: channels.to_vec(),
            metrics: metrics.to_vec(),
            values,
            span: table.map_or(FrameSpan { start: 0, end: 0 }, |t| t.span.frames),
            sample_rate_hz: rate,
            averaged,
            packets,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.shared)
    }
}

impl Drop for KpiHandle {
    fn drop(&mut self) {
        // A closed channel is the thread's signal to stop.
        self.wake.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl std::fmt::Debug for KpiHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KpiHandle").field("settings", &self.settings()).finish_non_exhaustive()
    }
}

/// What the handle and the thread share.
struct State {
    settings: KpiSettings,
    /// Bumped by every attach and detach, so results of a stream let go of are never published.
    generation: u64,
    source: Option<Source>,
    published: Published,
}

#[derive(Clone)]
struct Source {
    /// The signal measured: the filtered signal, or the primary cache's when processing is off.
    cache: FilteredCache,
    spikes: Option<Arc<EventRing<Spike>>>,
    detector: Option<Arc<DetectorShared>>,
}

/// Results of the attached stream.
struct Published {
    packet: Option<Arc<Table>>,
    averaged: Option<Arc<Table>>,
    packets_computed: u64,
    frames_lost: u64,
    events_lost: u64,
    headroom: f64,
}

impl Default for Published {
    fn default() -> Self {
        Published {
            packet: None,
            averaged: None,
            packets_computed: 0,
            frames_lost: 0,
            events_lost: 0,
            headroom: f64::NAN,
        }
    }
}

/// Every metric of every channel (`channels * METRIC_COUNT`, row-major) and what it covers.
struct Table {
    values: Vec<f64>,
    span: PacketSpan,
}

fn lock(shared: &Mutex<State>) -> MutexGuard<'_, State> {
    shared.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn cache_seconds(cache: &FilteredCache) -> f64 {
    cache.capacity_frames() as f64 / cache.sample_rate_hz()
}

/// The thread: one update per period until the handle is dropped.
fn run(shared: &Mutex<State>, woken: &Receiver<()>) {
    let mut worker = Worker::default();
    let mut last = Instant::now();
    loop {
        let period = lock(shared).settings.update_period_s;
        match woken.recv_deadline(last + Duration::from_secs_f64(period)) {
            // A new period: wait again, from the last update.
            Ok(()) => continue,
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        last = Instant::now();
        worker.update(shared);
    }
}

/// The thread's own state for the attached stream.
#[derive(Default)]
struct Worker {
    generation: u64,
    /// Cache head at the last packet: no new frames, no new packet.
    last_head: u64,
    spikes: Option<EventReader<Spike>>,
    /// Spikes read but not yet older than every future packet.
    pending: Vec<SpikeSummary>,
    in_packet: Vec<SpikeSummary>,
    frame_index: Vec<u64>,
    amplifier: Vec<i16>,
    scratch: Scratch,
    packet: Vec<f64>,
    /// The detector's noise estimate per channel at this packet.
    noise: Vec<f64>,
    averager: Averager,
    /// First stream frame of the first packet.
    started: Option<u64>,
}

impl Worker {
    fn update(&mut self, shared: &Mutex<State>) {
        let (settings, generation, source) = {
            let state = lock(shared);
            (state.settings, state.generation, state.source.clone())
        };
        if generation != self.generation {
            self.restart(generation, source.as_ref());
        }
        let Some(source) = source else { return };
        let began = Instant::now();
        // The filtered signal moves to the tap's own cache when a stage first changes it; the
        // positions are the stream's in both.
        let cache = source.cache.current();
        let Some((span, frames_lost)) = self.copy_packet(cache, settings.packet_dur_s) else { return };
        let events_lost = self.take_spikes(source.spikes.as_deref(), span);
        let channels = cache.layout().amplifier_channels;
        if let Some(d) = &source.detector {
            self.noise.clear();
            self.noise.extend((0..channels).map(|c| d.noise_uv(c).map_or(f64::NAN, f64::from)));
        }
        let samples = Samples {
            amplifier: &self.amplifier[..span.frames.len() as usize * channels],
            channels,
            sample_rate_hz: cache.sample_rate_hz(),
            detector_noise_uv: source.detector.as_ref().map(|_| self.noise.as_slice()),
        };
        measure(samples, &self.in_packet, &mut self.scratch, &mut self.packet);
        // Read now rather than with the packet duration: a window set before these frames
        // were published applies to them.
        let lookback_s = lock(shared).settings.lookback_s;
        self.averager.add(&self.packet, span.frames.end, cache.sample_rate_hz(), lookback_s);
        let started = *self.started.get_or_insert(span.frames.start);
        let packet = Arc::new(Table { values: self.packet.clone(), span });
        let averaged = Arc::new(Table {
            values: self.averager.values().to_vec(),
            span: PacketSpan { frames: FrameSpan { start: started, end: span.frames.end }, ..span },
        });
        let headroom = 1.0 - began.elapsed().as_secs_f64() / settings.update_period_s;
        let mut state = lock(shared);
        if state.generation != generation {
            return;
        }
        let p = &mut state.published;
        p.packet = Some(packet);
        p.averaged = Some(averaged);
        p.packets_computed += 1;
        p.frames_lost += frames_lost;
        p.events_lost += events_lost;
        p.headroom = if p.headroom.is_nan() { headroom } else { 0.8 * p.headroom + 0.2 * headroom };
    }

    /// A new stream (or none): everything of the previous one goes.
    fn restart(&mut self, generation: u64, source: Option<&Source>) {
        let buffers = (std::mem::take(&mut self.frame_index), std::mem::take(&mut self.amplifier));
        *self = Worker { generation, ..Worker::default() };
        (self.frame_index, self.amplifier) = buffers;
        // Spikes still held in the ring may fall in the first packet.
        self.spikes = source
            .and_then(|s| s.spikes.as_ref())
            .map(|ring| ring.reader_at(ring.head().saturating_sub(ring.capacity() as u64), SPIKE_BATCH));
    }

    /// Copies the newest `packet_dur_s` of frames; `None` when no frame came since the last
    /// packet. Returns the packet's span and the frames the writer overwrote meanwhile.
    fn copy_packet(&mut self, cache: &PrimaryCache, packet_dur_s: f64) -> Option<(PacketSpan, u64)> {
        let head = cache.head();
        if head == self.last_head {
            return None;
        }
        let wanted = (packet_dur_s * cache.sample_rate_hz()).round().max(1.0) as u64;
        let frames = wanted.min(head - cache.oldest()) as usize;
        let channels = cache.layout().amplifier_channels;
        self.frame_index.resize(frames, 0);
        self.amplifier.resize(frames * channels, 0);
        let mut reader = cache.reader_at(head - frames as u64);
        let slots = CacheSlots {
            frame_index: &mut self.frame_index[..frames],
            amplifier: &mut self.amplifier[..frames * channels],
            analog_in: &mut [],
            digital_in: &mut [],
            digital_out: &mut [],
        };
        let read = reader.read_into(cache, slots);
        self.last_head = head;
        if read.frames == 0 {
            return None;
        }
        let end = reader.position();
        let span = PacketSpan {
            frames: FrameSpan { start: end - read.frames as u64, end },
            first_device_frame: self.frame_index[0],
            last_device_frame: self.frame_index[read.frames - 1],
        };
        Some((span, read.lost))
    }

    /// Reads the spikes that arrived, keeps those a packet may still need, and picks out the
    /// packet's. Returns the spikes lost to the ring's writer.
    fn take_spikes(&mut self, ring: Option<&EventRing<Spike>>, span: PacketSpan) -> u64 {
        let mut lost = 0;
        if let (Some(ring), Some(reader)) = (ring, self.spikes.as_mut()) {
            // Bounded: a writer pushing faster than this reads must not keep the thread here.
            for _ in 0..ring.capacity() / SPIKE_BATCH + 2 {
                let pending = &mut self.pending;
                let read = reader.read(ring, |s| pending.push(SpikeSummary::from(s)));
                lost += read.lost;
                if read.events == 0 {
                    break;
                }
            }
        }
        let (first, last) = (span.first_device_frame, span.last_device_frame);
        self.pending.retain(|s| s.frame >= first);
        self.in_packet.clear();
        self.in_packet.extend(self.pending.iter().filter(|s| s.frame <= last));
        lost
    }
}
