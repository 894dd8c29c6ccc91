//! Filters: `GetDSPGroup`, `SetDSPGroup`.
//!
//! A request's entries replace one stage on every port, as radiens-core documents. Each entry
//! is checked field by field before anything changes: the type's frequency field (and only a
//! finite one), the notch bandwidth, the order (1 to 8; 2 when not given), the family and its
//! ripple (0.05 dB when not given, as the client documents), the reference channels against
//! the entry's port. An entry with `isAux` filters the analog input `auxChanIdx` instead of a
//! port (filters only, no references). Zero-phase filtering needs the future and is refused.

use std::sync::Arc;

use ephysd_pipeline::dsp::{FilterFamily as Family, FilterKind, FilterSpec};
use ephysd_proto::allego::dsp_params::{FreqSpec, FreqSpecBand};
use ephysd_proto::allego::{
    DspGroup, DspParams, DspType, FilterFamily, FilterStage, Port, SetDspGroupRequest, SignalGroupIdRequest,
    StandardReply,
};
use tonic::Status;

use super::channels::check_group_id;
use super::{enum_names, off_workers, status::healthy};
use crate::engine::Engine;
use crate::processing::{DspEntry, DspOp, DspStage};

/// Order of a filter whose request leaves it out.
const DEFAULT_ORDER: u32 = 2;
/// Chebyshev-I ripple when the request leaves it out, dB (radiens-core's documented default).
const DEFAULT_RIPPLE_DB: f64 = 0.05;

/// `GetDSPGroup`: the hardware, stage-1 and stage-2 entries.
pub fn get_dsp_group(engine: &Engine, request: &SignalGroupIdRequest) -> Result<DspGroup, Status> {
    check_group_id("streamGroupId", &request.stream_group_id)?;
    let settings = engine.dsp_settings();
    let list = |stage: DspStage| settings.stage(stage).iter().map(|e| to_proto(e, stage)).collect();
    Ok(DspGroup {
        hardware: list(DspStage::Hardware),
        software_stage1: list(DspStage::Stage1),
        software_stage2: list(DspStage::Stage2),
    })
}

/// `SetDSPGroup`: replaces one stage.
pub async fn set_dsp_group(engine: &Arc<Engine>, request: &SetDspGroupRequest) -> Result<StandardReply, Status> {
    check_group_id("streamGroupId", &request.stream_group_id)?;
    let stage = stage_of(request.stage)?;
    let entries =
        request.dsp_params.iter().enumerate().map(|(i, p)| from_proto(i, p)).collect::<Result<Vec<_>, _>>()?;
    off_workers(engine, move |e| e.set_dsp_stage(stage, entries)).await?;
    Ok(healthy())
}

fn stage_of(value: i32) -> Result<DspStage, Status> {
    match FilterStage::try_from(value) {
        Ok(FilterStage::StageHardware) => Ok(DspStage::Hardware),
        Ok(FilterStage::Stage1) => Ok(DspStage::Stage1),
        Ok(FilterStage::Stage2) => Ok(DspStage::Stage2),
        Ok(FilterStage::SpikeSorter) => Ok(DspStage::SpikeSorter),
        Err(_) => Err(Status::invalid_argument(format!(
            "stage = {value}: allowed {}",
            enum_names(
                &[FilterStage::StageHardware, FilterStage::Stage1, FilterStage::Stage2, FilterStage::SpikeSorter],
                |s| s.as_str_name()
            )
        ))),
    }
}

fn invalid(entry: usize, field: &str, value: impl std::fmt::Display, allowed: &str) -> Status {
    Status::invalid_argument(format!("dspParams[{entry}].{field} = {value}: {allowed}"))
}

fn missing(entry: usize, field: &str, why: &str) -> Status {
    Status::invalid_argument(format!("dspParams[{entry}].{field} is missing: {why}"))
}

fn finite_positive(entry: usize, field: &str, v: f64) -> Result<f64, Status> {
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(invalid(entry, field, v, "a finite frequency above 0 Hz"))
    }
}

