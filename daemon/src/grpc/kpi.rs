//! Kpi1: `KpiGetMetrics`, `GetKpiStatus`, `SetKpiPacketDur`, `SetKpiUpdatePeriod`, answered
//! from the KPI thread's published results ([`crate::kpi`]).
//!
//! The metrics reply is what radiens-core's `kpi_metrics_result_from_proto` decodes: a
//! `DenseMatrix` of `rows` = channels (in `ntvIdxs` order) by `cols` = metrics (in `metrics`
//! order), its `data` little-endian `float32` row-major (radiens-core: "KPI DenseMatrix.data
//! arrives as float32", `np.frombuffer(data, float32).reshape(rows, cols)`). Values are the
//! running averages (`KPI_SVC_STREAM`), and `tR` the span streamed so far, as radiens-core
//! documents them; `KPI_SVC_RANGE` is not available on a live stream. Every refusal names the
//! field and what is allowed.

use std::time::{Duration, SystemTime};

use ephysd_pipeline::FrameSpan;
use ephysd_proto::allego::{
    DenseMatrix, GetKpiStatusRequest, KpiMetricId, KpiMetricsEnum, KpiMetricsReq, KpiServiceMode, KpiStatusReply,
    SetKpiParamRequest, SignalMetricsPacketReply, SignalType, StandardReply, TimeRange,
};
use tonic::Status;

use super::channels::check_group_id;
use super::status::healthy;
use crate::kpi::{KpiError, KpiHandle, KpiMetric, MetricsTable};

/// The wire value of each metric. Mapped name by name rather than by ordinal: the wire enum's
/// numbering is not frozen across Allego releases (radiens-core maps it the same way).
const WIRE: [(KpiMetric, KpiMetricsEnum); 19] = [
    (KpiMetric::NumPts, KpiMetricsEnum::KpiNumPts),
    (KpiMetric::NumPtsIsi, KpiMetricsEnum::KpiNumPtsIsi),
    (KpiMetric::DurSec, KpiMetricsEnum::KpiDurSec),
    (KpiMetric::Mean, KpiMetricsEnum::KpiMean),
    (KpiMetric::Min, KpiMetricsEnum::KpiMin),
    (KpiMetric::Max, KpiMetricsEnum::KpiMax),
    (KpiMetric::MaxAbs, KpiMetricsEnum::KpiMaxAbs),
    (KpiMetric::MaxMinDiffAbs, KpiMetricsEnum::KpiMaxMinDiffAbs),
    (KpiMetric::Sd, KpiMetricsEnum::KpiSd),
    (KpiMetric::Rms, KpiMetricsEnum::KpiRms),
    (KpiMetric::NoiseUv, KpiMetricsEnum::KpiNoiseUv),
    (KpiMetric::Snr, KpiMetricsEnum::KpiSnr),
    (KpiMetric::EventRate, KpiMetricsEnum::KpiEventRate),
    (KpiMetric::EventMax, KpiMetricsEnum::KpiEventMax),
    (KpiMetric::EventMin, KpiMetricsEnum::KpiEventMin),
    (KpiMetric::EventMaxAbs, KpiMetricsEnum::KpiEventMaxAbs),
    (KpiMetric::EventMaxMinDiffAbs, KpiMetricsEnum::KpiEventMaxMinDiffAbs),
    (KpiMetric::EventMeanMaxAbs, KpiMetricsEnum::KpiEventMeanMaxAbs),
    (KpiMetric::EventMeanMaxMinDiffAbs, KpiMetricsEnum::KpiEventMeanMaxMinDiffAbs),
];

/// The metric a wire value names.
pub fn metric_of(field: &str, value: i32) -> Result<KpiMetric, Status> {
    WIRE.iter().find(|(_, w)| *w as i32 == value).map(|(m, _)| *m).ok_or_else(|| {
        let (first, last) = (WIRE[0].1, WIRE[WIRE.len() - 1].1);
        Status::invalid_argument(format!(
            "{field} = {value}: allowed {} ({}) to {} ({})",
            first.as_str_name(),
            first as i32,
            last.as_str_name(),
            last as i32
        ))
    })
}

/// The wire value of a metric.
pub fn wire_of(metric: KpiMetric) -> KpiMetricsEnum {
    WIRE.iter().find(|(m, _)| *m == metric).map(|(_, w)| *w).expect("every metric has a wire value")
}

/// The gRPC status of a refused KPI call.
pub fn status_of(e: &KpiError) -> Status {
    match e {
        KpiError::NotStreaming => Status::failed_precondition(e.to_string()),
        KpiError::Channel { .. } | KpiError::Settings(_) => Status::invalid_argument(e.to_string()),
        KpiError::Thread(_) => Status::internal(e.to_string()),
    }
}

