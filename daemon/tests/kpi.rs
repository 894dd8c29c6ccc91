//! The KPI worker through its public API: a primary cache and a spike ring filled with known
//! frames and spikes, the worker measuring them on its own thread, and every metric checked
//! against a plain f64 computation over exactly the frames it reports having measured.
//!
//! Waits are bounded and generous (the machine is shared); nothing here asserts on timing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ephysd::kpi::{KpiError, KpiHandle, KpiMetric, KpiSettings, KpiWorker, MetricsTable, METRIC_COUNT};
use ephysd_drivers::{BlockLayout, FrameBlock, AMPLIFIER_UV_PER_UNIT};
use ephysd_pipeline::detect::{Spike, SNIPPET_SAMPLES, UNSORTED};
use ephysd_pipeline::{CacheWriter, EventRing, EventWriter, FrameSpan, PrimaryCache};

const RATE: f64 = 10_000.0;
/// Device frame index of stream frame 0: spikes are matched by device frame, not by position.
const DEVICE_OFFSET: u64 = 10_000;

/// A cache of `channels` and its writer, with the samples published so far kept for checking.
struct Stream {
    cache: Arc<PrimaryCache>,
    writer: CacheWriter,
    /// Every published frame, frame-major, raw units.
    samples: Vec<i16>,
    channels: usize,
    rng: u64,
}

impl Stream {
    fn new(channels: usize, capacity_frames: usize) -> Self {
        let layout =
            BlockLayout { amplifier_channels: channels, aux_channels: 1, analog_in_channels: 1, frames_per_block: 64 };
        let (cache, writer) = PrimaryCache::new(layout, capacity_frames, RATE);
        Stream { cache, writer, samples: Vec::new(), channels, rng: 0x2545_f491_4f6c_dd1d }
    }

    /// Publishes `frames` frames in one block (so the worker sees all of them or none): noise
    /// of ±`spread` units around a different offset per channel.
    fn publish(&mut self, frames: usize, spread: i64) {
        let layout = BlockLayout { frames_per_block: frames, ..self.cache.layout() };
        let mut block = FrameBlock::new(layout);
        block.frames = frames;
        let first = (self.samples.len() / self.channels) as u64;
        for f in 0..frames {
            block.frame_index[f] = DEVICE_OFFSET + first + f as u64;
            for c in 0..self.channels {
                self.rng = self.rng.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                let noise = ((self.rng >> 33) % (2 * spread as u64 + 1)) as i64 - spread;
                let offset = [0, 700, -450, 2000, -3][c % 5];
                block.amplifier[f * self.channels + c] = (offset + noise) as i16;
            }
        }
        self.samples.extend_from_slice(&block.amplifier);
        self.writer.publish(&block);
    }

    /// Channel `ch` over stream frames `span`, in µV.
    fn uv(&self, ch: usize, span: FrameSpan) -> Vec<f64> {
        (span.start..span.end)
            .map(|f| self.samples[f as usize * self.channels + ch] as f64 * AMPLIFIER_UV_PER_UNIT)
            .collect()
    }
}

/// A spike at device frame `frame` whose snippet spans `low..=high` µV.
fn spike(frame: u64, channel: u16, peak_uv: f32, low: f32, high: f32) -> Spike {
    let mut samples = [0.0f32; SNIPPET_SAMPLES];
    samples[20] = low;
    samples[40] = high;
    Spike { frame, channel, unit: UNSORTED, peak_uv, samples }
}

