//! The MOSI register bank: what the host loads into the FPGA and the FPGA sends to the probe
//! (which pixels are on, each shank's reference voltage, calibration). Its layout is
//! [`endpoints::mosi`](super::endpoints::mosi). A bank is validated register by register
//! before anything is sent: a value out of range is an error naming `register_vals[i]` and
//! what that register allows, never a clamp.

use super::endpoints::{self as ep, mosi};
use super::{SinapsError, SinapsModel, MAX_SHANKS, PIXELS_PER_SHANK};

/// A MOSI register bank, valid for the probe it was checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MosiBank {
    words: [u32; mosi::REGISTERS],
}

fn invalid(index: usize, value: i32, allowed: String) -> SinapsError {
    SinapsError::InvalidArgument { field: format!("register_vals[{index}]"), value: value.to_string(), allowed }
}

/// What register `index` holds, for messages.
fn register_name(index: usize) -> String {
    match index {
        mosi::CONTROL => "control".into(),
        i if (mosi::VREF_FIRST..mosi::VREF_FIRST + MAX_SHANKS).contains(&i) => {
            format!("reference voltage FF{} in 0.1 mV", (b'A' + (i - mosi::VREF_FIRST) as u8) as char)
        }
        i if mosi::RESERVED.contains(&i) => "reserved".into(),
        i => {
            let k = i - mosi::PIXEL_MASK_FIRST;
            format!(
                "pixel enables of shank {}, pixels {}..={}",
                k / mosi::MASKS_PER_SHANK,
                (k % 8) * 32,
                (k % 8) * 32 + 31
            )
        }
    }
}

impl MosiBank {
    /// Checks `register_vals` (as Allego sends them: signed 32-bit) for `model`.
    pub fn new(register_vals: &[i32], model: SinapsModel) -> Result<MosiBank, SinapsError> {
        if register_vals.len() != mosi::REGISTERS {
            return Err(SinapsError::InvalidArgument {
                field: "register_vals".into(),
                value: format!("{} values", register_vals.len()),
                allowed: format!(
                    "exactly {} (control, 4 reference voltages, 3 reserved, 32 pixel-enable masks)",
                    mosi::REGISTERS
                ),
            });
        }
        let mut words = [0u32; mosi::REGISTERS];
        for (i, (&v, w)) in register_vals.iter().zip(words.iter_mut()).enumerate() {
            let name = register_name(i);
            let allowed_range = |hi: u32| {
                if (0..=hi as i64).contains(&i64::from(v)) {
                    Ok(())
                } else {
                    Err(invalid(i, v, format!("0..={hi} ({name})")))
                }
            };
            match i {
                mosi::CONTROL => allowed_range(mosi::CONTROL_CALIBRATE)?,
                i if i < mosi::VREF_FIRST + MAX_SHANKS => allowed_range(ep::VREF_MAX_CODE)?,
                i if mosi::RESERVED.contains(&i) => allowed_range(0)?,
                i => {
                    let shank = (i - mosi::PIXEL_MASK_FIRST) / mosi::MASKS_PER_SHANK;
                    if shank >= model.shanks && v != 0 {
                        return Err(invalid(
                            i,
                            v,
                            format!(
                                "0 ({name}: the {}-channel probe has shanks 0..={})",
                                model.channels(),
                                model.shanks - 1
                            ),
                        ));
                    }
                }
            }
            *w = v as u32;
        }
        Ok(MosiBank { words })
    }

    /// The bank bring-up loads: every pixel of the probe's shanks on, the others off, every
    /// reference voltage at [`ep::VREF_DEFAULT_CODE`], no calibration.
    pub fn all_pixels(model: SinapsModel) -> MosiBank {
        let mut words = [0u32; mosi::REGISTERS];
        for s in 0..MAX_SHANKS {
            words[mosi::VREF_FIRST + s] = ep::VREF_DEFAULT_CODE;
        }
        for s in 0..model.shanks {
            let first = mosi::PIXEL_MASK_FIRST + s * mosi::MASKS_PER_SHANK;
            words[first..first + mosi::MASKS_PER_SHANK].fill(u32::MAX);
        }
        MosiBank { words }
    }

    /// A bank as the FPGA received it, unchecked (the emulated FPGA's side).
    pub fn from_words(words: [u32; mosi::REGISTERS]) -> MosiBank {
        MosiBank { words }
    }

    /// The registers.
    pub fn words(&self) -> &[u32; mosi::REGISTERS] {
        &self.words
    }

    /// The bytes the pipe-in carries: each register little-endian, register 0 first.
    pub fn to_bytes(&self) -> [u8; mosi::REGISTERS * 4] {
        let mut out = [0u8; mosi::REGISTERS * 4];
        for (chunk, w) in out.chunks_exact_mut(4).zip(self.words) {
            chunk.copy_from_slice(&w.to_le_bytes());
        }
        out
    }

    /// Whether transmitting the bank starts a calibration.
    pub fn calibrate(&self) -> bool {
        self.words[mosi::CONTROL] & mosi::CONTROL_CALIBRATE != 0
    }

