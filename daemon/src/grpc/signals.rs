//! Signals: `Pcache1.GetHDSnapshot2`, a time range of chosen channels from the primary cache.
//!
//! The reply carries one matrix per signal type, `[channels, frames]` little-endian `f32`,
//! channel-major, rows in the order the request listed them (repeats kept): amplifier rows in
//! µV, analog inputs in V, digital lines as 0 and 1. Its time range is the span actually
//! served, `[start, end)` in seconds of stream time and in frames (`timestamp`), which is
//! shorter than asked where the cache no longer (or not yet) holds part of it.
//!
//! This module checks a request and plans the read; [`super::signal_stream`] sends the reply,
//! reading the amplifier rows block by block while the previous blocks travel.

use std::sync::Arc;

use ephysd_drivers::DeviceDescription;
use ephysd_pipeline::ChannelPick;
use ephysd_proto::allego::{HdSnapshotRequest2, SigSelector, TimeRangeSelMode};
use tonic::Status;

use super::channels::check_group_id;
use crate::engine::{Engine, SignalKind, SignalRead, TimeSelection};

/// A checked `GetHDSnapshot2`: the read planned, and the amplifier channels of its rows.
pub struct PlannedRead {
    /// The span, the board's rows, and the cache the amplifier rows come from.
    pub read: SignalRead,
    /// Amplifier channel of each amplifier row, in order.
    pub amplifier: Vec<usize>,
}

/// Checks a `GetHDSnapshot2` request and plans its read (fixing the span served and reading
/// the board's lanes). Every refusal names the field and what is allowed.
pub async fn plan(engine: &Arc<Engine>, request: &HdSnapshotRequest2) -> Result<PlannedRead, Status> {
    check_group_id("dsourceID", &request.dsource_id)?;
    let d = engine.description();
    if request.t_r.fs != 0.0 && (request.t_r.fs - d.sample_rate_hz).abs() > 1e-6 {
        return Err(Status::failed_precondition(format!(
            "tR.fs = {}: the stream runs at {} Hz; read the channel metadata again",
            request.t_r.fs, d.sample_rate_hz
        )));
    }
    let time = time_selection(request)?;
    let mut pick = channel_pick(request.sig_sel.as_ref(), &d)?;
    let amplifier = std::mem::take(&mut pick.amplifier);
    let rows = amplifier.len();
    let filtered = request.apply_ds_pstage2 == Some(true);
    let engine = Arc::clone(engine);
    let read = tokio::task::spawn_blocking(move || engine.signal_read(time, rows, &pick, filtered))
        .await
        .map_err(|e| Status::internal(format!("signal read failed: {e}")))?
        .map_err(|e| super::errors::status_of(&e))?;
    Ok(PlannedRead { read, amplifier })
}

/// The time selection a request names, checked.
fn time_selection(request: &HdSnapshotRequest2) -> Result<TimeSelection, Status> {
    let range = &request.t_r.time_range_sec;
    if range.len() != 2 {
        return Err(Status::invalid_argument(format!(
            "tR.timeRangeSec has {} values: allowed exactly 2 ([start, end], or [duration, NaN] with TRS_FROM_HEAD)",
            range.len()
        )));
    }
    let (a, b) = (range[0], range[1]);
    let mode = request.sel_mode.unwrap_or(TimeRangeSelMode::TrsSubset as i32);
    match TimeRangeSelMode::try_from(mode) {
        Ok(TimeRangeSelMode::TrsFromHead) => {
            if !(a.is_finite() && a > 0.0) {
                return Err(Status::invalid_argument(format!(
                    "tR.timeRangeSec[0] = {a}: with TRS_FROM_HEAD it is the lookback duration; allowed: a finite number of seconds > 0"
                )));
            }
            Ok(TimeSelection::Lookback { seconds: a })
        }
        Ok(TimeRangeSelMode::TrsToHead) => {
            if a.is_nan() {
                return Err(Status::invalid_argument("tR.timeRangeSec[0] = NaN: allowed a start time in seconds"));
            }
            Ok(TimeSelection::ToHead { start: a })
        }
        Ok(TimeRangeSelMode::TrsSubset) => {
            if a.is_nan() || b.is_nan() {
                let (i, v) = if a.is_nan() { (0, a) } else { (1, b) };
                return Err(Status::invalid_argument(format!(
                    "tR.timeRangeSec[{i}] = {v}: allowed seconds of stream time, or ±inf for an open end"
                )));
            }
            if b <= a || a == f64::INFINITY || b == f64::NEG_INFINITY {
                return Err(Status::invalid_argument(format!(
                    "tR.timeRangeSec = [{a}, {b}]: the end must come after the start"
                )));
            }
            Ok(TimeSelection::Range { start: a, end: b })
        }
        Err(_) => Err(Status::invalid_argument(format!(
            "selMode = {mode}: allowed TRS_SUBSET (0), TRS_TO_HEAD (1), TRS_FROM_HEAD (2)"
        ))),
    }
}

