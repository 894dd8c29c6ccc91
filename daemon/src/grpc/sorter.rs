//! The live sorter (Neurons1) and its detection parameters: commands, state, dashboard,
//! `SpikeSorterGetParam` / `SpikeSorterSetParam(s)`, and `GetSpikeSorterIDs` (AllegoCore).
//!
//! One detect-only sorter runs, with the id radiens-core uses for the live sorter
//! ([`SORTER_ID`]). Parameter changes are all-or-none per request: a bulk update with one bad
//! entry changes nothing.

use std::collections::HashMap;
use std::sync::Arc;

use ephysd_proto::allego::{
    DashElement, FileDescriptor, GetSpikeSorterIDsReply, GetSpikeSorterParamCommandReply, IndicoDashboardPortStats,
    IndicoDashboardSiteIndicators, IndicoDashboardSiteStats, Port, SpikeSorterCommand as WireCommand,
    SpikeSorterCommandRequest, SpikeSorterDashboardGeneralRec, SpikeSorterDashboardReply, SpikeSorterDashboardRequest,
    SpikeSorterIsAnyActiveReply, SpikeSorterIsAnyActiveRequest, SpikeSorterParamCommand, SpikeSorterParamCommandRecord,
    SpikeSorterPhase, SpikeSorterSetParamRequest, SpikeSorterSetParamsRequest, SpikeSorterStandardRequest,
    SpikeSorterState, SpikeSorterStateSystem, SpikeSorterType, StandardReply,
};
use tonic::Status;

use super::{off_workers, status::healthy};
use crate::engine::{Engine, SorterView};
use crate::kpi::KpiMetric;
use crate::processing::{ChannelDetect, DetectUpdate, ParamCommand, SorterCommand, SorterPhase as Phase, SORTER_ID};

/// `GetSpikeSorterIDs`: the one live sorter.
pub fn sorter_ids() -> GetSpikeSorterIDsReply {
    GetSpikeSorterIDsReply { spike_sorter_i_ds: vec![SORTER_ID.to_string()] }
}

/// The sorter id a request names must be ours (an empty one means ours).
fn check_sorter(field: &str, id: Option<&str>) -> Result<(), Status> {
    match id {
        None | Some("") => Ok(()),
        Some(id) if id == SORTER_ID => Ok(()),
        Some(id) => {
            Err(Status::not_found(format!("{field} = {id:?}: no such sorter; the one sorter is {SORTER_ID:?}")))
        }
    }
}

/// `SpikeSorterCommand`.
pub async fn command(engine: &Arc<Engine>, request: &SpikeSorterCommandRequest) -> Result<StandardReply, Status> {
    check_sorter("spikeSorterID", Some(&request.spike_sorter_id))?;
    let command = match WireCommand::try_from(request.cmd) {
        Ok(WireCommand::SorterCmdOn) => SorterCommand::On,
        Ok(WireCommand::SorterCmdOff) => SorterCommand::Off,
        Ok(WireCommand::SorterCmdClearSort) => SorterCommand::ClearSort,
        Ok(WireCommand::SorterCmdRebase) => SorterCommand::Rebase,
        Ok(WireCommand::SorterCmdInit) => SorterCommand::Init,
        Err(_) => {
            return Err(Status::invalid_argument(format!(
                "cmd = {}: allowed SORTER_CMD_ON, SORTER_CMD_OFF, SORTER_CMD_CLEAR_SORT, SORTER_CMD_REBASE, SORTER_CMD_INIT",
                request.cmd
            )))
        }
    };
    off_workers(engine, move |e| e.sorter_command(command)).await?;
    Ok(healthy())
}

/// `SpikeSorterGetState`.
pub fn state(engine: &Engine, request: &SpikeSorterStandardRequest) -> Result<SpikeSorterState, Status> {
    check_sorter("spikeSorterID", request.spike_sorter_id.as_deref())?;
    Ok(state_of(&engine.sorter_view(), engine.processing_enabled()))
}

