//! The core configuration: `GetConfig`, `SetConfigCore`, `Restart`.

use std::collections::HashMap;
use std::sync::Arc;

use ephysd_proto::allego::{
    BackboneMode, CableDelay as WireCableDelay, CableDelays, ConfigCore, Port, RestartRequest, SetConfigCoreRequest,
    StandardReply,
};
use tonic::Status;

use super::{backbone, off_workers, status::healthy};
use crate::engine::{CableDelay, CoreUpdate, Engine};

/// `GetConfig`: the core configuration, from the open device and the engine's settings.
pub fn config_core(engine: &Engine, core_address: &str) -> Result<ConfigCore, Status> {
    let d = engine.description();
    let block_ms = d.layout.frames_per_block as f64 / d.sample_rate_hz * 1000.0;
    let mode = backbone::mode_of(d.backbone)
        .ok_or_else(|| Status::internal(format!("device.backbone {:?} has no Allego BackboneMode", d.backbone)))?;
    let cable_delays = d
        .ports
        .iter()
        .zip(engine.cable_delays())
        .map(|(p, delay)| {
            let (cable_delay, is_auto) = match delay {
                CableDelay::Auto => (0, true),
                CableDelay::Fixed(steps) => (i32::from(steps), false),
            };
            (p.port as i32, WireCableDelay { port: p.port as i32, cable_delay, is_auto })
        })
        .collect::<HashMap<_, _>>();
    Ok(ConfigCore {
        allego_core_server_port: core_address.to_string(),
        base_samp_freq: d.sample_rate_hz,
        stream_loop_dur_ms: block_ms.round().max(1.0) as i32,
        cable_delays: CableDelays { cable_delays },
        backbone_mode: mode as i32,
        has_xdaqgpio_expander: false,
    })
}

/// `SetConfigCore`: a new sample rate and/or one port's cable delay. `loopDur` and
/// `pcachePersistence` are accepted and have no effect (the block size and cache length are
/// `device.frames_per_block` and `cache.seconds`), as radiens-core documents.
pub async fn set_config_core(engine: &Arc<Engine>, request: &SetConfigCoreRequest) -> Result<StandardReply, Status> {
    for (field, value) in [("loopDur", request.loop_dur), ("pcachePersistence", request.pcache_persistence)] {
        if let Some(v) = value.filter(|v| !v.is_finite()) {
            return Err(Status::invalid_argument(format!("{field} = {v}: allowed a finite number (it is not used)")));
        }
    }
    let sample_rate_hz = match request.samp_freq {
        Some(hz) if !hz.is_finite() || hz <= 0.0 => {
            return Err(Status::invalid_argument(format!(
                "sampFreq = {hz}: allowed: {}",
                ephysd_drivers::rates::rate_list()
            )))
        }
        other => other,
    };
    let cable_delay = match &request.cable_delay {
        None => None,
        Some(c) => {
            let port = Port::try_from(c.port)
                .map_err(|_| Status::invalid_argument(format!("cableDelay.port = {}: allowed 0..=7 (A..H)", c.port)))?;
            let delay = if c.is_auto {
                CableDelay::Auto
            } else {
                let steps = u8::try_from(c.cable_delay).map_err(|_| {
                    Status::invalid_argument(format!(
                        "cableDelay.cableDelay = {}: allowed 0..={}, or isAuto = true",
                        c.cable_delay,
                        crate::engine::MAX_CABLE_DELAY
                    ))
                })?;
                CableDelay::Fixed(steps)
            };
            Some((port as usize, delay))
        }
    };
    let update = CoreUpdate { sample_rate_hz, cable_delay };
    off_workers(engine, move |e| e.update_core(update)).await?;
    Ok(healthy())
}

/// `Restart`: reopens the device in another mode (refused while streaming; a mode that
/// cannot be opened leaves everything as it was).
pub async fn restart(engine: &Arc<Engine>, request: &RestartRequest) -> Result<StandardReply, Status> {
    let mode = BackboneMode::try_from(request.mode).map_err(|_| {
        Status::invalid_argument(format!("mode = {}: allowed a BackboneMode (0..=9, 13..=25)", request.mode))
    })?;
    let name = backbone::name_of(mode)
        .ok_or_else(|| Status::invalid_argument(format!("mode = {}: no device has this mode", mode.as_str_name())))?;
    // The client knows the mode by its enum name, the daemon's messages by its backbone name.
    off_workers(engine, move |e| e.restart(name))
        .await
        .map_err(|s| Status::new(s.code(), format!("mode = {}: {}", mode.as_str_name(), s.message())))?;
    Ok(healthy())
}
