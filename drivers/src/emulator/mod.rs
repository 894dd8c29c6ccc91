//! The emulated board: a software model of a Rhythm-family FPGA and the RHD or RHS2116 chips
//! on its ports, speaking the FrontPanel operations ([`EmulatedPanel`] implements
//! [`FrontPanel`](crate::frontpanel::FrontPanel)).
//!
//! It is how the board drivers run end to end without hardware, through exactly the code
//! that drives a real board: the driver programs the clock, uploads command lists, scans
//! cable delays and reads frames; the emulator runs those command lists against chip models
//! ([`chip`], [`rhs_chip`]) whose ROM identifies them and whose ADC samples the simulated
//! device's signal,
//! and assembles byte-exact USB frames with the frame codec. Each electrode has an impedance
//! ([`chip::electrodes`]), which the chips' impedance check drives its test current through.
//! Faults can be injected ([`Fault`]): unplugging, a stalled or paused pipe, a corrupted magic
//! number, dropped frames; a host that reads too late overflows its FIFO (of the board's real
//! size).
//!
//! The SmartBox Pro with a SiNAPS probe has a model of its own, [`sinaps`], chosen with
//! `board=sinaps-256`, `sinaps-512` or `sinaps-1024` ([`EmulatedBoardSpec`] reads either).
//!
//! Two ways in: in process (`device.frontpanel = "emulated"`, [`EmulatorProvider`]), or
//! through the vendor library's C entry points, which the `okfp-emu` crate exports from a
//! shared library that the production loading path opens like `libokFrontPanel.so`.
//!
//! XDAQ with RHS headstages (`xdaq-rhs-gen1`, `xdaq-rhs-gen2`) is played with the RHS map's command-list pipe-ins, four aux slots, one stream per RHS2116, the AC
//! and DC amplifier words. Intan's own RHS controller is not emulated.
//!
//! XDAQ with RHS headstages also stimulates: the FPGA's stimulation sequencers and their
//! flags in every frame, the RHS2116's stimulators driving the electrodes' impedance
//! ([`rhs_chip`]); the DACs play into the RHS frames and, on USB 3 RHD boards, back into the
//! analog inputs; the chips' fast settle holds their amplifiers at baseline.
//!
//! What it does not model: analog front-end filtering (the chips' bandwidth registers are
//! stored, not applied), the compliance monitor, and the electrical detail of a wrong MISO
//! delay (the bits simply slip).

pub mod chip;
mod panel;
pub mod rhs_chip;
pub mod sinaps;
mod spec;
mod world;

use std::sync::Arc;

pub use panel::{
    board_mode, signal_config, EmulatedPanel, EmulatorCounters, EMULATED_BOARD_ID, EMULATED_BOARD_VERSION,
};
pub use spec::{EmulatedBoardSpec, EmulatedPort, EmulatorSpec, EmulatorSpecError, Fault, TtlPattern, SPEC_ENV};
pub use world::World;

use crate::frontpanel::{FrontPanel, FrontPanelError, ListedPanel, PanelProvider};
use crate::rhythm::Board;

/// Board modes the emulated boards report on wire-out 0x25: Intan's values (RHX
/// `rhxglobals.h`: RHD USB interface board 0, RHD controller 13, RHS controller 14). The Open
/// Ephys board runs the USB interface board's firmware; XDAQ reports a value no public source
/// documents, so the emulator gives the RHD controller's (RHD headstages) or the RHS
/// controller's (RHS headstages). No public source gives the Open Ephys USB 3 board's mode
/// either (its driver only prints it, `Rhd2000EvalBoard::getBoardMode`); it reads 0, and the
/// driver does not use it.
pub(crate) const BOARD_MODES: [(Board, u32); 6] = [
    (Board::RhdUsbInterface, 0),
    (Board::OpenEphys, 0),
    (Board::RhdController, 13),
    (Board::RhsController, 14),
    (Board::XdaqRhd(crate::rhythm::XdaqGeneration::One), 13),
    (Board::XdaqRhs(crate::rhythm::XdaqGeneration::One), 14),
];

/// The emulated board as a device provider: it lists one board (while it is plugged in)
/// and opens it by serial.
#[derive(Debug, Clone)]
pub struct EmulatorProvider {
    spec: EmulatorSpec,
    world: Arc<World>,
}

impl EmulatorProvider {
    /// A board of its own, alone on its bus.
    pub fn new(spec: EmulatorSpec) -> EmulatorProvider {
        EmulatorProvider { spec, world: Arc::new(World::default()) }
    }

    /// The board `spec` describes, shared with every earlier provider of this process for the
    /// same spec.
    pub fn shared(spec: EmulatorSpec) -> EmulatorProvider {
        let world = World::shared(spec.to_string());
        EmulatorProvider { spec, world }
    }

    pub fn spec(&self) -> &EmulatorSpec {
        &self.spec
    }

    /// The board's presence and fired faults, shared with every panel this provider opens.
    pub fn world(&self) -> &Arc<World> {
        &self.world
    }

    /// Opens the board as its concrete type (tests read its counters and chip registers).
    pub fn open_emulated(&self) -> Result<EmulatedPanel, FrontPanelError> {
        if !self.world.present() {
            return Err(FrontPanelError::NotFound { serial: self.spec.serial.clone(), attached: "none".into() });
        }
        Ok(EmulatedPanel::with_world(&self.spec, self.world.clone()))
    }
}

impl PanelProvider for EmulatorProvider {
    fn describe(&self) -> String {
        format!("emulated board ({})", self.spec)
    }

    fn list(&self) -> Result<Vec<ListedPanel>, FrontPanelError> {
        Ok(if self.world.present() {
            vec![ListedPanel { serial: self.spec.serial.clone(), model: self.spec.model().into() }]
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