fn state_of(view: &SorterView, enabled: bool) -> SpikeSorterState {
    let (sys, phase) = match (enabled, view.phase) {
        (false, _) => (SpikeSorterStateSystem::SysNotConfigured, SpikeSorterPhase::SorterPhaseUnspecified),
        (true, Phase::Off) => (SpikeSorterStateSystem::SysOff, SpikeSorterPhase::SorterPhaseUnspecified),
        (true, Phase::Idle) => (SpikeSorterStateSystem::SysOn, SpikeSorterPhase::SorterPhaseUnspecified),
        (true, Phase::Detecting) => (SpikeSorterStateSystem::SysOn, SpikeSorterPhase::SorterPhaseDetecting),
    };
    let msg = match (enabled, view.phase) {
        (false, _) => "processing is off (processing.detection = false)".to_string(),
        (true, Phase::Idle) => format!("{}; waiting for the stream", view.message),
        _ => view.message.clone(),
    };
    SpikeSorterState {
        sys: sys as i32,
        frac_complete: Some(0.0),
        msg: Some(msg),
        is_on: Some(enabled && view.on),
        error_msg: Some(String::new()),
        warn_msg: Some(String::new()),
        phase: Some(phase as i32),
    }
}

/// `SpikeSorterIsAnyActive`.
pub fn is_any_active(engine: &Engine, request: &SpikeSorterIsAnyActiveRequest) -> SpikeSorterIsAnyActiveReply {
    let asked = request.spike_sorter_i_ds.is_empty() || request.spike_sorter_i_ds.iter().any(|id| id == SORTER_ID);
    let active = asked && engine.processing_enabled() && engine.sorter_view().on;
    SpikeSorterIsAnyActiveReply { is_any_active: active, active_spike_sorter_id: active.then(|| SORTER_ID.to_string()) }
}

/// `SpikeSorterGetParam`: every channel's detection parameters.
pub fn get_params(
    engine: &Engine,
    request: &SpikeSorterStandardRequest,
) -> Result<GetSpikeSorterParamCommandReply, Status> {
    check_sorter("spikeSorterID", request.spike_sorter_id.as_deref())?;
    let rate = engine.description().sample_rate_hz;
    let rec = engine.detect_settings().iter().enumerate().map(|(c, d)| record(c, d, rate)).collect();
    Ok(GetSpikeSorterParamCommandReply { spike_sorter_id: SORTER_ID.to_string(), rec })
}

fn record(channel: usize, d: &ChannelDetect, rate: f64) -> SpikeSorterParamCommandRecord {
    let pts = |s: f64| (s * rate).round() as i32;
    let window = [d.window_s[0], d.window_s[1], d.window_s[0] + d.window_s[1]];
    SpikeSorterParamCommandRecord {
        is_enabled: d.enabled,
        ntv_chan_idx: channel as i32,
        thr: d.thr_uv.to_vec(),
        thr_sd: d.thr_sd.to_vec(),
        thr_wdw_pts: window.iter().map(|&s| pts(s)).collect(),
        thr_wdw: window.to_vec(),
        shadow: d.shadow_s,
        shadow_pts: pts(d.shadow_s),
        is_set_thr: d.armed.to_vec(),
        weak_thr: d.weak_uv.to_vec(),
        weak_thr_sd: d.weak_sd.to_vec(),
        is_set_weak_thr: d.weak_armed.to_vec(),
        peak_wdw_pts: window[..2].iter().map(|&s| pts(s)).collect(),
        peak_wdw: window[..2].to_vec(),
        is_sd: d.is_sd,
        spike_width_sec: d.spike_width_s.to_vec(),
    }
}

/// `SpikeSorterSetParam`.
pub async fn set_param(engine: &Arc<Engine>, request: &SpikeSorterSetParamRequest) -> Result<StandardReply, Status> {
    let update = update_of("", request)?;
    off_workers(engine, move |e| e.update_detect(&[update])).await?;
    Ok(healthy())
}

