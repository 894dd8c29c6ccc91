//! The SmartBox Pro's FPGA interface as ephysd drives it: every FrontPanel endpoint, the bits
//! of each register, the MOSI register bank and the frame of the data pipe.
//!
//! **This map is ephysd's own model of the SmartBox Pro interface, implemented by the
//! emulator** ([`crate::emulator::sinaps`]). NeuroNexus has not published the FPGA's endpoint
//! map; what is public is that the box is reached through Opal Kelly's FrontPanel operations
//! (Allego's `ReadWireOut` names FrontPanel's wire-out), that a SiNAPS probe has up to four
//! shanks of 256 active pixels, and that its FPGA is flashed from a Xilinx `.bit` file. Every
//! address, bit, scale and register below is this model's choice. A lab with the vendor's map
//! replaces this file (and the emulator follows it); nothing else in the driver names an
//! endpoint or a bit.
//!
//! Endpoint ranges follow FrontPanel's convention ([`crate::frontpanel`]).

// ---------------------------------------------------------------------------------------------
// Wire-ins
// ---------------------------------------------------------------------------------------------

/// Reset and run control.
pub const WIRE_IN_CONTROL: u8 = 0x00;
/// [`WIRE_IN_CONTROL`]: a rising edge resets the FPGA (stream stopped, FIFO emptied, probe
/// registers back to power-on: every pixel off, reference voltages 0).
pub const CONTROL_RESET: u32 = 1 << 0;
/// [`WIRE_IN_CONTROL`]: set, the FPGA streams frames into the FIFO from frame counter 0;
/// cleared, it stops.
pub const CONTROL_RUN: u32 = 1 << 1;
/// The sample rate per pixel, in millihertz (30 kS/s is 30 000 000); a rate the probe cannot
/// run at leaves the clock unlocked ([`STATUS_CLOCK_LOCKED`] clear).
pub const WIRE_IN_SAMPLE_RATE_MHZ: u8 = 0x01;
/// The host's count of MOSI transmits it asked for; echoed on [`WIRE_OUT_HOST_COUNTER`].
pub const WIRE_IN_HOST_COUNTER: u8 = 0x02;

// ---------------------------------------------------------------------------------------------
// Trigger-ins
// ---------------------------------------------------------------------------------------------

/// MOSI triggers.
pub const TRIGGER_IN_MOSI: u8 = 0x40;
/// [`TRIGGER_IN_MOSI`] bit: the bank's load address back to register 0 (before a load).
pub const TRIGGER_MOSI_ADDRESS_RESET: u8 = 0;
/// [`TRIGGER_IN_MOSI`] bit: send the loaded bank to the probe. A bank loaded only in part is
/// not sent ([`STATUS_MOSI_REJECTED`]).
pub const TRIGGER_MOSI_TRANSMIT: u8 = 1;

// ---------------------------------------------------------------------------------------------
// Pipes
// ---------------------------------------------------------------------------------------------

/// The MOSI register bank: [`mosi::REGISTERS`] 32-bit little-endian words, register 0 first.
pub const PIPE_IN_MOSI: u8 = 0x80;
/// The data stream: whole frames ([`frame`]), oldest first.
pub const PIPE_OUT_DATA: u8 = 0xa0;

// ---------------------------------------------------------------------------------------------
// Wire-outs
// ---------------------------------------------------------------------------------------------

/// Status flags: `STATUS_*`.
pub const WIRE_OUT_STATUS: u8 = 0x20;
/// [`WIRE_OUT_STATUS`]: a calibration is running.
pub const STATUS_CALIBRATING: u32 = 1 << 0;
/// [`WIRE_OUT_STATUS`]: frames are streaming into the FIFO.
pub const STATUS_RUNNING: u32 = 1 << 1;
/// [`WIRE_OUT_STATUS`]: the sample clock is locked to the rate asked for.
pub const STATUS_CLOCK_LOCKED: u32 = 1 << 2;
/// [`WIRE_OUT_STATUS`]: the last transmit was refused (the bank was loaded only in part).
pub const STATUS_MOSI_REJECTED: u32 = 1 << 3;
/// [`WIRE_OUT_STATUS`]: bit of shank 0's error flag; shanks 1–3 follow. A shank is in error
/// when the bank enables pixels on a shank the probe does not have.
pub const STATUS_SHANK_ERROR_SHIFT: u32 = 4;
/// [`WIRE_OUT_STATUS`]: a probe is connected.
pub const STATUS_PROBE_CONNECTED: u32 = 1 << 8;

