//! The driver of NeuroNexus SiNAPS active-pixel probes on a SmartBox Pro.
//!
//! A SiNAPS probe has up to four shanks of 256 active pixels (the 256-, 512- and 1024-channel
//! probes have one, two and four shanks). The SmartBox Pro puts an FPGA behind USB and is
//! driven, like the Rhythm boards, through the FrontPanel operations
//! ([`FrontPanel`](crate::frontpanel::FrontPanel)): Allego's `ReadWireOut` names FrontPanel's
//! wire-out. NeuroNexus has not published the FPGA's endpoint map, so the map this driver
//! speaks is ephysd's own model of it, in one file ([`endpoints`]), implemented by the
//! emulated SmartBox Pro ([`crate::emulator::sinaps`]).
//!
//! * [`endpoints`]: every wire, trigger and pipe the driver uses, and the MOSI register bank;
//! * [`bitfile`]: Xilinx `.bit` files, parsed and checked before anything is sent;
//! * [`mosi`]: the MOSI register bank, validated register by register;
//! * [`status`]: the status wire-outs decoded into [`SinapsStatus`];
//! * [`frame`]: the frame codec of the data pipe (magic and frame counter in every frame);
//! * [`board`]: bring-up, the [`Control`](crate::Control) side and the device backend;
//! * [`stream`]: [`SinapsSource`], the read side.
//!
//! The Allego methods that only a Sinaps device answers (`LoadAllMosi`, `TransmitMosi`,
//! `ReadWireOut`, `GetSinapsStatusRegisters`, `FlashSinaps`) reach it through
//! [`Control::sinaps`](crate::Control::sinaps), which is `None` on every other device.

pub mod bitfile;
pub mod board;
pub mod endpoints;
pub mod frame;
pub mod mosi;
pub mod status;
pub mod stream;

use std::path::Path;

use crate::device::DeviceError;

pub use bitfile::{Bitfile, BitfileError, BitfileProblem};
pub use board::{open_sinaps, SinapsBoard};
pub use mosi::MosiBank;
pub use status::SinapsStatus;
pub use stream::SinapsSource;

/// Pixels on one shank of a SiNAPS probe.
pub const PIXELS_PER_SHANK: usize = 256;
/// Most shanks a SiNAPS probe has.
pub const MAX_SHANKS: usize = 4;

/// A SiNAPS probe model on a SmartBox Pro, by its `device.backbone` name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SinapsModel {
    /// Its `device.backbone` name (`smartbox-pro-sinaps-256`, ...).
    pub backbone: &'static str,
    /// Its name in the emulator's spec (`sinaps-256`, ...).
    pub emulator_board: &'static str,
    /// Shown in status and written into recordings.
    pub name: &'static str,
    /// Shanks of 256 pixels.
    pub shanks: usize,
}

impl SinapsModel {
    /// The three probe models, by channel count.
    pub const ALL: [SinapsModel; 3] = [
        SinapsModel {
            backbone: "smartbox-pro-sinaps-256",
            emulator_board: "sinaps-256",
            name: "SmartBox Pro, SiNAPS 256-channel probe",
            shanks: 1,
        },
        SinapsModel {
            backbone: "smartbox-pro-sinaps-512",
            emulator_board: "sinaps-512",
            name: "SmartBox Pro, SiNAPS 512-channel probe",
            shanks: 2,
        },
        SinapsModel {
            backbone: "smartbox-pro-sinaps-1024",
            emulator_board: "sinaps-1024",
            name: "SmartBox Pro, SiNAPS 1024-channel probe",
            shanks: 4,
        },
    ];

    /// The model `backbone` names, if it is a Sinaps backbone.
    pub fn from_backbone(backbone: &str) -> Option<SinapsModel> {
        SinapsModel::ALL.into_iter().find(|m| m.backbone == backbone)
    }

    /// The model the emulator's `board=` value names (`sinaps-256`, ...).
    pub fn from_emulator_board(board: &str) -> Option<SinapsModel> {
        SinapsModel::ALL.into_iter().find(|m| m.emulator_board == board)
    }

