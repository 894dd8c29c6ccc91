//! `ephysd devices`: the acquisition hardware plugged in, for a person or (`--json`) a script.
//!
//! It lists what the USB bus reports ([`ephysd_drivers::discovery`]) without opening anything,
//! so it works beside a running daemon that holds a board open, and tells an operator which
//! serial to put in the configuration.

use std::process::ExitCode;

use ephysd_drivers::discovery::{self, Family, FoundDevice};

/// What `ephysd devices` says when nothing is found: which hardware it looked for.
pub const NONE_FOUND: &str =
    "No acquisition devices found (looked for Opal Kelly FrontPanel modules, vendor 0x151f, and KonteX XDAQ).";

/// Prints one line per device (or [`NONE_FOUND`]), or with `json` a JSON array; exits 0 in
/// both cases, and 1 with one line on stderr if the bus cannot be listed.
pub fn run(json: bool) -> ExitCode {
    match discovery::scan() {
        Ok(found) => {
            if json {
                println!("{}", to_json(&found));
            } else {
                print!("{}", to_text(&found));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ephysd devices: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One line per device, each ending in a newline; [`NONE_FOUND`] when there are none.
pub fn to_text(found: &[FoundDevice]) -> String {
    if found.is_empty() {
        return format!("{NONE_FOUND}\n");
    }
    found.iter().map(|f| format!("{}\n", line(f))).collect()
}

/// `Opal Kelly XEM6310-LX45 (Intan RHD recording controller or ...)  serial 1234ABCD  bus 1 address 4`.
pub fn line(f: &FoundDevice) -> String {
    let serial = f.usb.serial.as_deref().map_or_else(|| "no serial".to_string(), |s| format!("serial {s}"));
    format!("{}  {serial}  bus {} address {}", f.description, f.usb.bus, f.usb.address)
}

/// A JSON array with one object per device: the USB facts as read, and what they name.
pub fn to_json(found: &[FoundDevice]) -> serde_json::Value {
    found
        .iter()
        .map(|f| {
            let (family, model, boards) = match f.family {
                Family::OpalKelly { model, boards } => ("opal_kelly", model, boards),
                // A family added to the drivers later: still listed, by its description.
                _ => ("other", None, &[][..]),
            };
            serde_json::json!({
                "description": f.description,
                "family": family,
                "model": model,
                "boards": boards,
                "serial": f.usb.serial,
                "vendor_id": f.usb.vendor_id,
                "product_id": f.usb.product_id,
                "manufacturer": f.usb.manufacturer,
                "product": f.usb.product,
                "bus": f.usb.bus,
                "address": f.usb.address,
            })
        })
        .collect::<Vec<_>>()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ephysd_drivers::discovery::{classify, UsbDevice};

    fn found(product_id: u16, serial: Option<&str>, bus: u8, address: u8) -> FoundDevice {
        classify(&UsbDevice {
            vendor_id: 0x151f,
            product_id,
            serial: serial.map(str::to_owned),
            manufacturer: Some("Opal Kelly".into()),
            product: None,
            bus,
            address,
        })
        .unwrap()
    }

    #[test]
    fn nothing_found_is_one_plain_sentence() {
        assert_eq!(to_text(&[]), format!("{NONE_FOUND}\n"));
        assert_eq!(to_json(&[]).to_string(), "[]");
    }

    #[test]
    fn each_device_is_one_line_with_its_serial_and_place_on_the_bus() {
        let text = to_text(&[found(0x0121, Some("1234ABCD"), 1, 4), found(0x0999, None, 2, 7)]);
        assert_eq!(
            text,
            "Opal Kelly XEM6310-LX45 (Intan RHD recording controller or Open Ephys acquisition board gen 1)  \
             serial 1234ABCD  bus 1 address 4\n\
             Opal Kelly module (product 0x0999)  no serial  bus 2 address 7\n"
        );
    }

    #[test]
    fn json_keeps_the_usb_facts_and_what_they_name() {
        let value = to_json(&[found(0x0130, Some("XD0001"), 3, 2)]);
        assert_eq!(
            value,
            serde_json::json!([{
                "description": "Opal Kelly XEM7310-A75 (KonteX XDAQ gen 1 or Intan controller of the XEM7310 generation)",
                "family": "opal_kelly",
                "model": "XEM7310-A75",
                "boards": ["KonteX XDAQ gen 1", "Intan controller of the XEM7310 generation"],
                "serial": "XD0001",
                "vendor_id": 0x151f,
                "product_id": 0x0130,
                "manufacturer": "Opal Kelly",
                "product": null,
                "bus": 3,
                "address": 2,
            }])
        );
    }
}