/// The rows a request asks for, each index checked against the device.
fn channel_pick(selector: Option<&SigSelector>, d: &DeviceDescription) -> Result<ChannelPick, Status> {
    let Some(s) = selector else {
        return Ok(ChannelPick::default());
    };
    let lane = |field: &str, kind: SignalKind, wanted: &[i64]| -> Result<Vec<usize>, Status> {
        let count = kind.count(d);
        wanted
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                usize::try_from(c).ok().filter(|&c| c < count).ok_or_else(|| {
                    let allowed = match count {
                        0 => "none: the device has no such channels".to_string(),
                        n => format!("allowed 0..={}", n - 1),
                    };
                    Status::invalid_argument(format!("sigSel.{field}[{i}] = {c}: {allowed}"))
                })
            })
            .collect()
    };
    Ok(ChannelPick {
        amplifier: lane("ampNtvIdxs", SignalKind::Amplifier, &s.amp_ntv_idxs)?,
        analog_in: lane("ainNtvIdxs", SignalKind::AnalogIn, &s.ain_ntv_idxs)?,
        digital_in: lane("dinNtvIdxs", SignalKind::DigitalIn, &s.din_ntv_idxs)?,
        digital_out: lane("doutNtvIdxs", SignalKind::DigitalOut, &s.dout_ntv_idxs)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use ephysd_proto::allego::TimeRange;

    fn request(range: Vec<f64>, mode: TimeRangeSelMode) -> HdSnapshotRequest2 {
        HdSnapshotRequest2 {
            dsource_id: super::super::channels::LIVE_SIGNALS.into(),
            t_r: TimeRange { time_range_sec: range, fs: 30000.0, ..Default::default() },
            sel_mode: Some(mode as i32),
            sig_sel: None,
            apply_ds_pstage2: Some(false),
        }
    }

    #[test]
    fn time_ranges_are_read_as_the_client_sends_them() {
        let t = |r, m| time_selection(&request(r, m));
        assert_eq!(
            t(vec![1.0, 2.0], TimeRangeSelMode::TrsSubset).unwrap(),
            TimeSelection::Range { start: 1.0, end: 2.0 }
        );
        assert_eq!(
            t(vec![f64::NEG_INFINITY, f64::INFINITY], TimeRangeSelMode::TrsSubset).unwrap(),
            TimeSelection::Range { start: f64::NEG_INFINITY, end: f64::INFINITY }
        );
        assert_eq!(
            t(vec![0.5, f64::NAN], TimeRangeSelMode::TrsFromHead).unwrap(),
            TimeSelection::Lookback { seconds: 0.5 }
        );
        assert_eq!(t(vec![3.0, f64::NAN], TimeRangeSelMode::TrsToHead).unwrap(), TimeSelection::ToHead { start: 3.0 });
    }

    #[test]
    fn bad_time_ranges_name_the_field_and_what_is_allowed() {
        let t = |r, m| time_selection(&request(r, m)).unwrap_err().message().to_string();
        for bad in [0.0, -2.0, f64::NAN, f64::INFINITY] {
            let m = t(vec![bad, f64::NAN], TimeRangeSelMode::TrsFromHead);
            assert!(m.contains("timeRangeSec[0]") && m.contains("> 0"), "{m}");
        }
        assert!(t(vec![f64::NAN, 5.0], TimeRangeSelMode::TrsSubset).contains("timeRangeSec[0] = NaN"));
        assert!(t(vec![2.0, 1.0], TimeRangeSelMode::TrsSubset).contains("end must come after"));
        assert!(t(vec![1.0], TimeRangeSelMode::TrsSubset).contains("exactly 2"));
        let mut r = request(vec![1.0, 2.0], TimeRangeSelMode::TrsSubset);
        r.sel_mode = Some(7);
        assert!(time_selection(&r).unwrap_err().message().contains("selMode = 7"));
    }
}