    /// Shank `shank`'s reference voltage code.
    pub fn vref_code(&self, shank: usize) -> u32 {
        self.words[mosi::VREF_FIRST + shank]
    }

    /// Whether pixel `pixel` of shank `shank` is on.
    pub fn pixel_on(&self, shank: usize, pixel: usize) -> bool {
        let word = self.words[mosi::PIXEL_MASK_FIRST + shank * mosi::MASKS_PER_SHANK + pixel / 32];
        word & (1 << (pixel % 32)) != 0
    }

    /// Pixels on, on shank `shank`.
    pub fn active_pixels(&self, shank: usize) -> u32 {
        let first = mosi::PIXEL_MASK_FIRST + shank * mosi::MASKS_PER_SHANK;
        self.words[first..first + mosi::MASKS_PER_SHANK].iter().map(|w| w.count_ones()).sum()
    }

    /// The pixel-enable masks as signed values, as Allego's `registerVals` carries them.
    pub fn to_register_vals(&self) -> Vec<i32> {
        self.words.iter().map(|&w| w as i32).collect()
    }
}

const _: () = assert!(mosi::MASKS_PER_SHANK * 32 == PIXELS_PER_SHANK);

#[cfg(test)]
mod tests {
    use super::*;

    fn model(channels: usize) -> SinapsModel {
        SinapsModel::from_channels(channels).unwrap()
    }

    #[test]
    fn the_bring_up_bank_turns_on_every_pixel_of_the_probe() {
        for m in SinapsModel::ALL {
            let bank = MosiBank::all_pixels(m);
            let active: Vec<u32> = (0..MAX_SHANKS).map(|s| bank.active_pixels(s)).collect();
            let want: Vec<u32> = (0..MAX_SHANKS).map(|s| if s < m.shanks { 256 } else { 0 }).collect();
            assert_eq!(active, want);
            assert!(!bank.calibrate());
            // It passes its own validation.
            assert_eq!(MosiBank::new(&bank.to_register_vals(), m).unwrap(), bank);
        }
    }

    #[test]
    fn registers_decode_and_travel_little_endian() {
        let mut vals = MosiBank::all_pixels(model(512)).to_register_vals();
        vals[mosi::CONTROL] = 1;
        vals[mosi::VREF_FIRST + 1] = 12_000;
        vals[mosi::PIXEL_MASK_FIRST] = 0b1011;
        vals[mosi::PIXEL_MASK_FIRST + 8 + 7] = i32::MIN;
        let bank = MosiBank::new(&vals, model(512)).unwrap();
        assert!(bank.calibrate());
        assert_eq!(bank.vref_code(1), 12_000);
        assert!(bank.pixel_on(0, 0) && bank.pixel_on(0, 1) && !bank.pixel_on(0, 2) && bank.pixel_on(0, 3));
        assert_eq!(bank.active_pixels(0), 3 + 7 * 32);
        assert!(bank.pixel_on(1, 255) && !bank.pixel_on(1, 254));
        assert_eq!(bank.active_pixels(1), 7 * 32 + 1);
        let bytes = bank.to_bytes();
        assert_eq!(&bytes[..4], &[1, 0, 0, 0]);
        assert_eq!(&bytes[8..12], &12_000u32.to_le_bytes());
        assert_eq!(MosiBank::from_words(*bank.words()), bank);
    }

    #[test]
    fn each_bad_register_is_named_with_its_index_and_range() {
        let good = MosiBank::all_pixels(model(256)).to_register_vals();
        let e = MosiBank::new(&good[..3], model(256)).unwrap_err().to_string();
        assert_eq!(
            e,
            "register_vals = 3 values: allowed exactly 40 (control, 4 reference voltages, 3 reserved, 32 pixel-enable masks)"
        );
        let with = |i: usize, v: i32| {
            let mut vals = good.clone();
            vals[i] = v;
            MosiBank::new(&vals, model(256)).unwrap_err().to_string()
        };
        assert_eq!(with(0, 2), "register_vals[0] = 2: allowed 0..=1 (control)");
        assert_eq!(with(2, 40_000), "register_vals[2] = 40000: allowed 0..=33000 (reference voltage FFB in 0.1 mV)");
        assert_eq!(with(4, -1), "register_vals[4] = -1: allowed 0..=33000 (reference voltage FFD in 0.1 mV)");
        assert_eq!(with(6, 9), "register_vals[6] = 9: allowed 0..=0 (reserved)");
        let e = with(17, 1);
        assert_eq!(
            e,
            "register_vals[17] = 1: allowed 0 (pixel enables of shank 1, pixels 32..=63: the 256-channel probe has shanks 0..=0)"
        );
        // Every value is a valid mask on a shank the probe has.
        let mut vals = good.clone();
        vals[mosi::PIXEL_MASK_FIRST + 3] = -7;
        assert_eq!(MosiBank::new(&vals, model(256)).unwrap().words()[11], -7i32 as u32);
    }
}