/// `KpiGetMetrics`: the averaged metrics of the channels asked for (the `selected` channels
/// when `arg.ntvIdxs` is empty) and the metrics asked for (every metric when `arg.metrics` is
/// empty; the reply names them). `streamLookbackSec`, when given, sets the averaging window
/// shared by every client. `arg.tR` is not read: a live stream answers the moving average.
/// `started_at` is the wall-clock time of the stream's first frame.
pub fn metrics_reply(
    handle: &KpiHandle,
    request: &KpiMetricsReq,
    selected: &[usize],
    started_at: Option<SystemTime>,
) -> Result<SignalMetricsPacketReply, Status> {
    check_group_id("streamGroupId", &request.stream_group_id)?;
    check_amplifier(request.stype)?;
    check_mode(request.mode)?;
    let metrics: Vec<KpiMetric> = if request.arg.metrics.is_empty() {
        KpiMetric::ALL.to_vec()
    } else {
        let field = |i| format!("arg.metrics[{i}].name");
        request.arg.metrics.iter().enumerate().map(|(i, m)| metric_of(&field(i), m.name)).collect::<Result<_, _>>()?
    };
    if let Some(lookback) = request.stream_lookback_sec {
        crate::kpi::settings::check_lookback(lookback)
            .map_err(|e| Status::invalid_argument(format!("streamLookbackSec = {lookback}: allowed {}", e.allowed)))?;
    }
    let status = handle.status();
    if !status.attached {
        return Err(status_of(&KpiError::NotStreaming));
    }
    let count = status.channels;
    let channels: Vec<usize> = if request.arg.ntv_idxs.is_empty() {
        selected.iter().copied().filter(|&c| c < count).collect()
    } else {
        request
            .arg
            .ntv_idxs
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                usize::try_from(c).ok().filter(|&c| c < count).ok_or_else(|| {
                    Status::invalid_argument(format!(
                        "arg.ntvIdxs[{i}] = {c}: allowed 0..={} (the stream's {count} amplifier channels)",
                        count.saturating_sub(1)
                    ))
                })
            })
            .collect::<Result<_, _>>()?
    };
    if let Some(lookback) = request.stream_lookback_sec {
        handle.set_lookback(lookback).map_err(|e| status_of(&e))?;
    }
    let table = handle.metrics(&channels, &metrics, true).map_err(|e| status_of(&e))?;
    Ok(SignalMetricsPacketReply {
        ntv_idxs: table.channels.iter().map(|&c| c as i32).collect(),
        sig_type: SignalType::Pri as i32,
        metrics: table.metrics.iter().map(|&m| KpiMetricId { name: wire_of(m) as i32 }).collect(),
        metric_vals: dense_matrix(&table),
        t_r: time_range(table.span, table.sample_rate_hz, started_at.filter(|_| table.packets > 0)),
        answered_mode: Some(KpiServiceMode::KpiSvcStream as i32),
    })
}

/// The table as radiens-core reads it: rows × cols little-endian `float32`, row-major.
pub fn dense_matrix(table: &MetricsTable) -> DenseMatrix {
    let data = table.values.iter().flat_map(|&v| (v as f32).to_le_bytes()).collect();
    DenseMatrix { rows: table.channels.len() as i64, cols: table.metrics.len() as i64, data }
}

/// `GetKpiStatus`. `dataset_uid` names the live dataset the status belongs to (radiens-core:
/// "not the ID the call was made with"); `beta` is the processing headroom and `persistence`
/// the averaging window, the one packet kept in memory (`numPacketsMemory` 1) being the last.
pub fn status_reply(
    handle: &KpiHandle,
    request: &GetKpiStatusRequest,
    dataset_uid: &str,
    started_at: Option<SystemTime>,
) -> Result<KpiStatusReply, Status> {
    check_group_id("streamGroupId", &request.stream_group_id)?;
    let s = handle.status();
    let computed = s.computed.zip(s.sample_rate_hz);
    Ok(KpiStatusReply {
        stream_group_id: dataset_uid.to_string(),
        time_range: computed.map(|(span, rate)| span.len() as f64 / rate),
        timestamp_range: computed.map(|(span, _)| span.len() as i64),
        num_packets_memory: 1,
        packet_dur: s.packet_dur_s,
        update_period: s.update_period_s,
        persistence: s.lookback_s,
        beta: s.headroom,
        num_packets: s.packets_computed as i64,
        memory_bytes: s.memory_bytes as f64,
        fs: s.sample_rate_hz,
        wall_time_start: computed.and_then(|(span, rate)| wall_time(started_at, span, rate)),
        t_r: computed.map(|(span, rate)| time_range(span, rate, started_at)),
        num_sigs: s.attached.then_some(s.channels as i64),
    })
}