/// `SpikeSorterSetParams`: every entry, or none.
pub async fn set_params(engine: &Arc<Engine>, request: &SpikeSorterSetParamsRequest) -> Result<StandardReply, Status> {
    let updates = request
        .params
        .iter()
        .enumerate()
        .map(|(i, p)| update_of(&format!("params[{i}]."), p))
        .collect::<Result<Vec<_>, _>>()?;
    off_workers(engine, move |e| e.update_detect(&updates)).await?;
    Ok(healthy())
}

fn update_of(prefix: &str, p: &SpikeSorterSetParamRequest) -> Result<DetectUpdate, Status> {
    check_sorter(&format!("{prefix}spikeSorterID"), Some(&p.spike_sorter_id))?;
    let command = match SpikeSorterParamCommand::try_from(p.cmd) {
        Ok(SpikeSorterParamCommand::SorterThrLevel) => ParamCommand::ThresholdUv,
        Ok(SpikeSorterParamCommand::SorterThrLevelSd) => ParamCommand::ThresholdSd,
        Ok(SpikeSorterParamCommand::SorterThrWdw) => ParamCommand::Window,
        Ok(SpikeSorterParamCommand::SorterWeakThrLevel) => ParamCommand::WeakUv,
        Ok(SpikeSorterParamCommand::SorterWeakThrLevelSd) => ParamCommand::WeakSd,
        Ok(SpikeSorterParamCommand::SorterShadow) => ParamCommand::Shadow,
        Ok(SpikeSorterParamCommand::SorterThrActivate) => ParamCommand::Activate,
        Ok(SpikeSorterParamCommand::SorterWeakThrActivate) => ParamCommand::WeakActivate,
        Ok(SpikeSorterParamCommand::SorterSpikeWidth) => ParamCommand::SpikeWidth,
        Err(_) => {
            return Err(Status::invalid_argument(format!(
                "{prefix}cmd = {}: allowed SORTER_THR_LEVEL, SORTER_THR_LEVEL_SD, SORTER_THR_WDW, SORTER_WEAK_THR_LEVEL, \
                 SORTER_WEAK_THR_LEVEL_SD, SORTER_SHADOW, SORTER_THR_ACTIVATE, SORTER_WEAK_THR_ACTIVATE, SORTER_SPIKE_WIDTH",
                p.cmd
            )))
        }
    };
    Ok(DetectUpdate {
        channels: p.ntv_chan_idx.iter().map(|&c| i64::from(c)).collect(),
        command,
        values: p.reg_float64.clone(),
        sides: p.reg_bool.clone(),
    })
}

