//! The core configuration: sample rate, cable delays, and which device mode runs.
//!
//! Changing the rate or the mode reopens the device, so both are refused while the stream
//! runs (a client stops streaming first, as Allego requires). The new device is opened
//! before the old one is let go: if it cannot be opened, the daemon keeps running exactly as
//! it was and the client is told why.

use std::sync::Arc;

use ephysd_drivers::{DeviceDescription, DeviceSpec};

use super::channels::{resolve_probes, ChannelTable, SignalKind};
use super::{Engine, EngineError, State};

/// The longest cable delay a Rhythm board can be set to, in sample-clock steps (a 4-bit
/// register per port).
pub const MAX_CABLE_DELAY: u8 = 15;

/// How a port's cable delay is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CableDelay {
    /// The board finds it from the cable (the default).
    Auto,
    /// A fixed delay, 0..=[`MAX_CABLE_DELAY`] steps.
    Fixed(u8),
}

impl CableDelay {
    /// One automatic delay per port of `d`.
    pub fn defaults(d: &DeviceDescription) -> Vec<CableDelay> {
        vec![CableDelay::Auto; d.ports.len()]
    }

    /// The fixed delay, or `None` for the device's own choice.
    pub fn steps(self) -> Option<u8> {
        match self {
            CableDelay::Auto => None,
            CableDelay::Fixed(steps) => Some(steps),
        }
    }
}

/// What `update_core` changes; `None` leaves a setting as it is.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CoreUpdate {
    /// A new sample rate, frames per second.
    pub sample_rate_hz: Option<f64>,
    /// A new cable delay for one port (0 = A).
    pub cable_delay: Option<(usize, CableDelay)>,
}

impl CoreUpdate {
    /// Whether the update changes nothing.
    pub fn is_empty(&self) -> bool {
        self.sample_rate_hz.is_none() && self.cable_delay.is_none()
    }
}

impl Engine {
    /// The cable delay of each port, in port order.
    pub fn cable_delays(&self) -> Vec<CableDelay> {
        self.view().cable_delays.clone()
    }

    /// Applies `update`. An empty update is always accepted; anything else is refused while
    /// streaming. A new sample rate reopens the device at that rate (cable delays, channel
    /// selection and groups are kept).
    pub fn update_core(&self, update: CoreUpdate) -> Result<(), EngineError> {
        if update.is_empty() {
            return Ok(());
        }
        let mut st = self.lock();
        if st.stream.is_some() {
            return Err(EngineError::StreamingOn { action: "changing the core configuration" });
        }
        // The port's place among the device's ports (they need not be A, B, C... in a row).
        let cable = match update.cable_delay {
            Some((port, delay)) => {
                let Some(at) = st.description.ports.iter().position(|p| p.port == port) else {
                    let letters: Vec<String> = st.description.ports.iter().map(|p| p.letter().to_string()).collect();
                    return Err(EngineError::InvalidArgument {
                        field: "cableDelay.port".into(),
                        value: format!("{:?}", port_letter(port)),
                        allowed: format!("a port of this device: {}", letters.join(", ")),
                    });
                };
                Some((port, at, delay))
            }
            None => None,
        };
        if let Some(CableDelay::Fixed(steps)) = update.cable_delay.map(|(_, d)| d) {
            if steps > MAX_CABLE_DELAY {
                return Err(EngineError::InvalidArgument {
                    field: "cableDelay.cableDelay".into(),
                    value: steps.to_string(),
                    allowed: format!("allowed 0..={MAX_CABLE_DELAY}, or isAuto = true"),
                });
            }
        }
        // Asking for the rate the device already runs at changes nothing (a replay has only its
        // recording's).
        if let Some(hz) = update.sample_rate_hz.filter(|hz| (hz - st.description.sample_rate_hz).abs() > 0.01) {
            let spec = st.device.spec().with_sample_rate(hz).map_err(|e| EngineError::InvalidArgument {
                field: "sampFreq".into(),
                value: hz.to_string(),
                allowed: e.allowed,
            })?;
            if spec.sample_rate_hz() != st.description.sample_rate_hz {
                self.reopen_locked(&mut st, &spec, false)?;
                tracing::info!(sample_rate_hz = spec.sample_rate_hz(), "sample rate changed");
            }
        }
        if let Some((port, at, delay)) = cable {
            st.device.control().set_cable_delay(port, delay.steps())?;
            st.cable_delays[at] = delay;
            tracing::info!(port = %port_letter(port), ?delay, "cable delay set");
        }
        self.publish(&st);
        Ok(())
    }

    /// Reopens the device in another mode (`backbone`, as `device.backbone` names modes),
    /// keeping channels and rate. Refused while streaming. Cable delays return to automatic,
    /// triggers are disabled and channel selection and groups start afresh. If the mode
    /// cannot be opened, nothing changes.
    pub fn restart(&self, backbone: &str) -> Result<(), EngineError> {
        let mut st = self.lock();
        if st.stream.is_some() {
            return Err(EngineError::StreamingOn { action: "restarting the device" });
        }
        let spec = st.device.spec().with_backbone(backbone).map_err(|e| EngineError::DeviceUnavailable {
            backbone: backbone.to_string(),
            reason: format!("no driver for it is available ({})", e.allowed),
        })?;
        self.reopen_locked(&mut st, &spec, true)?;
        st.triggers.clear();
        tracing::info!(device = %st.description.name, "device restarted");
        self.publish(&st);
        Ok(())
    }

    /// Opens `spec` and, only once it is open and its ports fit the probe maps, replaces the
    /// current device with it. `fresh` starts cable delays, selection and groups afresh (they
    /// are also reset where the new device's channels differ).
    pub(super) fn reopen_locked(&self, st: &mut State, spec: &DeviceSpec, fresh: bool) -> Result<(), EngineError> {
        let mut device = crate::replay::open_device(spec).map_err(|e| EngineError::DeviceUnavailable {
            backbone: spec.backbone().to_string(),
            reason: e.to_string(),
        })?;
        let description = Arc::new(device.description().clone());
        let probes = resolve_probes(&st.probe_keys, &description)?;
        // Fixed delays kept across the reopen (same ports) are set on the new device too.
        if !fresh && description.ports == st.description.ports {
            for (p, delay) in description.ports.iter().zip(&st.cable_delays) {
                if let CableDelay::Fixed(steps) = delay {
                    device.control().set_cable_delay(p.port, Some(*steps))?;
                }
            }
        }
        let measured = super::measure_impedance(&mut device, &description);
        // A board measures on request: its last measurement stands while its ports are the same.
        if measured.is_some() || description.ports != st.description.ports {
            st.impedance = measured;
        }
        if fresh || description.ports != st.description.ports {
            st.cable_delays = CableDelay::defaults(&description);
        }
        let same_channels = SignalKind::ALL.iter().all(|k| k.count(&description) == k.count(&st.description));
        if fresh || !same_channels {
            st.channels = Arc::new(ChannelTable::new(&description));
        }
        st.probes = Arc::new(probes);
        for dropped in st.processing.device_changed(&description) {
            tracing::warn!("filter dropped with the device change: {dropped}");
        }
        st.device = device;
        st.description = description;
        st.dataset_uid = uuid::Uuid::new_v4().to_string();
        Ok(())
    }
}

/// A port number as its letter ("A"), or the number if it is no port.
fn port_letter(port: usize) -> String {
    if port < 8 {
        ((b'A' + port as u8) as char).to_string()
    } else {
        port.to_string()
    }
}
