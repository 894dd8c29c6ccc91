//! The emulated SmartBox Pro with a SiNAPS probe: a software model of its FPGA
//! ([`SinapsPanel`], implementing ephysd's model of the interface,
//! [`crate::sinaps::endpoints`]) behind the FrontPanel operations, so the Sinaps driver runs
//! end to end without hardware, in process (`device.frontpanel = "emulated"`,
//! [`SinapsEmulatorProvider`]) or through the `okfp-emu` library's C entry points (an
//! `OKFP_EMU_SPEC` whose `board=` is `sinaps-256`, `sinaps-512` or `sinaps-1024`).
//!
//! The pixels carry the simulated rig's signal ([`sinaps_signal_config`]): with every pixel
//! on, the frames hold exactly the [`SimulatedSource`](crate::sim::SimulatedSource)'s samples;
//! a pixel switched off through the MOSI bank reads 0. Faults (`corrupt`, `drop`, `stall`,
//! `unplug`) act as on the emulated Rhythm boards.

mod fpga;
mod spec;

use std::sync::Arc;

pub use fpga::{sinaps_signal_config, SinapsEmulatorCounters, SinapsPanel, EMULATED_PROBE_GENERATION};
pub use spec::{is_sinaps_spec, SinapsEmulatorSpec, DEFAULT_FIRMWARE};

use super::World;
use crate::frontpanel::{FrontPanel, FrontPanelError, ListedPanel, PanelProvider};

/// The emulated SmartBox Pro as a device provider: it lists one box (while it is plugged in)
/// and opens it by serial.
#[derive(Debug, Clone)]
pub struct SinapsEmulatorProvider {
    spec: SinapsEmulatorSpec,
    world: Arc<World>,
}

impl SinapsEmulatorProvider {
    /// A box of its own, alone on its bus.
    pub fn new(spec: SinapsEmulatorSpec) -> SinapsEmulatorProvider {
        SinapsEmulatorProvider { spec, world: Arc::new(World::default()) }
    }

    /// The box `spec` describes, shared with every earlier provider of this process for the
    /// same spec.
    pub fn shared(spec: SinapsEmulatorSpec) -> SinapsEmulatorProvider {
        let world = World::shared(spec.to_string());
        SinapsEmulatorProvider { spec, world }
    }

    pub fn spec(&self) -> &SinapsEmulatorSpec {
        &self.spec
    }

    /// The box's presence and fired faults.
    pub fn world(&self) -> &Arc<World> {
        &self.world
    }

    /// Opens the box as its concrete type (tests read its counters and bank).
    pub fn open_emulated(&self) -> Result<SinapsPanel, FrontPanelError> {
        if !self.world.present() {
            return Err(FrontPanelError::NotFound { serial: self.spec.serial.clone(), attached: "none".into() });
        }
        Ok(SinapsPanel::with_world(&self.spec, Arc::clone(&self.world)))
    }
}

impl PanelProvider for SinapsEmulatorProvider {
    fn describe(&self) -> String {
        format!("emulated SmartBox Pro ({})", self.spec)
    }

    fn list(&self) -> Result<Vec<ListedPanel>, FrontPanelError> {
        Ok(if self.world.present() {
            vec![ListedPanel { serial: self.spec.serial.clone(), model: self.spec.module().into() }]
        } else {
            Vec::new()
        })
    }

    fn open(&self, serial: Option<&str>) -> Result<Box<dyn FrontPanel>, FrontPanelError> {
        let attached = if self.world.present() { self.spec.serial.clone() } else { "none".into() };
        match serial {
            Some(s) if !s.is_empty() && s != self.spec.serial => {
                Err(FrontPanelError::NotFound { serial: s.to_string(), attached })
            }
            _ => Ok(Box::new(self.open_emulated()?)),
        }
    }
}