/// One request entry as a stage entry; the design itself is checked against the device's
/// rate by the engine.
fn from_proto(i: usize, p: &DspParams) -> Result<DspEntry, Status> {
    let analog_in = match (p.is_aux, p.aux_chan_idx) {
        (false, _) => None,
        (true, Some(c)) if c >= 0 => Some(c as usize),
        (true, Some(c)) => return Err(invalid(i, "auxChanIdx", c, "an analog input's native index, 0 or more")),
        (true, None) => return Err(missing(i, "auxChanIdx", "an analog-input filter (isAux) needs its channel")),
    };
    if p.zero_phase == Some(true) {
        return Err(invalid(
            i,
            "zeroPhase",
            true,
            "false: zero-phase filtering needs future samples a live stream does not have",
        ));
    }
    let port = match analog_in {
        // The client documents the port as ignored for an analog input.
        Some(_) => Port::try_from(p.port).map_or(0, |p| p as usize),
        None => Port::try_from(p.port).map_err(|_| invalid(i, "port", p.port, "A (0) to H (7)"))? as usize,
    };
    let dsp_type = DspType::try_from(p.r#type).map_err(|_| {
        invalid(
            i,
            "type",
            p.r#type,
            "LOWPASS, HIGHPASS, BANDPASS, NOTCH, BANDSTOP, CAR, VIRTUAL_REFERENCE, PAIRED_REFERENCE",
        )
    })?;
    let freq = || match p.freq_spec {
        Some(FreqSpec::Freq(f)) => finite_positive(i, "freq", f),
        _ => Err(missing(i, "freq", "this filter type needs its cutoff or centre frequency in freq")),
    };
    let band = || match p.freq_spec {
        Some(FreqSpec::FreqSpecBand(FreqSpecBand { low_freq, high_freq })) => {
            let low = finite_positive(i, "freqSpecBand.lowFreq", low_freq)?;
            let high = finite_positive(i, "freqSpecBand.highFreq", high_freq)?;
            if low >= high {
                return Err(invalid(i, "freqSpecBand", format!("[{low}, {high}]"), "lowFreq below highFreq"));
            }
            Ok((low, high))
        }
        _ => Err(missing(i, "freqSpecBand", "bandpass and bandstop need lowFreq and highFreq")),
    };
    let reference = || match p.freq_spec {
        Some(FreqSpec::RefNtvChanIdx(c)) => {
            usize::try_from(c).map_err(|_| invalid(i, "refNtvChanIdx", c, "a native channel index, 0 or more"))
        }
        _ => Err(missing(i, "refNtvChanIdx", "a reference needs its reference channel")),
    };
    let filter = |kind: FilterKind| -> Result<DspOp, Status> {
        let order = match p.filter_order {
            None => DEFAULT_ORDER,
            Some(o) if (1..=8).contains(&o) => o as u32,
            Some(o) => return Err(invalid(i, "filterOrder", o, "1 to 8")),
        };
        let family = match p.family.map(FilterFamily::try_from) {
            None | Some(Ok(FilterFamily::Butterworth)) => Family::Butterworth,
            Some(Ok(FilterFamily::ChebyshevI)) => {
                let ripple_db = p.ripple_db.unwrap_or(DEFAULT_RIPPLE_DB);
                if !(ripple_db.is_finite() && ripple_db > 0.0 && ripple_db <= 20.0) {
                    return Err(invalid(i, "rippleDB", ripple_db, "above 0 and at most 20 dB"));
                }
                Family::ChebyshevI { ripple_db }
            }
            Some(Err(_)) => {
                return Err(invalid(
                    i,
                    "family",
                    p.family.unwrap_or_default(),
                    "FILTER_FAMILY_BUTTERWORTH (0), FILTER_FAMILY_CHEBYSHEV_I (1)",
                ))
            }
        };
        Ok(DspOp::Filter(FilterSpec { kind, family, order }))
    };
    let op = match dsp_type {
        DspType::Lowpass => filter(FilterKind::Lowpass { cutoff_hz: freq()? })?,
        DspType::Highpass => filter(FilterKind::Highpass { cutoff_hz: freq()? })?,
        DspType::Bandpass => {
            let (low_hz, high_hz) = band()?;
            filter(FilterKind::Bandpass { low_hz, high_hz })?
        }
        DspType::Bandstop => {
            let (low_hz, high_hz) = band()?;
            filter(FilterKind::Bandstop { low_hz, high_hz })?
        }
        DspType::Notch => {
            let centre_hz = freq()?;
            let bandwidth_hz = match p.notch_bandwidth {
                Some(b) if b.is_finite() && b > 0.0 => b,
                Some(b) => return Err(invalid(i, "notchBandwidth", b, "a finite width above 0 Hz")),
                None => return Err(missing(i, "notchBandwidth", "a notch needs its width in Hz")),
            };
            DspOp::Filter(FilterSpec {
                kind: FilterKind::Notch { centre_hz, bandwidth_hz },
                family: Family::Butterworth,
                order: DEFAULT_ORDER,
            })
        }
        DspType::Car => DspOp::CommonAverage,
        DspType::VirtualReference => DspOp::VirtualReference { reference: reference()? },
        DspType::PairedReference => {
            let reference = reference()?;
            let target = match p.target_ntv_chan_idx {
                Some(t) if t.is_finite() && t >= 0.0 && t.fract() == 0.0 => t as usize,
                Some(t) => return Err(invalid(i, "targetNtvChanIdx", t, "a native channel index, 0 or more")),
                None => return Err(missing(i, "targetNtvChanIdx", "a paired reference needs its target channel")),
            };
            DspOp::PairedReference { reference, target }
        }
    };
    Ok(DspEntry { op, port, analog_in, label: p.user_label.clone() })
}

