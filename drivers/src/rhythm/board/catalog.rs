//! Which board each `device.backbone` name drives, and why the others are refused.
//!
//! Allego's `BackboneMode` list names device families; those with RHD headstages on a
//! Rhythm-family FPGA, and XDAQ with RHS headstages (the `*-stim` modes), map to a [`Board`]
//! and this driver. The `*-stim` modes record and stimulate: their RHS2116 amplifiers stream
//! like any other channel, and `can_stimulate` is true (pulses through the chips' stimulators
//! and the FPGA's stimulation sequencers: [`super::stim`], [`super::outputs`]). The SmartBox
//! Pro with SiNAPS probes (`smartbox-pro-sinaps-*`) has its own driver ([`crate::sinaps`])
//! and is not a board of this catalog. The SmartBox (`smartbox-pro`, `smartbox-classic`) gets
//! one clear sentence instead: its protocol is not public.

use crate::rhythm::{Board, XdaqGeneration};

/// A board model the driver brings up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoardModel {
    /// Its `device.backbone` name.
    pub backbone: &'static str,
    pub board: Board,
    /// Shown in status and written into recordings.
    pub name: &'static str,
    /// SPI ports with headstage connectors.
    pub ports: usize,
}

/// Every RHD board model, by backbone name.
pub const MODELS: [BoardModel; 7] = [
    BoardModel {
        backbone: "intan-usb2",
        board: Board::RhdUsbInterface,
        name: "Intan RHD USB interface board",
        ports: 4,
    },
    BoardModel { backbone: "open-ephys-usb2", board: Board::OpenEphys, name: "Open Ephys acquisition board", ports: 4 },
    BoardModel {
        backbone: "intan-recording-controller-512",
        board: Board::RhdController,
        name: "Intan RHD 512-channel recording controller",
        ports: 4,
    },
    BoardModel {
        backbone: "intan-recording-controller-1024",
        board: Board::RhdController,
        name: "Intan RHD 1024-channel recording controller",
        ports: 8,
    },
    // XDAQ: 4 HDMI ports of 2 SPI ports each (pyxdaq `XDAQPorts`), as many as the Intan
    // controller's 8; how many carry channels depends on the model and shows in the scan.
    BoardModel {
        backbone: "xdaq-one-rec",
        board: Board::XdaqRhd(XdaqGeneration::One),
        name: "KonteX XDAQ One",
        ports: 8,
    },
    BoardModel {
        backbone: "xdaq-core-rec",
        board: Board::XdaqRhd(XdaqGeneration::One),
        name: "KonteX XDAQ Core",
        ports: 8,
    },
    BoardModel {
        backbone: "xdaq-gen2-one-rec",
        board: Board::XdaqRhd(XdaqGeneration::Two),
        name: "KonteX XDAQ One (gen 2)",
        ports: 8,
    },
];

/// The Open Ephys acquisition board's USB 3 version (Allego `OPEN_EPHYS_USB3`): an Opal
/// Kelly XEM6310-LX45 with Open Ephys's `rhd2000_usb3.bit` (board id 600), the USB 2 board's
/// frame with up to 16 streams and Open Ephys's USB 3 map
/// ([`Interface::OpenEphysUsb3`](crate::rhythm::endpoints::Interface::OpenEphysUsb3)). Four
/// headstage ports A–D, two MISO lines each (open-ephys-plugins/acquisition-board
/// `Rhd2000EvalBoard::setCableDelay` and `BoardDataSource`; `AcqBoardOpalKelly::scanPorts`).
const OPEN_EPHYS_USB3: BoardModel = BoardModel {
    backbone: "open-ephys-usb3",
    board: Board::OpenEphysUsb3,
    name: "Open Ephys acquisition board (USB 3)",
    ports: 4,
};

/// Gen 2 XDAQ Core shares the One's frame and map.
const XDAQ_GEN2_CORE: BoardModel = BoardModel {
    backbone: "xdaq-gen2-core-rec",
    board: Board::XdaqRhd(XdaqGeneration::Two),
    name: "KonteX XDAQ Core (gen 2)",
    ports: 8,
};

/// XDAQ with RHS headstages (Allego's `XdaqOneStim`, ...): 4 ports of two MISO lines, one
/// RHS2116 on each (pyxdaq `XDAQPorts.default(2, 1, False)`; kontex-neuro/Intan-RHX starts its
/// stim/record controller with 4 SPI ports). How many ports carry headstages depends on the
/// model and shows in the scan. They record and stimulate.
pub const RHS_MODELS: [BoardModel; 4] = [
    BoardModel {
        backbone: "xdaq-one-stim",
        board: Board::XdaqRhs(XdaqGeneration::One),
        name: "KonteX XDAQ One (RHS)",
        ports: 4,
    },
    BoardModel {
        backbone: "xdaq-core-stim",
        board: Board::XdaqRhs(XdaqGeneration::One),
        name: "KonteX XDAQ Core (RHS)",
        ports: 4,
    },
    BoardModel {
        backbone: "xdaq-gen2-one-stim",
        board: Board::XdaqRhs(XdaqGeneration::Two),
        name: "KonteX XDAQ One (gen 2, RHS)",
        ports: 4,
    },
    BoardModel {
        backbone: "xdaq-gen2-core-stim",
        board: Board::XdaqRhs(XdaqGeneration::Two),
        name: "KonteX XDAQ Core (gen 2, RHS)",
        ports: 4,
    },
];

fn all_models() -> impl Iterator<Item = &'static BoardModel> {
    MODELS
        .iter()
        .chain(std::iter::once(&OPEN_EPHYS_USB3))
        .chain(std::iter::once(&XDAQ_GEN2_CORE))
        .chain(RHS_MODELS.iter())
}

/// What `backbone` names: a board model, or why this version does not drive it (`Ok(None)`:
/// not a hardware backbone at all).
pub fn model_of(backbone: &str) -> Result<Option<BoardModel>, String> {
    if let Some(m) = all_models().find(|m| m.backbone == backbone) {
        return Ok(Some(*m));
    }
    let refusal = match backbone {
        "smartbox-pro" | "smartbox-classic" => {
            format!(
                "{backbone}: the SmartBox protocol is not public, so ephysd cannot drive it; use its vendor software"
            )
        }
        _ => return Ok(None),
    };
    Err(refusal)
}

/// Every backbone name this version drives hardware through.
pub fn driven_backbones() -> Vec<&'static str> {
    all_models().map(|m| m.backbone).collect()
}