/// `SetKpiPacketDur`: `param` seconds.
pub fn set_packet_dur(handle: &KpiHandle, request: &SetKpiParamRequest) -> Result<StandardReply, Status> {
    let seconds = param(request, "the KPI packet duration")?;
    handle.set_packet_dur(seconds).map_err(|e| param_refused(e, seconds, "the KPI packet duration"))?;
    Ok(healthy())
}

/// `SetKpiUpdatePeriod`: `param` seconds.
pub fn set_update_period(handle: &KpiHandle, request: &SetKpiParamRequest) -> Result<StandardReply, Status> {
    let seconds = param(request, "the KPI update period")?;
    handle.set_update_period(seconds).map_err(|e| param_refused(e, seconds, "the KPI update period"))?;
    Ok(healthy())
}

fn param(request: &SetKpiParamRequest, what: &str) -> Result<f64, Status> {
    if let Some(id) = &request.stream_group_id {
        check_group_id("streamGroupId", id)?;
    }
    match request.param {
        Some(v) if !v.is_nan() => Ok(v),
        Some(v) => Err(Status::invalid_argument(format!("param = {v}: allowed a number of seconds ({what})"))),
        None => Err(Status::invalid_argument(format!("param is missing: allowed a number of seconds ({what})"))),
    }
}

fn param_refused(e: KpiError, value: f64, what: &str) -> Status {
    match e {
        KpiError::Settings(s) => Status::invalid_argument(format!("param = {value}: allowed {} ({what})", s.allowed)),
        other => status_of(&other),
    }
}

fn check_amplifier(stype: Option<i32>) -> Result<(), Status> {
    match stype.map(SignalType::try_from) {
        None | Some(Ok(SignalType::Pri)) => Ok(()),
        Some(other) => {
            let named = match other {
                Ok(t) => format!("{} ({})", t.as_str_name(), t as i32),
                Err(_) => stype.unwrap_or_default().to_string(),
            };
            Err(Status::invalid_argument(format!(
                "stype = {named}: KPI covers amplifier channels only; allowed PRI (0), which radiens-core calls AMP"
            )))
        }
    }
}

fn check_mode(mode: Option<i32>) -> Result<(), Status> {
    match mode.map(KpiServiceMode::try_from) {
        None | Some(Ok(KpiServiceMode::KpiSvcStream)) => Ok(()),
        Some(Ok(KpiServiceMode::KpiSvcRange)) => Err(Status::failed_precondition(
            "mode = KPI_SVC_RANGE: KPI_SVC_RANGE is not available on a live stream; allowed KPI_SVC_STREAM (1)",
        )),
        Some(Err(_)) => Err(Status::invalid_argument(format!(
            "mode = {}: allowed KPI_SVC_STREAM (1) on a live stream",
            mode.unwrap_or_default()
        ))),
    }
}

/// `[start, end)` in seconds of stream time and in frames, as the signal replies give it.
fn time_range(span: FrameSpan, rate: f64, started_at: Option<SystemTime>) -> TimeRange {
    TimeRange {
        time_range_sec: vec![span.start as f64 / rate, span.end as f64 / rate],
        timestamp: vec![span.start as i64, span.end as i64],
        fs: rate,
        wall_time_start: wall_time(started_at, span, rate),
        wall_time: None,
    }
}