/// A stage entry as Allego reports it.
fn to_proto(e: &DspEntry, stage: DspStage) -> DspParams {
    let stage = match stage {
        DspStage::Hardware => FilterStage::StageHardware,
        DspStage::Stage1 => FilterStage::Stage1,
        DspStage::Stage2 => FilterStage::Stage2,
        DspStage::SpikeSorter => FilterStage::SpikeSorter,
    };
    let mut p = DspParams {
        stage: stage as i32,
        port: e.port as i32,
        user_label: e.label.clone(),
        is_aux: e.analog_in.is_some(),
        aux_chan_idx: e.analog_in.map(|c| c as i32),
        zero_phase: Some(false),
        force_sos: Some(true),
        ..Default::default()
    };
    match &e.op {
        DspOp::Filter(spec) => {
            let (t, f) = match spec.kind {
                FilterKind::Lowpass { cutoff_hz } => (DspType::Lowpass, FreqSpec::Freq(cutoff_hz)),
                FilterKind::Highpass { cutoff_hz } => (DspType::Highpass, FreqSpec::Freq(cutoff_hz)),
                FilterKind::Bandpass { low_hz, high_hz } => {
                    (DspType::Bandpass, FreqSpec::FreqSpecBand(FreqSpecBand { low_freq: low_hz, high_freq: high_hz }))
                }
                FilterKind::Bandstop { low_hz, high_hz } => {
                    (DspType::Bandstop, FreqSpec::FreqSpecBand(FreqSpecBand { low_freq: low_hz, high_freq: high_hz }))
                }
                FilterKind::Notch { centre_hz, bandwidth_hz } => {
                    p.notch_bandwidth = Some(bandwidth_hz);
                    (DspType::Notch, FreqSpec::Freq(centre_hz))
                }
            };
            p.r#type = t as i32;
            p.freq_spec = Some(f);
            if !matches!(spec.kind, FilterKind::Notch { .. }) {
                p.filter_order = Some(spec.order as i32);
                match spec.family {
                    Family::Butterworth => p.family = Some(FilterFamily::Butterworth as i32),
                    Family::ChebyshevI { ripple_db } => {
                        p.family = Some(FilterFamily::ChebyshevI as i32);
                        p.ripple_db = Some(ripple_db);
                    }
                }
            }
        }
        DspOp::CommonAverage => p.r#type = DspType::Car as i32,
        DspOp::VirtualReference { reference } => {
            p.r#type = DspType::VirtualReference as i32;
            p.freq_spec = Some(FreqSpec::RefNtvChanIdx(*reference as i32));
        }
        DspOp::PairedReference { reference, target } => {
            p.r#type = DspType::PairedReference as i32;
            p.freq_spec = Some(FreqSpec::RefNtvChanIdx(*reference as i32));
            p.target_ntv_chan_idx = Some(*target as f64);
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(t: DspType, f: Option<FreqSpec>) -> DspParams {
        DspParams { r#type: t as i32, stage: 1, port: 0, freq_spec: f, ..Default::default() }
    }

    #[test]
    fn entries_round_trip_through_the_wire_form() {
        let mut notch = params(DspType::Notch, Some(FreqSpec::Freq(60.0)));
        notch.notch_bandwidth = Some(4.0);
        let mut cheby = params(
            DspType::Bandpass,
            Some(FreqSpec::FreqSpecBand(FreqSpecBand { low_freq: 300.0, high_freq: 5000.0 })),
        );
        cheby.family = Some(FilterFamily::ChebyshevI as i32);
        cheby.filter_order = Some(4);
        let mut paired = params(DspType::PairedReference, Some(FreqSpec::RefNtvChanIdx(3)));
        paired.target_ntv_chan_idx = Some(5.0);
        for p in
            [params(DspType::Highpass, Some(FreqSpec::Freq(300.0))), notch, cheby, paired, params(DspType::Car, None)]
        {
            let entry = from_proto(0, &p).unwrap();
            let back = to_proto(&entry, DspStage::Stage1);
            assert_eq!(from_proto(0, &back).unwrap(), entry);
        }
        let cheby = from_proto(
            0,
            &to_proto(&from_proto(0, &params(DspType::Lowpass, Some(FreqSpec::Freq(1.0)))).unwrap(), DspStage::Stage2),
        )
        .unwrap();
        assert!(matches!(cheby.op, DspOp::Filter(FilterSpec { order: DEFAULT_ORDER, .. })));
    }

    #[test]
    fn bad_entries_name_their_field() {
        let cases: Vec<(DspParams, &str)> = vec![
            (params(DspType::Highpass, None), "dspParams[0].freq is missing"),
            (params(DspType::Highpass, Some(FreqSpec::Freq(f64::NAN))), "freq = NaN"),
            (params(DspType::Notch, Some(FreqSpec::Freq(50.0))), "notchBandwidth is missing"),
            (
                params(
                    DspType::Bandpass,
                    Some(FreqSpec::FreqSpecBand(FreqSpecBand { low_freq: 500.0, high_freq: 300.0 })),
                ),
                "lowFreq below highFreq",
            ),
            (
                DspParams { filter_order: Some(9), ..params(DspType::Lowpass, Some(FreqSpec::Freq(100.0))) },
                "filterOrder = 9",
            ),
            (
                DspParams { zero_phase: Some(true), ..params(DspType::Lowpass, Some(FreqSpec::Freq(100.0))) },
                "zeroPhase",
            ),
            (DspParams { port: 9, ..params(DspType::Car, None) }, "port = 9"),
            (params(DspType::PairedReference, Some(FreqSpec::RefNtvChanIdx(1))), "targetNtvChanIdx is missing"),
        ];
        for (p, expected) in cases {
            let e = from_proto(0, &p).unwrap_err();
            assert_eq!(e.code(), tonic::Code::InvalidArgument, "{expected}");
            assert!(e.message().contains(expected), "{} lacks {expected}", e.message());
        }
        let aux = from_proto(0, &DspParams { is_aux: true, ..params(DspType::Car, None) }).unwrap_err();
        assert!(aux.message().contains("auxChanIdx is missing"), "{}", aux.message());
        let ain =
            DspParams { is_aux: true, aux_chan_idx: Some(2), ..params(DspType::Lowpass, Some(FreqSpec::Freq(50.0))) };
        let entry = from_proto(0, &ain).unwrap();
        assert_eq!(entry.analog_in, Some(2));
        assert_eq!(from_proto(0, &to_proto(&entry, DspStage::Stage2)).unwrap(), entry);
    }
}