/// `SpikeSorterGetDashboard`: the elements asked for (all of them when none are named).
pub fn dashboard(engine: &Engine, request: &SpikeSorterDashboardRequest) -> Result<SpikeSorterDashboardReply, Status> {
    check_sorter("spikeSorterID", Some(&request.spike_sorter_id))?;
    let mut wanted = Vec::with_capacity(request.dash_elements.len());
    for (i, &e) in request.dash_elements.iter().enumerate() {
        wanted.push(DashElement::try_from(e).map_err(|_| {
            Status::invalid_argument(format!("dashElements[{i}] = {e}: allowed ENABLED_PORTS (1) to AI (8)"))
        })?);
    }
    let wants = |e: DashElement| wanted.is_empty() || wanted.contains(&e);
    let view = engine.sorter_view();
    let description = engine.description();
    let enabled = engine.processing_enabled();
    let seconds = view.window_seconds.max(f64::MIN_POSITIVE);
    let rate = |c: usize| view.spikes.get(c).map_or(0.0, |&n| n as f64 / seconds);
    let noise = |c: usize| view.noise_uv.get(c).copied().flatten().map_or(0.0, f64::from);
    let channels = view.enabled.len();
    // SNR per site: the KPI worker's, over its averaging window (0 where it has none).
    let all: Vec<usize> = (0..channels).collect();
    let snr_table = engine.kpi().metrics(&all, &[KpiMetric::Snr], true).ok();
    let snr =
        |c: usize| snr_table.as_ref().and_then(|t| t.value(c, KpiMetric::Snr)).filter(|v| v.is_finite()).unwrap_or(0.0);
    let active = (0..channels).filter(|&c| view.spikes.get(c).is_some_and(|&n| n > 0)).count();
    let enabled_sites = view.enabled.iter().filter(|&&e| e).count();
    let ports: Vec<_> = description.ports.iter().filter(|p| p.channels > 0).collect();
    let mut reply = SpikeSorterDashboardReply::default();
    if wants(DashElement::EnabledPorts) {
        reply.enabled_ports =
            ports.iter().filter_map(|p| Port::try_from(p.port as i32).ok()).map(|p| p as i32).collect();
    }
    if wants(DashElement::General) {
        let processed: u64 = view.spikes.iter().sum();
        reply.general = Some(SpikeSorterDashboardGeneralRec {
            state: state_of(&view, enabled),
            sorter_type: SpikeSorterType::SorterSpikesStream as i32,
            sorter_id: SORTER_ID.to_string(),
            datasource_id: super::channels::LIVE_SIGNALS.to_string(),
            time_range: vec![0.0, view.window_seconds],
            num_total_sites: channels as i64,
            num_enabled_sites: enabled_sites as i64,
            num_active_sites: active as i64,
            num_neurons: 0,
            probe_yield: 0.0,
            site_yield: if channels == 0 { 0.0 } else { active as f64 / channels as f64 },
            num_spikes_processed: processed as i64,
            num_spikes_labeled: 0,
            sort_efficiency: 0.0,
            sink_desc: FileDescriptor::default(),
        });
    }
    if wants(DashElement::SiteStats) {
        reply.site_stats = Some(IndicoDashboardSiteStats {
            snr: (0..channels).map(snr).collect(),
            noise: (0..channels).map(noise).collect(),
            neuron_yield: vec![0.0; channels],
            num_neurons: 0,
        });
    }
    if wants(DashElement::PortStats) || wants(DashElement::SitePanel) {
        for p in &ports {
            let cs: Vec<usize> = (p.first_channel..p.first_channel + p.channels).collect();
            let letter = p.letter().to_string();
            if wants(DashElement::PortStats) {
                reply.port_stats.insert(
                    letter.clone(),
                    IndicoDashboardPortStats {
                        snr: cs.iter().map(|&c| snr(c)).collect(),
                        noise: cs.iter().map(|&c| noise(c)).collect(),
                        neuron_yield: vec![0.0; cs.len()],
                        sort_efficiency: 0.0,
                        num_enabled_sites: cs.iter().filter(|&&c| view.enabled.get(c) == Some(&true)).count() as i64,
                        num_neurons: 0,
                    },
                );
            }
            if wants(DashElement::SitePanel) {
                reply.site_panel.insert(
                    letter,
                    IndicoDashboardSiteIndicators {
                        ntv_chan_idx: cs.iter().map(|&c| c as i32).collect(),
                        snr: cs.iter().map(|&c| snr(c)).collect(),
                        noise: cs.iter().map(|&c| noise(c)).collect(),
                        neuron_yield: vec![0.0; cs.len()],
                        sort_efficiency: vec![0.0; cs.len()],
                        spike_rate: cs.iter().map(|&c| rate(c)).collect(),
                        pos_probe_x: Vec::new(),
                        pos_probe_y: Vec::new(),
                        pos_probe_z: Vec::new(),
                        site_num: cs.iter().map(|&c| (c - p.first_channel) as i32).collect(),
                    },
                );
            }
        }
    }
    reply.neuron_panel = HashMap::new();
    Ok(reply)
}