fn wait_for_packets(handle: &KpiHandle, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while handle.status().packets_computed < n {
        assert!(Instant::now() < deadline, "the worker did not measure {n} packets: {:?}", handle.status());
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Every metric of one channel, straight from the definitions.
fn expected(x: &[f64], spikes: &[Spike]) -> [f64; METRIC_COUNT] {
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    let min = x.iter().copied().fold(f64::INFINITY, f64::min);
    let max = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let sd = (x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
    let rms = (x.iter().map(|v| v * v).sum::<f64>() / n).sqrt();
    let noise = median(&mut x.iter().map(|v| (v - mean).abs()).collect::<Vec<_>>()) / 0.6745;
    let dur = n / RATE;
    let peaks: Vec<f64> = spikes.iter().map(|s| s.peak_uv as f64).collect();
    let p2p: Vec<f64> = spikes
        .iter()
        .map(|s| {
            let hi = s.samples.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
            let lo = s.samples.iter().copied().fold(f32::INFINITY, f32::min) as f64;
            hi - lo
        })
        .collect();
    let k = spikes.len() as f64;
    let mut e = [0.0; METRIC_COUNT];
    let mut set = |m: KpiMetric, v: f64| e[m.column()] = v;
    set(KpiMetric::NumPts, n);
    set(KpiMetric::NumPtsIsi, n);
    set(KpiMetric::DurSec, dur);
    set(KpiMetric::Mean, mean);
    set(KpiMetric::Min, min);
    set(KpiMetric::Max, max);
    set(KpiMetric::MaxAbs, min.abs().max(max.abs()));
    set(KpiMetric::MaxMinDiffAbs, max - min);
    set(KpiMetric::Sd, sd);
    set(KpiMetric::Rms, rms);
    set(KpiMetric::NoiseUv, noise);
    set(KpiMetric::EventRate, k / dur);
    if spikes.is_empty() {
        set(KpiMetric::Snr, f64::NAN);
        set(KpiMetric::EventMin, f64::INFINITY);
        for m in [
            KpiMetric::EventMax,
            KpiMetric::EventMaxAbs,
            KpiMetric::EventMaxMinDiffAbs,
            KpiMetric::EventMeanMaxAbs,
            KpiMetric::EventMeanMaxMinDiffAbs,
        ] {
            set(m, f64::NEG_INFINITY);
        }
    } else {
        let mean_abs = peaks.iter().map(|p| p.abs()).sum::<f64>() / k;
        set(KpiMetric::EventMax, peaks.iter().copied().fold(f64::NEG_INFINITY, f64::max));
        set(KpiMetric::EventMin, peaks.iter().copied().fold(f64::INFINITY, f64::min));
        set(KpiMetric::EventMaxAbs, peaks.iter().map(|p| p.abs()).fold(f64::NEG_INFINITY, f64::max));
        set(KpiMetric::EventMaxMinDiffAbs, p2p.iter().copied().fold(f64::NEG_INFINITY, f64::max));
        set(KpiMetric::EventMeanMaxAbs, mean_abs);
        set(KpiMetric::EventMeanMaxMinDiffAbs, p2p.iter().sum::<f64>() / k);
        set(KpiMetric::Snr, mean_abs / noise);
    }
    e
}

fn assert_close(got: f64, want: f64, what: &str) {
    let same = (got.is_nan() && want.is_nan())
        || got == want
        || (got.is_finite() && want.is_finite() && (got - want).abs() <= 1e-9 * want.abs().max(1.0));
    assert!(same, "{what}: got {got}, want {want}");
}

fn table(handle: &KpiHandle, channels: usize, averaged: bool) -> MetricsTable {
    let all: Vec<usize> = (0..channels).collect();
    handle.metrics(&all, &KpiMetric::ALL, averaged).unwrap()
}

fn settings(packet_dur_s: f64, lookback_s: f64) -> KpiSettings {
    KpiSettings { packet_dur_s, update_period_s: 0.01, lookback_s }
}

fn ring(spikes: &[Spike], capacity: usize) -> (EventWriter<Spike>, Arc<EventRing<Spike>>) {
    let (mut writer, ring) = EventRing::new(capacity);
    for s in spikes {
        writer.push(s);
    }
    (writer, ring)
}

#[test]
fn every_metric_of_a_packet_matches_its_definition_over_the_frames_reported() {
    let mut stream = Stream::new(4, 20_000);
    stream.publish(5000, 300);
    // The packet is the last 0.1 s: stream frames 4000..5000, device frames 14000..=14999.
    let spikes = [
        spike(14_000, 0, -120.0, -130.0, 40.0), // the packet's first frame: counted
        spike(14_500, 0, 80.0, -20.0, 95.5),
        spike(14_999, 0, -60.5, -70.0, 10.0),  // its last frame: counted
        spike(13_999, 1, -500.0, -500.0, 0.0), // just before: not counted
        spike(15_000, 2, -500.0, -500.0, 0.0), // just after: not counted
        spike(14_250, 2, -90.0, -95.0, 30.0),
        spike(14_260, 9, -90.0, -95.0, 30.0), // a channel the stream does not have
    ];
    let (_spike_writer, spike_ring) = ring(&spikes, 64);
    let handle = KpiWorker::spawn(Arc::clone(&stream.cache), Some(spike_ring), settings(0.1, 1.0)).unwrap();
    wait_for_packets(&handle, 1);

    let status = handle.status();
    let packet = status.last_packet.expect("a packet was measured");
    assert_eq!(packet.frames, FrameSpan { start: 4000, end: 5000 });
    assert_eq!((packet.first_device_frame, packet.last_device_frame), (14_000, 14_999));
    assert_eq!((status.channels, status.sample_rate_hz, status.attached), (4, Some(RATE), true));
    assert_eq!((status.frames_lost, status.events_lost), (0, 0));
    assert_eq!(status.computed, Some(FrameSpan { start: 4000, end: 5000 }));
    assert_close(status.beta, 0.01, "beta = update period / lookback");
    assert!(status.headroom <= 1.0, "{}", status.headroom);

    let got = table(&handle, 4, false);
    assert_eq!((got.span, got.averaged, got.packets), (packet.frames, false, 1));
    for ch in 0..4 {
        let in_packet: Vec<Spike> = spikes[..]
            .iter()
            .filter(|s| usize::from(s.channel) == ch && (14_000..=14_999).contains(&s.frame))
            .copied()
            .collect();
        let want = expected(&stream.uv(ch, packet.frames), &in_packet);
        for m in KpiMetric::ALL {
            assert_close(got.value(ch, m).unwrap(), want[m.column()], &format!("channel {ch} {m}"));
        }
    }
    assert_eq!(got.value(0, KpiMetric::EventRate), Some(30.0), "3 spikes in 0.1 s");
    assert_eq!(got.value(3, KpiMetric::EventMin), Some(f64::INFINITY), "no spikes: +inf");

    // The first packet is the average as it is.
    let averaged = table(&handle, 4, true);
    assert_eq!((averaged.span, averaged.averaged), (packet.frames, true));
    for (a, p) in averaged.values.iter().zip(&got.values) {
        assert!(a == p || (a.is_nan() && p.is_nan()), "{a} != {p}");
    }
    // Rows and columns come in the order asked, repeats kept.
    let picked = handle.metrics(&[2, 0, 2], &[KpiMetric::Rms, KpiMetric::Mean], false).unwrap();
    assert_eq!((picked.channels.len(), picked.metrics.len(), picked.values.len()), (3, 2, 6));
    assert_eq!(picked.get(1, 1), got.value(0, KpiMetric::Mean).unwrap());
    assert_eq!(picked.get(2, 0), got.value(2, KpiMetric::Rms).unwrap());
}

#[test]
fn packets_blend_into_the_average_with_envelopes_for_extrema() {
    let mut stream = Stream::new(3, 40_000);
    stream.publish(5000, 100);
    // Channel 0 spikes in both packets, channel 1 only in the first, channel 2 only in the
    // second.
    let first = [spike(14_950, 0, -50.0, -60.0, 20.0), spike(14_960, 1, -70.0, -75.0, 15.0)];
    let (mut spike_writer, spike_ring) = ring(&first, 64);
    let handle = KpiWorker::spawn(Arc::clone(&stream.cache), Some(spike_ring), settings(0.1, 1.0)).unwrap();
    wait_for_packets(&handle, 1);
    let p1 = table(&handle, 3, false);

    for s in [spike(16_990, 0, -150.0, -160.0, 60.0), spike(16_995, 2, 45.0, -5.0, 50.0)] {
        spike_writer.push(&s);
    }
    stream.publish(2000, 900); // louder: the maxima rise, the minima fall
    wait_for_packets(&handle, 2);
    let p2 = table(&handle, 3, false);
    let avg = table(&handle, 3, true);
    assert_eq!((p2.packets, avg.packets), (2, 2));
    assert_eq!(p2.span, FrameSpan { start: 6000, end: 7000 });
    assert_eq!(avg.span, FrameSpan { start: 4000, end: 7000 }, "the span averaged over");
    // 2000 frames of signal since the previous packet, a 1 s window: beta = 0.2.
    let beta = 2000.0 / RATE / 1.0;
    for ch in 0..3 {
        for m in KpiMetric::ALL {
            let (a, b) = (p1.value(ch, m).unwrap(), p2.value(ch, m).unwrap());
            let ema = beta * b + (1.0 - beta) * a;
            let want = if !b.is_finite() {
                a // no spikes in this packet but some within the window: held
            } else if !a.is_finite() {
                b // first spikes: taken as they are
            } else {
                match m {
                    KpiMetric::Max
                    | KpiMetric::MaxAbs
                    | KpiMetric::MaxMinDiffAbs
                    | KpiMetric::EventMax
                    | KpiMetric::EventMaxAbs
                    | KpiMetric::EventMaxMinDiffAbs => ema.max(b),
                    KpiMetric::Min | KpiMetric::EventMin => ema.min(b),
                    _ => ema,
                }
            };
            assert_close(avg.value(ch, m).unwrap(), want, &format!("averaged channel {ch} {m}"));
        }
    }
    // The envelopes moved at once with the louder packet; the mean only by beta.
    assert_eq!(avg.value(0, KpiMetric::Max), p2.value(0, KpiMetric::Max));
    assert_eq!(avg.value(0, KpiMetric::Min), p2.value(0, KpiMetric::Min));
    assert_eq!(avg.value(1, KpiMetric::EventMin), Some(-70.0), "held from the first packet");
    assert_eq!(avg.value(2, KpiMetric::EventMax), Some(45.0), "first spikes taken as they are");

    // A window shorter than the signal between packets: the next packet replaces the average,
    // and channels without spikes for a whole window read "no events" again.
    handle.set_lookback(0.1).unwrap();
    stream.publish(2000, 100);
    wait_for_packets(&handle, 3);
    let p3 = table(&handle, 3, false);
    let avg = table(&handle, 3, true);
    for (a, p) in avg.values.iter().zip(&p3.values) {
        assert!(a == p || (a.is_nan() && p.is_nan()), "{a} != {p}");
    }
    assert_eq!(avg.value(0, KpiMetric::EventMin), Some(f64::INFINITY));
    assert!(avg.value(0, KpiMetric::Snr).unwrap().is_nan());
    assert_eq!(avg.value(0, KpiMetric::EventRate), Some(0.0));
}

#[test]
fn settings_are_checked_naming_the_setting_and_the_range() {
    let mut stream = Stream::new(2, 10_000); // a 1 s cache, empty until the settings are made
    let err = |r: Result<KpiHandle, KpiError>| r.expect_err("refused").to_string();
    let e = err(KpiWorker::spawn(Arc::clone(&stream.cache), None, settings(0.0, 1.0)));
    assert!(e.starts_with("packet_dur_s = 0: allowed 0.001..=1 s"), "{e}");
    let e = err(KpiWorker::spawn(Arc::clone(&stream.cache), None, settings(2.0, 1.0)));
    assert!(e.contains("packet_dur_s = 2") && e.contains("no longer than the primary cache, 1 s"), "{e}");
    let e = err(KpiWorker::idle(KpiSettings { lookback_s: f64::NAN, ..KpiSettings::default() }));
    assert_eq!(e, "lookback_s = NaN: allowed 0.001..=3600 s");
    let e = err(KpiWorker::idle(KpiSettings { update_period_s: f64::INFINITY, ..KpiSettings::default() }));
    assert_eq!(e, "update_period_s = inf: allowed 0.01..=60 s");

    let handle = KpiWorker::spawn(Arc::clone(&stream.cache), None, KpiSettings::default()).unwrap();
    let before = handle.settings();
    assert_eq!(before, KpiSettings { packet_dur_s: 0.1, update_period_s: 0.5, lookback_s: 1.0 });
    for (r, field) in [
        (handle.set_packet_dur(f64::NEG_INFINITY), "packet_dur_s = -inf"),
        (handle.set_packet_dur(1.5), "packet_dur_s = 1.5"),
        (handle.set_update_period(0.0), "update_period_s = 0"),
        (handle.set_update_period(f64::NAN), "update_period_s = NaN"),
        (handle.set_lookback(-1.0), "lookback_s = -1"),
        (handle.set_lookback(1e9), "lookback_s = 1000000000"),
    ] {
        let e = r.unwrap_err();
        assert!(matches!(e, KpiError::Settings(_)), "{e:?}");
        assert!(e.to_string().starts_with(&format!("{field}: allowed ")), "{e}");
    }
    assert_eq!(handle.settings(), before, "nothing refused was taken");
    handle.set_packet_dur(0.05).unwrap();
    handle.set_update_period(0.02).unwrap();
    handle.set_lookback(2.0).unwrap();
    let s = handle.status();
    assert_eq!((s.packet_dur_s, s.update_period_s, s.lookback_s), (0.05, 0.02, 2.0));
    assert_close(s.beta, 0.01, "beta");
    // The new packet duration takes effect: the first packet is 0.05 s.
    stream.publish(1000, 50);
    wait_for_packets(&handle, 1);
    assert_eq!(handle.status().last_packet.unwrap().frames, FrameSpan { start: 500, end: 1000 });
}

#[test]
fn the_worker_follows_the_stream_it_is_attached_to() {
    let handle = KpiWorker::idle(settings(0.05, 1.0)).unwrap();
    assert_eq!(handle.metrics(&[0], &[KpiMetric::Mean], true), Err(KpiError::NotStreaming));
    let s = handle.status();
    assert_eq!((s.attached, s.channels, s.packets_computed, s.last_packet), (false, 0, 0, None));

    // A stream with nothing published yet: no packet, nothing measured.
    let mut a = Stream::new(2, 10_000);
    handle.attach(Arc::clone(&a.cache), None);
    let t = handle.metrics(&[1], &[KpiMetric::NumPts, KpiMetric::Mean, KpiMetric::NoiseUv], true).unwrap();
    assert_eq!((t.packets, t.span), (0, FrameSpan { start: 0, end: 0 }));
    assert_eq!(t.values[0], 0.0);
    assert!(t.values[1].is_nan() && t.values[2].is_nan());
    a.publish(2000, 40);
    wait_for_packets(&handle, 1);
    assert_eq!(handle.metrics(&[0, 2], &[KpiMetric::Mean], true), Err(KpiError::Channel { index: 2, count: 2 }));
    assert_eq!(
        KpiError::Channel { index: 2, count: 2 }.to_string(),
        "channel 2 is not in the stream: it has 2 amplifier channels (allowed 0..2)"
    );

    // A new stream starts afresh at once, then is measured on its own frames.
    let mut b = Stream::new(5, 10_000);
    b.publish(3000, 200);
    let (_w, spikes) = ring(&[spike(DEVICE_OFFSET + 2990, 4, -77.0, -80.0, 10.0)], 16);
    handle.attach(Arc::clone(&b.cache), Some(spikes));
    let s = handle.status();
    assert_eq!((s.channels, s.packets_computed, s.computed), (5, 0, None));
    wait_for_packets(&handle, 1);
    let packet = handle.status().last_packet.unwrap();
    assert_eq!(packet.frames, FrameSpan { start: 2500, end: 3000 });
    let got = table(&handle, 5, false);
    for ch in 0..5 {
        let x = b.uv(ch, packet.frames);
        let spikes: Vec<Spike> =
            if ch == 4 { vec![spike(DEVICE_OFFSET + 2990, 4, -77.0, -80.0, 10.0)] } else { Vec::new() };
        let want = expected(&x, &spikes);
        for m in KpiMetric::ALL {
            assert_close(got.value(ch, m).unwrap(), want[m.column()], &format!("stream b channel {ch} {m}"));
        }
    }

    handle.detach();
    assert_eq!(handle.metrics(&[0], &[KpiMetric::Mean], false), Err(KpiError::NotStreaming));
    let s = handle.status();
    assert_eq!((s.attached, s.channels, s.packets_computed), (false, 0, 0));

    // Dropping the handle stops and joins the thread.
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        drop(handle);
        done.send(()).unwrap();
    });
    finished.recv_timeout(Duration::from_secs(60)).expect("dropping the handle joins the KPI thread");
}

#[test]
fn spikes_the_ring_overwrote_before_they_were_read_are_counted() {
    let mut stream = Stream::new(2, 20_000);
    stream.publish(1000, 50);
    let (mut writer, spike_ring) = ring(&[], 4);
    let handle = KpiWorker::spawn(Arc::clone(&stream.cache), Some(spike_ring), settings(0.1, 1.0)).unwrap();
    wait_for_packets(&handle, 1);
    // Ten spikes into a ring of four before the worker reads again: six are lost, and the four
    // left, all in the next packet, are counted on their channel.
    for i in 0..10 {
        writer.push(&spike(DEVICE_OFFSET + 1500 + i, 1, -40.0, -45.0, 5.0));
    }
    stream.publish(1000, 50);
    wait_for_packets(&handle, 2);
    assert_eq!(handle.status().events_lost, 6);
    let t = handle.metrics(&[0, 1], &[KpiMetric::EventRate], false).unwrap();
    assert_eq!(t.values, vec![0.0, 4.0 / 0.1]);
}

#[test]
fn the_handle_can_be_shared_by_the_grpc_tasks() {
    fn shared<T: Send + Sync + 'static>() {}
    shared::<KpiHandle>();
}

#[test]
fn with_a_detector_noise_and_snr_are_the_detectors_estimate() {
    use ephysd_pipeline::detect::{DetectParams, DetectorStage};
    use ephysd_pipeline::StageChain;

    // A detector that has seen 2 s of the stream's noise, so every channel has an estimate.
    let mut stream = Stream::new(3, 40_000);
    let (spikes, ring) = EventRing::new(64);
    let (detector, control) = DetectorStage::new(3, RATE, vec![DetectParams::default(); 3], spikes).unwrap();
    let mut chain = StageChain::new(stream.cache.layout(), vec![Box::new(detector)]);
    for _ in 0..20 {
        stream.publish(1000, 40);
        let (cache, mut block) = (Arc::clone(&stream.cache), FrameBlock::new(stream.cache.layout()));
        let mut reader = cache.reader_at(cache.head() - 1000);
        while reader.read(&cache, &mut block).frames > 0 {
            chain.run(&block);
        }
    }
    let shared = control.shared();
    assert!((0..3).all(|c| shared.noise_uv(c).is_some()), "the detector has estimates");
    let settings = KpiSettings { packet_dur_s: 0.05, update_period_s: 0.02, lookback_s: 0.02 };
    let handle = KpiWorker::idle(settings).unwrap();
    handle.attach_with_detector(Arc::clone(&stream.cache), Some(Arc::clone(&ring)), Some(Arc::clone(&shared)));
    stream.publish(1000, 40);
    wait_for_packets(&handle, 1);
    let table = handle.metrics(&[0, 1, 2], &[KpiMetric::NoiseUv], false).unwrap();
    for c in 0..3 {
        let expected = f64::from(shared.noise_uv(c).unwrap());
        assert_eq!(table.value(c, KpiMetric::NoiseUv), Some(expected), "channel {c}");
    }
}