/// Calibration progress, `0..=CALIBRATION_FULL_SCALE` (done).
pub const WIRE_OUT_CALIBRATION_PROGRESS: u8 = 0x21;
/// [`WIRE_OUT_CALIBRATION_PROGRESS`] of a finished calibration.
pub const CALIBRATION_FULL_SCALE: u32 = 0xffff;
/// Active pixels of shanks 0 (bits 0–15) and 1 (bits 16–31).
pub const WIRE_OUT_ACTIVE_PIXELS_01: u8 = 0x22;
/// Active pixels of shanks 2 (bits 0–15) and 3 (bits 16–31).
pub const WIRE_OUT_ACTIVE_PIXELS_23: u8 = 0x23;
/// Reference voltages FFA (bits 0–15) and FFB (bits 16–31), [`VREF_VOLTS_PER_CODE`].
pub const WIRE_OUT_VREF_AB: u8 = 0x24;
/// Reference voltages FFC (bits 0–15) and FFD (bits 16–31).
pub const WIRE_OUT_VREF_CD: u8 = 0x25;
/// The host counter as the FPGA last latched it ([`WIRE_IN_HOST_COUNTER`]).
pub const WIRE_OUT_HOST_COUNTER: u8 = 0x26;
/// MOSI banks the FPGA has sent to the probe since it was configured.
pub const WIRE_OUT_FPGA_COUNTER: u8 = 0x27;
/// The probe: model (its pixel count: 256, 512, 1024) in bits 0–15, generation in bits 16–23.
pub const WIRE_OUT_PROBE: u8 = 0x28;
/// Bytes waiting in the FIFO.
pub const WIRE_OUT_FIFO_BYTES: u8 = 0x29;
/// The design name of the firmware running (the `.bit` file's field `a`), ASCII, four bytes
/// per wire-out from this one on (first character in bits 0–7), NUL-padded.
pub const WIRE_OUT_FIRMWARE_FIRST: u8 = 0x30;
/// Wire-outs holding the design name: [`FIRMWARE_NAME_BYTES`] bytes.
pub const FIRMWARE_WIRE_OUTS: u8 = 14;
/// Longest design name the FPGA reports; a longer one is reported cut to this length.
pub const FIRMWARE_NAME_BYTES: usize = FIRMWARE_WIRE_OUTS as usize * 4;
/// Identifies the design as the SmartBox Pro's Sinaps interface ("SNPS").
pub const WIRE_OUT_DESIGN_ID: u8 = 0x3e;
/// [`WIRE_OUT_DESIGN_ID`]'s value.
pub const DESIGN_ID: u32 = u32::from_le_bytes(*b"SNPS");
/// The version of this map the design implements.
pub const WIRE_OUT_MAP_VERSION: u8 = 0x3f;
/// [`WIRE_OUT_MAP_VERSION`]'s value.
pub const MAP_VERSION: u32 = 1;

/// Volts per code of the reference voltages (0.1 mV).
pub const VREF_VOLTS_PER_CODE: f64 = 1e-4;
/// Highest reference voltage code: 3.3 V.
pub const VREF_MAX_CODE: u32 = 33_000;
/// The reference voltage bring-up sets on every shank: 1.65 V, mid-supply.
pub const VREF_DEFAULT_CODE: u32 = 16_500;

/// The FIFO's capacity in the model: 64 MiB (about a second of 1024 pixels at 30 kS/s).
pub const FIFO_CAPACITY_BYTES: u64 = 64 << 20;

/// The FPGA part of each FrontPanel module a SmartBox Pro may be built on, as a Xilinx `.bit`
/// file's field `b` names it (Opal Kelly's module specifications: the XEM7310-A75 carries an
/// XC7A75T in an FGG484 package, the XEM7310-A200 an XC7A200T in FBG484). A bitfile for
/// another part is refused before anything is sent.
pub const MODULE_PARTS: [(&str, &str); 2] = [("XEM7310A75", "7a75tfgg484"), ("XEM7310A200", "7a200tfbg484")];

/// The FPGA part of FrontPanel module `model`, if it is one a SmartBox Pro is built on.
pub fn fpga_part(model: &str) -> Option<&'static str> {
    MODULE_PARTS.iter().find(|(m, _)| *m == model).map(|(_, part)| *part)
}