    /// The model with `channels` pixels (256, 512 or 1024).
    pub fn from_channels(channels: usize) -> Option<SinapsModel> {
        SinapsModel::ALL.into_iter().find(|m| m.channels() == channels)
    }

    /// Pixels across every shank.
    pub const fn channels(&self) -> usize {
        self.shanks * PIXELS_PER_SHANK
    }
}

/// Every Sinaps `device.backbone` name.
pub fn backbones() -> impl Iterator<Item = &'static str> {
    SinapsModel::ALL.into_iter().map(|m| m.backbone)
}

/// Why a Sinaps request was refused or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinapsError {
    /// A value the probe or the FPGA cannot take; nothing was sent.
    #[error("{field} = {value}: allowed {allowed}")]
    InvalidArgument {
        /// The field as radiens-core names it, with the index where it is a list
        /// (`register_vals[5]`).
        field: String,
        /// The value given.
        value: String,
        /// What is allowed.
        allowed: String,
    },
    /// A bitfile that cannot be flashed; nothing was sent.
    #[error(transparent)]
    Bitfile(#[from] BitfileError),
    /// The request needs the device idle and it is streaming.
    #[error("{device} cannot {what} while streaming; stop streaming first")]
    Streaming {
        /// The device's name.
        device: String,
        /// What was asked, as a verb phrase.
        what: &'static str,
    },
    /// Transmit was asked with no complete MOSI bank loaded.
    #[error("{device}: no MOSI register bank is loaded; load one (LoadAllMosi) before transmitting it")]
    NothingLoaded {
        /// The device's name.
        device: String,
    },
    /// The FPGA did not take the new configuration.
    #[error("{device}: after configuring the FPGA from {path} it reports firmware {found:?}, not the file's design {expected:?}")]
    NotConfigured {
        /// The device's name.
        device: String,
        /// The bitfile.
        path: String,
        /// The design name the file holds.
        expected: String,
        /// What the FPGA reports.
        found: String,
    },
    /// The device failed while carrying the request out.
    #[error(transparent)]
    Device(#[from] DeviceError),
}

/// The operations only a SmartBox Pro with a SiNAPS probe has: Allego's Sinaps methods.
/// Reached through [`Control::sinaps`](crate::Control::sinaps). Every call is validated
/// before anything reaches the FPGA.
pub trait SinapsControl: Send {
    /// Loads the MOSI register bank (`register_vals`, one value per register of
    /// [`endpoints::mosi`]) into the FPGA, without sending it to the probe yet.
    fn load_all_mosi(&mut self, register_vals: &[i32]) -> Result<(), SinapsError>;

    /// Sends the loaded bank to the probe, which then runs with it (pixels, reference
    /// voltages, calibration).
    fn transmit_mosi(&mut self) -> Result<(), SinapsError>;

    /// Samples the wire-outs and returns the one at `address` (`0x20..=0x3f`).
    fn read_wire_out(&mut self, address: i64) -> Result<u32, SinapsError>;

    /// The FPGA's status registers, decoded.
    fn status(&mut self) -> Result<SinapsStatus, SinapsError>;

    /// Configures the FPGA from `bitfile` (a Xilinx `.bit` file, checked whole first), brings
    /// the probe up again and checks the FPGA reports the file's design. Refused while
    /// streaming.
    fn flash(&mut self, bitfile: &Path) -> Result<(), SinapsError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_models_have_one_to_four_shanks() {
        let channels: Vec<usize> = SinapsModel::ALL.iter().map(|m| m.channels()).collect();
        assert_eq!(channels, [256, 512, 1024]);
        assert_eq!(SinapsModel::from_backbone("smartbox-pro-sinaps-512").unwrap().shanks, 2);
        assert_eq!(SinapsModel::from_emulator_board("sinaps-1024").unwrap().shanks, 4);
        assert_eq!(SinapsModel::from_channels(256).unwrap().backbone, "smartbox-pro-sinaps-256");
        assert!(SinapsModel::from_backbone("smartbox-pro").is_none());
        assert_eq!(backbones().count(), 3);
    }
}
