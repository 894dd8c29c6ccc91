//! Digital triggers: `SetTriggerState`, `GetTriggerState`.

use std::sync::Arc;

use ephysd_proto::allego::{Port, SetTriggerRequest, StandardReply, TriggerChannel, TriggerState};
use tonic::Status;

use super::{off_workers, status::healthy};
use crate::engine::Engine;
use crate::recorder::{DigitalLine, Trigger};

/// `SetTriggerState`: enables or disables a trigger line; `T_NONE` disabled clears them all.
pub async fn set_trigger_state(engine: &Arc<Engine>, request: &SetTriggerRequest) -> Result<StandardReply, Status> {
    let channel = TriggerChannel::try_from(request.channel).map_err(|_| {
        Status::invalid_argument(format!(
            "channel = {}: allowed T_DIN_0..T_DIN_15 (0..15), T_DOUT_0..T_DOUT_15 (16..31), T_NONE (32)",
            request.channel
        ))
    })?;
    let port = request
        .port
        .map(|p| Port::try_from(p).map_err(|_| Status::invalid_argument(format!("port = {p}: allowed 0..=7 (A..H)"))))
        .transpose()?;
    if channel == TriggerChannel::TNone {
        if request.enabled {
            return Err(Status::invalid_argument(
                "channel = T_NONE with enabled = true: T_NONE only disables every trigger",
            ));
        }
        off_workers(engine, |e| e.disable_all_triggers()).await?;
        return Ok(healthy());
    }
    let line = line_of(channel);
    let d = engine.description();
    let lines = match line {
        DigitalLine::In(_) => d.digital_in_channels,
        DigitalLine::Out(_) => d.digital_out_channels,
    };
    let n = match line {
        DigitalLine::In(n) | DigitalLine::Out(n) => usize::from(n),
    };
    if n >= lines {
        return Err(Status::invalid_argument(format!(
            "channel = {}: {} has {lines} such lines",
            channel.as_str_name(),
            d.name
        )));
    }
    let port = match port {
        None => None,
        Some(p) => {
            let number = p as usize;
            if !d.ports.iter().any(|q| q.port == number) {
                return Err(Status::invalid_argument(format!(
                    "port = {}: {} has no amplifier channels on it",
                    p.as_str_name(),
                    d.name
                )));
            }
            Some(number)
        }
    };
    let trigger = Trigger { line, port };
    let enabled = request.enabled;
    off_workers(engine, move |e| e.set_trigger(trigger, enabled)).await?;
    Ok(healthy())
}

/// `GetTriggerState`: the enabled lines and the ports they apply to.
pub fn trigger_state(engine: &Engine) -> TriggerState {
    let triggers = engine.triggers();
    TriggerState {
        enabled_channels: triggers.iter().map(|t| channel_of(t.line) as i32).collect(),
        ports: triggers.iter().filter_map(|t| t.port).map(|p| p as i32).collect(),
    }
}

fn line_of(channel: TriggerChannel) -> DigitalLine {
    let value = channel as i32;
    if value < 16 {
        DigitalLine::In(value as u8)
    } else {
        DigitalLine::Out((value - 16) as u8)
    }
}

fn channel_of(line: DigitalLine) -> TriggerChannel {
    let value = match line {
        DigitalLine::In(n) => i32::from(n),
        DigitalLine::Out(n) => 16 + i32::from(n),
    };
    TriggerChannel::try_from(value).unwrap_or(TriggerChannel::TNone)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_and_lines_map_both_ways() {
        for value in 0..32 {
            let channel = TriggerChannel::try_from(value).unwrap();
            assert_eq!(channel_of(line_of(channel)), channel);
        }
        assert_eq!(line_of(TriggerChannel::TDin3), DigitalLine::In(3));
        assert_eq!(line_of(TriggerChannel::TDout0), DigitalLine::Out(0));
    }
}
