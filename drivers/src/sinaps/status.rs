//! The FPGA's status wire-outs as [`SinapsStatus`], the fields of Allego's
//! `SinapsStatusRegisters`. Both directions live here: [`SinapsStatus::decode`] for the
//! driver, [`SinapsStatus::encode`] for the emulated FPGA, so the two cannot drift apart.

use super::endpoints as ep;
use super::MAX_SHANKS;

/// Wire-outs `0x20..=0x3f`, index 0 being `0x20`.
pub type WireOuts = [u32; 32];

fn at(endpoint: u8) -> usize {
    usize::from(endpoint - 0x20)
}

/// What the FPGA reports about itself and the probe.
#[derive(Debug, Clone, PartialEq)]
pub struct SinapsStatus {
    /// A calibration is running.
    pub calibrating: bool,
    /// Progress of the current (or last) calibration, 0.0 to 1.0.
    pub calibration_progress: f64,
    /// Active pixels on shanks 0–3.
    pub active_pixels: [u32; MAX_SHANKS],
    /// Reference voltages FFA..FFD, volts.
    pub vref_volts: [f64; MAX_SHANKS],
    /// Error flags of shanks 0–3.
    pub shank_errors: [bool; MAX_SHANKS],
    /// The host's transmit count as the FPGA last latched it.
    pub host_counter: u32,
    /// MOSI banks the FPGA sent to the probe.
    pub fpga_counter: u32,
    /// The design name of the firmware running.
    pub firmware: String,
    /// The probe's generation.
    pub probe_generation: u32,
    /// The probe's model: its pixel count.
    pub probe_model: u32,
    /// Frames are streaming.
    pub running: bool,
    /// The sample clock is locked.
    pub clock_locked: bool,
    /// The last transmit was refused (a bank loaded in part).
    pub mosi_rejected: bool,
    /// A probe is connected.
    pub probe_connected: bool,
    /// Bytes waiting in the FIFO.
    pub fifo_bytes: u32,
    /// The design's identifier ([`ep::DESIGN_ID`] for the Sinaps interface).
    pub design_id: u32,
    /// The version of the map the design implements.
    pub map_version: u32,
}

impl SinapsStatus {
    /// Decodes sampled wire-outs.
    pub fn decode(w: &WireOuts) -> SinapsStatus {
        let flags = w[at(ep::WIRE_OUT_STATUS)];
        let lo = |v: u32| v & 0xffff;
        let hi = |v: u32| v >> 16;
        let pixels01 = w[at(ep::WIRE_OUT_ACTIVE_PIXELS_01)];
        let pixels23 = w[at(ep::WIRE_OUT_ACTIVE_PIXELS_23)];
        let vref_ab = w[at(ep::WIRE_OUT_VREF_AB)];
        let vref_cd = w[at(ep::WIRE_OUT_VREF_CD)];
        let volts = |code: u32| f64::from(code) * ep::VREF_VOLTS_PER_CODE;
        let mut name = Vec::with_capacity(ep::FIRMWARE_NAME_BYTES);
        for i in 0..ep::FIRMWARE_WIRE_OUTS {
            name.extend_from_slice(&w[at(ep::WIRE_OUT_FIRMWARE_FIRST + i)].to_le_bytes());
        }
        let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
        let probe = w[at(ep::WIRE_OUT_PROBE)];
        SinapsStatus {
            calibrating: flags & ep::STATUS_CALIBRATING != 0,
            calibration_progress: f64::from(w[at(ep::WIRE_OUT_CALIBRATION_PROGRESS)].min(ep::CALIBRATION_FULL_SCALE))
                / f64::from(ep::CALIBRATION_FULL_SCALE),
            active_pixels: [lo(pixels01), hi(pixels01), lo(pixels23), hi(pixels23)],
            vref_volts: [volts(lo(vref_ab)), volts(hi(vref_ab)), volts(lo(vref_cd)), volts(hi(vref_cd))],
            shank_errors: std::array::from_fn(|s| flags & (1 << (ep::STATUS_SHANK_ERROR_SHIFT + s as u32)) != 0),
            host_counter: w[at(ep::WIRE_OUT_HOST_COUNTER)],
            fpga_counter: w[at(ep::WIRE_OUT_FPGA_COUNTER)],
            firmware: String::from_utf8_lossy(&name[..end]).into_owned(),
            probe_generation: (probe >> 16) & 0xff,
            probe_model: probe & 0xffff,
            running: flags & ep::STATUS_RUNNING != 0,
            clock_locked: flags & ep::STATUS_CLOCK_LOCKED != 0,
            mosi_rejected: flags & ep::STATUS_MOSI_REJECTED != 0,
            probe_connected: flags & ep::STATUS_PROBE_CONNECTED != 0,
            fifo_bytes: w[at(ep::WIRE_OUT_FIFO_BYTES)],
            design_id: w[at(ep::WIRE_OUT_DESIGN_ID)],
            map_version: w[at(ep::WIRE_OUT_MAP_VERSION)],
        }
    }