fn wall_time(started_at: Option<SystemTime>, span: FrameSpan, rate: f64) -> Option<String> {
    let at = started_at? + Duration::from_secs_f64(span.start as f64 / rate);
    Some(chrono::DateTime::<chrono::Utc>::from(at).to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::Arc;
    use std::time::Instant;

    use ephysd_drivers::{BlockLayout, FrameBlock};
    use ephysd_pipeline::PrimaryCache;
    use prost::Message;

    use super::super::channels::LIVE_SIGNALS;
    use crate::kpi::{KpiSettings, KpiWorker};

    const CHANNELS: usize = 3;

    /// A worker that has measured one packet of a ramp on three channels.
    fn measured() -> (KpiHandle, Arc<PrimaryCache>) {
        let layout =
            BlockLayout { amplifier_channels: CHANNELS, aux_channels: 0, analog_in_channels: 0, frames_per_block: 500 };
        let (cache, mut writer) = PrimaryCache::new(layout, 1000, 1000.0);
        let mut block = FrameBlock::new(layout);
        block.frames = 500;
        for f in 0..500 {
            block.frame_index[f] = f as u64;
            for c in 0..CHANNELS {
                block.amplifier[f * CHANNELS + c] = ((f * (c + 1)) % 97) as i16 - 40;
            }
        }
        writer.publish(&block);
        let settings = KpiSettings { packet_dur_s: 0.2, update_period_s: 0.01, lookback_s: 1.0 };
        let handle = KpiWorker::spawn(Arc::clone(&cache), None, settings).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while handle.status().packets_computed == 0 {
            assert!(Instant::now() < deadline, "no packet measured");
            std::thread::sleep(Duration::from_millis(5));
        }
        (handle, cache)
    }

    fn request(channels: Vec<i32>, metrics: &[KpiMetricsEnum]) -> KpiMetricsReq {
        KpiMetricsReq {
            stream_group_id: LIVE_SIGNALS.into(),
            stype: Some(SignalType::Pri as i32),
            arg: ephysd_proto::allego::BundleReq {
                ntv_idxs: channels,
                t_r: TimeRange { time_range_sec: vec![-5.0, f64::NAN], fs: 1000.0, ..Default::default() },
                metrics: metrics.iter().map(|&m| KpiMetricId { name: m as i32 }).collect(),
            },
            mode: Some(KpiServiceMode::KpiSvcStream as i32),
            stream_lookback_sec: None,
        }
    }

    #[test]
    fn every_metric_maps_to_its_wire_value_and_back() {
        for m in KpiMetric::ALL {
            assert_eq!(metric_of("m", wire_of(m) as i32).unwrap(), m);
            assert_eq!(wire_of(m).as_str_name(), format!("KPI_{}", m.name()));
        }
        let e = metric_of("arg.metrics[2].name", 19).unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        assert!(e.message().contains("arg.metrics[2].name = 19: allowed KPI_NUM_PTS (0)"), "{}", e.message());
    }

    #[test]
    fn the_metric_matrix_is_channels_by_metrics_of_little_endian_float32() {
        let (handle, _cache) = measured();
        let metrics = [KpiMetricsEnum::KpiRms, KpiMetricsEnum::KpiNumPts, KpiMetricsEnum::KpiMin];
        let reply = metrics_reply(&handle, &request(vec![2, 0], &metrics), &[], None).unwrap();
        // As the client receives it.
        let reply = SignalMetricsPacketReply::decode(reply.encode_to_vec().as_slice()).unwrap();
        assert_eq!(reply.ntv_idxs, vec![2, 0]);
        assert_eq!(reply.sig_type, SignalType::Pri as i32);
        assert_eq!(reply.answered_mode, Some(KpiServiceMode::KpiSvcStream as i32));
        assert_eq!(reply.metrics.iter().map(|m| m.name).collect::<Vec<_>>(), metrics.map(|m| m as i32));
        let m = &reply.metric_vals;
        assert_eq!((m.rows, m.cols, m.data.len()), (2, 3, 2 * 3 * 4));
        let values: Vec<f32> = m.data.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
        let table = handle.metrics(&[2, 0], &[KpiMetric::Rms, KpiMetric::NumPts, KpiMetric::Min], true).unwrap();
        for (row, ch) in [2usize, 0].into_iter().enumerate() {
            for (col, metric) in [KpiMetric::Rms, KpiMetric::NumPts, KpiMetric::Min].into_iter().enumerate() {
                assert_eq!(values[row * 3 + col], table.value(ch, metric).unwrap() as f32);
            }
        }
        assert_eq!(values[1], 200.0, "NUM_PTS of a 0.2 s packet at 1 kHz");
        assert_eq!(reply.t_r.timestamp, vec![300, 500]);
        assert_eq!(reply.t_r.time_range_sec, vec![0.3, 0.5]);
        assert_eq!(reply.t_r.fs, 1000.0);
    }

    #[test]
    fn empty_lists_mean_the_selected_channels_and_every_metric() {
        let (handle, _cache) = measured();
        let reply = metrics_reply(&handle, &request(vec![], &[]), &[1, 2], None).unwrap();
        assert_eq!(reply.ntv_idxs, vec![1, 2]);
        assert_eq!(reply.metrics.len(), 19);
        assert_eq!((reply.metric_vals.rows, reply.metric_vals.cols), (2, 19));
    }

    #[test]
    fn refusals_name_the_field_and_what_is_allowed() {
        let (handle, _cache) = measured();
        let refuse = |r: KpiMetricsReq| metrics_reply(&handle, &r, &[], None).unwrap_err();
        let mut r = request(vec![0], &[]);
        r.stype = Some(SignalType::Aux as i32);
        let e = refuse(r);
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        assert!(e.message().contains("stype = AUX (1)") && e.message().contains("AMP"), "{}", e.message());
        let mut r = request(vec![0], &[]);
        r.mode = Some(KpiServiceMode::KpiSvcRange as i32);
        let e = refuse(r);
        assert_eq!(e.code(), tonic::Code::FailedPrecondition);
        assert!(e.message().contains("KPI_SVC_RANGE is not available on a live stream"), "{}", e.message());
        let e = refuse(request(vec![0, 3], &[]));
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        assert!(e.message().contains("arg.ntvIdxs[1] = 3: allowed 0..=2 (the stream's 3 amplifier"), "{}", e.message());
        assert!(refuse(request(vec![-1], &[])).message().contains("arg.ntvIdxs[0] = -1"));
        let mut r = request(vec![0], &[]);
        r.arg.metrics.push(KpiMetricId { name: 40 });
        assert!(refuse(r).message().contains("arg.metrics[0].name = 40"));
        let mut r = request(vec![0], &[]);
        r.stream_group_id = "elsewhere".into();
        assert_eq!(refuse(r).code(), tonic::Code::NotFound);
        let mut r = request(vec![0], &[]);
        r.stream_lookback_sec = Some(f64::NAN);
        let e = refuse(r);
        assert!(e.message().contains("streamLookbackSec = NaN: allowed 0.001..=3600 s"), "{}", e.message());
        assert_eq!(handle.settings().lookback_s, 1.0, "a refused request changes nothing");
        let mut r = request(vec![0], &[]);
        r.stream_lookback_sec = Some(2.5);
        metrics_reply(&handle, &r, &[], None).unwrap();
        assert_eq!(handle.settings().lookback_s, 2.5);
    }

    #[test]
    fn parameters_are_checked_and_set() {
        let (handle, _cache) = measured();
        let set = |param: Option<f64>| SetKpiParamRequest { stream_group_id: None, param };
        set_packet_dur(&handle, &set(Some(0.05))).unwrap();
        set_update_period(&handle, &set(Some(0.02))).unwrap();
        assert_eq!((handle.settings().packet_dur_s, handle.settings().update_period_s), (0.05, 0.02));
        for bad in [None, Some(f64::NAN)] {
            let e = set_packet_dur(&handle, &set(bad)).unwrap_err();
            assert_eq!(e.code(), tonic::Code::InvalidArgument);
            assert!(e.message().starts_with("param"), "{}", e.message());
        }
        let e = set_packet_dur(&handle, &set(Some(1.5))).unwrap_err();
        assert!(e.message().contains("param = 1.5: allowed 0.001..=1 s"), "{}", e.message());
        let e = set_update_period(&handle, &set(Some(-1.0))).unwrap_err();
        assert!(e.message().contains("param = -1: allowed 0.01..=60 s (the KPI update period)"), "{}", e.message());
        let wrong = SetKpiParamRequest { stream_group_id: Some("x".into()), param: Some(0.1) };
        assert_eq!(set_update_period(&handle, &wrong).unwrap_err().code(), tonic::Code::NotFound);
    }

    #[test]
    fn status_reports_settings_span_and_channels() {
        let (handle, _cache) = measured();
        let req = GetKpiStatusRequest { stream_group_id: LIVE_SIGNALS.into() };
        let started = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let s = status_reply(&handle, &req, "dataset-uid", Some(started)).unwrap();
        assert_eq!(s.stream_group_id, "dataset-uid");
        assert_eq!((s.packet_dur, s.update_period, s.persistence), (0.2, 0.01, 1.0));
        assert!(s.num_packets >= 1);
        assert_eq!(s.num_sigs, Some(3));
        assert_eq!(s.fs, Some(1000.0));
        assert_eq!(s.t_r.as_ref().unwrap().timestamp, vec![300, 500]);
        assert_eq!(s.time_range, Some(0.2));
        assert_eq!(s.wall_time_start.as_deref(), Some("2023-11-14T22:13:20.300000Z"));
        assert!(s.beta <= 1.0);
        handle.detach();
        let idle = status_reply(&handle, &req, "dataset-uid", None).unwrap();
        assert_eq!((idle.num_packets, idle.num_sigs, idle.t_r), (0, None, None));
        let e = metrics_reply(&handle, &request(vec![], &[]), &[0], None).unwrap_err();
        assert_eq!(e.code(), tonic::Code::FailedPrecondition);
    }
}