/// The MOSI register bank: what [`crate::sinaps::SinapsControl::load_all_mosi`] loads, one
/// 32-bit value per register, in this order.
pub mod mosi {
    /// Registers in a bank (160 bytes: a whole number of USB 3 pipe-in blocks of 16 bytes).
    pub const REGISTERS: usize = 40;
    /// Register 0, control: bit 0 starts a calibration when the bank is transmitted; the
    /// other bits must be 0.
    pub const CONTROL: usize = 0;
    /// [`CONTROL`] bit 0.
    pub const CONTROL_CALIBRATE: u32 = 1;
    /// Registers 1–4: reference voltages FFA..FFD (shanks 0–3), `0..=VREF_MAX_CODE`.
    pub const VREF_FIRST: usize = 1;
    /// Registers 5–7: reserved, 0.
    pub const RESERVED: std::ops::RangeInclusive<usize> = 5..=7;
    /// Registers 8–39: pixel enables, eight 32-bit masks per shank (shank 0 first; bit `b`
    /// of the shank's mask `k` is pixel `32 k + b`). Shanks the probe lacks must be 0.
    pub const PIXEL_MASK_FIRST: usize = 8;
    /// Masks per shank.
    pub const MASKS_PER_SHANK: usize = 8;
    /// How long a calibration takes in the model, seconds.
    pub const CALIBRATION_SECONDS: f64 = 0.5;
}

/// The frame of the data pipe: one per sample instant, little-endian,
/// [`frame::HEADER_BYTES`] of header then every pixel as an `i16` (shank 0's 256 pixels
/// first; a pixel that is off reads 0).
pub mod frame {
    /// Every frame starts with this word ("SNPF").
    pub const MAGIC: u32 = u32::from_le_bytes(*b"SNPF");
    /// Bytes before the samples.
    pub const HEADER_BYTES: usize = 16;
    /// Offset of the magic (`u32`).
    pub const MAGIC_AT: usize = 0;
    /// Offset of the status flags (`u16`): [`FLAG_CALIBRATING`], shank errors from
    /// [`FLAG_SHANK_ERROR_SHIFT`].
    pub const FLAGS_AT: usize = 4;
    /// Offset of the digital inputs (`u16`, bit n = input n).
    pub const DIGITAL_IN_AT: usize = 6;
    /// Offset of the frame counter (`u64`, 0 at the start of a run, one per sample instant,
    /// also for frames that never reach the host).
    pub const COUNTER_AT: usize = 8;
    /// Flag: a calibration was running.
    pub const FLAG_CALIBRATING: u16 = 1;
    /// Flag bit of shank 0's error; shanks 1–3 follow.
    pub const FLAG_SHANK_ERROR_SHIFT: u16 = 4;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frontpanel::{PIPE_IN_RANGE, PIPE_OUT_RANGE, TRIGGER_IN_RANGE, WIRE_IN_RANGE, WIRE_OUT_RANGE};

    #[test]
    fn every_endpoint_is_in_the_range_of_its_kind_and_wire_outs_do_not_overlap() {
        for e in [WIRE_IN_CONTROL, WIRE_IN_SAMPLE_RATE_MHZ, WIRE_IN_HOST_COUNTER] {
            assert!(WIRE_IN_RANGE.contains(&e));
        }
        assert!(TRIGGER_IN_RANGE.contains(&TRIGGER_IN_MOSI));
        assert!(PIPE_IN_RANGE.contains(&PIPE_IN_MOSI) && PIPE_OUT_RANGE.contains(&PIPE_OUT_DATA));
        let mut outs = vec![
            WIRE_OUT_STATUS,
            WIRE_OUT_CALIBRATION_PROGRESS,
            WIRE_OUT_ACTIVE_PIXELS_01,
            WIRE_OUT_ACTIVE_PIXELS_23,
            WIRE_OUT_VREF_AB,
            WIRE_OUT_VREF_CD,
            WIRE_OUT_HOST_COUNTER,
            WIRE_OUT_FPGA_COUNTER,
            WIRE_OUT_PROBE,
            WIRE_OUT_FIFO_BYTES,
            WIRE_OUT_DESIGN_ID,
            WIRE_OUT_MAP_VERSION,
        ];
        outs.extend((0..FIRMWARE_WIRE_OUTS).map(|i| WIRE_OUT_FIRMWARE_FIRST + i));
        assert!(outs.iter().all(|e| WIRE_OUT_RANGE.contains(e)));
        let n = outs.len();
        outs.sort_unstable();
        outs.dedup();
        assert_eq!(outs.len(), n, "two registers on one wire-out");
        assert_eq!(mosi::PIXEL_MASK_FIRST + 4 * mosi::MASKS_PER_SHANK, mosi::REGISTERS);
        assert_eq!((mosi::REGISTERS * 4) % 16, 0);
        assert_eq!(fpga_part("XEM7310A75"), Some("7a75tfgg484"));
        assert_eq!(fpga_part("XEM6310LX45"), None);
    }
}