    /// The wire-outs that report this status (the emulated FPGA's side). Values beyond a
    /// field's width are cut to it; a firmware name longer than
    /// [`ep::FIRMWARE_NAME_BYTES`] is cut to that many bytes.
    pub fn encode(&self) -> WireOuts {
        let mut w = [0u32; 32];
        let mut flags = 0;
        for (on, bit) in [
            (self.calibrating, ep::STATUS_CALIBRATING),
            (self.running, ep::STATUS_RUNNING),
            (self.clock_locked, ep::STATUS_CLOCK_LOCKED),
            (self.mosi_rejected, ep::STATUS_MOSI_REJECTED),
            (self.probe_connected, ep::STATUS_PROBE_CONNECTED),
        ] {
            if on {
                flags |= bit;
            }
        }
        for (s, &e) in self.shank_errors.iter().enumerate() {
            if e {
                flags |= 1 << (ep::STATUS_SHANK_ERROR_SHIFT + s as u32);
            }
        }
        w[at(ep::WIRE_OUT_STATUS)] = flags;
        let progress = self.calibration_progress.clamp(0.0, 1.0);
        w[at(ep::WIRE_OUT_CALIBRATION_PROGRESS)] = (progress * f64::from(ep::CALIBRATION_FULL_SCALE)).round() as u32;
        let pair = |a: u32, b: u32| (a & 0xffff) | ((b & 0xffff) << 16);
        let p = self.active_pixels;
        w[at(ep::WIRE_OUT_ACTIVE_PIXELS_01)] = pair(p[0], p[1]);
        w[at(ep::WIRE_OUT_ACTIVE_PIXELS_23)] = pair(p[2], p[3]);
        let code = |v: f64| (v / ep::VREF_VOLTS_PER_CODE).round().clamp(0.0, 65535.0) as u32;
        let v = self.vref_volts;
        w[at(ep::WIRE_OUT_VREF_AB)] = pair(code(v[0]), code(v[1]));
        w[at(ep::WIRE_OUT_VREF_CD)] = pair(code(v[2]), code(v[3]));
        w[at(ep::WIRE_OUT_HOST_COUNTER)] = self.host_counter;
        w[at(ep::WIRE_OUT_FPGA_COUNTER)] = self.fpga_counter;
        w[at(ep::WIRE_OUT_PROBE)] = (self.probe_model & 0xffff) | ((self.probe_generation & 0xff) << 16);
        w[at(ep::WIRE_OUT_FIFO_BYTES)] = self.fifo_bytes;
        let name = self.firmware.as_bytes();
        let name = &name[..name.len().min(ep::FIRMWARE_NAME_BYTES)];
        for i in 0..ep::FIRMWARE_WIRE_OUTS {
            let mut word = [0u8; 4];
            for (k, b) in word.iter_mut().enumerate() {
                *b = name.get(usize::from(i) * 4 + k).copied().unwrap_or(0);
            }
            w[at(ep::WIRE_OUT_FIRMWARE_FIRST + i)] = u32::from_le_bytes(word);
        }
        w[at(ep::WIRE_OUT_DESIGN_ID)] = self.design_id;
        w[at(ep::WIRE_OUT_MAP_VERSION)] = self.map_version;
        w
    }

    /// A design name as the FPGA reports it: cut to [`ep::FIRMWARE_NAME_BYTES`].
    pub fn reported_firmware(design: &str) -> &str {
        let mut end = design.len().min(ep::FIRMWARE_NAME_BYTES);
        while !design.is_char_boundary(end) {
            end -= 1;
        }
        &design[..end]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SinapsStatus {
        SinapsStatus {
            calibrating: true,
            calibration_progress: 0.25,
            active_pixels: [256, 128, 0, 3],
            vref_volts: [1.65, 0.0, 3.3, 0.0001],
            shank_errors: [false, true, false, true],
            host_counter: 7,
            fpga_counter: 6,
            firmware: "sinaps_top;Version=2".into(),
            probe_generation: 2,
            probe_model: 1024,
            running: true,
            clock_locked: true,
            mosi_rejected: false,
            probe_connected: true,
            fifo_bytes: 123_456,
            design_id: ep::DESIGN_ID,
            map_version: ep::MAP_VERSION,
        }
    }

    #[test]
    fn every_field_decodes_from_its_wire_out() {
        let s = sample();
        let w = s.encode();
        assert_eq!(w[0], 0b1010_0111 | (1 << 8), "flags: calibrating, running, locked, errors 1 and 3, probe");
        assert_eq!(w[1], 16384, "a quarter of 0xffff");
        assert_eq!(w[2], 256 | (128 << 16));
        assert_eq!(w[3], 3 << 16);
        assert_eq!(w[4], 16500);
        assert_eq!(w[5], 33000 | (1 << 16));
        assert_eq!(w[8], 1024 | (2 << 16));
        assert_eq!(w[0x10].to_le_bytes(), *b"sina");
        let back = SinapsStatus::decode(&w);
        assert!((back.calibration_progress - 0.25).abs() < 1e-4);
        assert!(back.vref_volts.iter().zip(s.vref_volts).all(|(a, b)| (a - b).abs() < 1e-9), "{back:?}");
        assert_eq!(SinapsStatus { calibration_progress: 0.25, vref_volts: s.vref_volts, ..back }, s);
    }

    #[test]
    fn a_long_firmware_name_is_cut_and_out_of_range_progress_is_clamped() {
        let long = "x".repeat(80);
        let mut w = SinapsStatus { firmware: long.clone(), ..sample() }.encode();
        let back = SinapsStatus::decode(&w);
        assert_eq!(back.firmware, long[..ep::FIRMWARE_NAME_BYTES]);
        assert_eq!(SinapsStatus::reported_firmware(&long), back.firmware);
        assert_eq!(SinapsStatus::reported_firmware("short"), "short");
        w[1] = 0x1_0000_u32;
        assert_eq!(SinapsStatus::decode(&w).calibration_progress, 1.0);
        let zero = SinapsStatus::decode(&[0; 32]);
        assert!(!zero.calibrating && zero.firmware.is_empty() && zero.active_pixels == [0; 4]);
    }
}
