//! What acquisition hardware is plugged in, named from the USB bus alone.
//!
//! Discovery answers "which board is this, and which serial?" before anything is opened: an
//! operator checks the cabling (`ephysd devices`) and copies a serial into the configuration
//! without stopping a running daemon, and a board that another program holds open is still
//! listed. It reads only what the operating system already knows of each device (vendor and
//! product ids, the descriptor strings; on Linux, sysfs), so it needs no access rights to the
//! device and never disturbs one that is streaming. Opening a board, loading its bitfile and
//! asking it what it is (board id, ports, expander) stay the FrontPanel library's job
//! ([`crate::frontpanel`]).
//!
//! Every board of the Rhythm family that ephysd drives today sits behind an Opal Kelly
//! FrontPanel module, USB vendor `0x151f`. The USB product id names the module, not the board
//! built around it, so [`classify`] names the module and the boards known to use it:
//!
//! | product | module | boards built on it |
//! |---|---|---|
//! | `0x002d` | XEM6010-LX45 | Intan RHD USB interface board, Intan RHS stim/recording controller, Open Ephys acquisition board (USB 2) |
//! | `0x0121` | XEM6310-LX45 | Intan RHD recording controller, Open Ephys acquisition board gen 1 (USB 3) |
//! | `0x0130` | XEM7310-A75 | KonteX XDAQ gen 1, Intan RHD/RHS controllers of the XEM7310 generation |
//! | `0x002e`, `0x0122`, `0x0131` | XEM6010-LX150, XEM6310-LX150, XEM7310-A200 | none known |
//!
//! Any other product of the vendor is still listed, as "Opal Kelly module (product 0x....)".
//! The product ids are those of the USB ID Repository (`usb.ids`); which module each board
//! carries comes from the boards' own host software (Intan RHX, the Open Ephys Rhythm plugin,
//! KonteX's pyxdaq). An XDAQ gen 1 and an Intan controller built on the XEM7310-A75 look the
//! same on USB; only the opened board tells them apart. KonteX XDAQ gen 2 is not a USB device
//! at all: it attaches over Thunderbolt as PCIe (vendor `0x4b43`, device `0x4b58`), so a USB
//! scan cannot see it.

use std::io;

/// Opal Kelly Incorporated's USB vendor id: every FrontPanel module enumerates under it.
pub const OPAL_KELLY_VENDOR_ID: u16 = 0x151f;

/// A device as the USB bus reports it, before anyone opens it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsbDevice {
    pub vendor_id: u16,
    pub product_id: u16,
    /// The serial-number string descriptor (for an Opal Kelly module, the serial the
    /// FrontPanel library opens it by), when the device has one.
    pub serial: Option<String>,
    pub manufacturer: Option<String>,
    pub product: Option<String>,
    /// Bus number and address on it: where the device sits now (the address changes on
    /// every re-plug, the serial does not).
    pub bus: u8,
    pub address: u8,
}

/// The kind of acquisition hardware a USB device is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Family {
    /// An Opal Kelly FrontPanel module. `model` is the module's name when its product id is a
    /// known one; `boards` are the acquisition boards known to be built on that module (empty
    /// when none is, or the model is unknown).
    OpalKelly { model: Option<&'static str>, boards: &'static [&'static str] },
}

/// A USB device that is (or carries) acquisition hardware.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundDevice {
    pub usb: UsbDevice,
    pub family: Family,
    /// One phrase for a person: the module, then the boards it may be, e.g.
    /// "Opal Kelly XEM6310-LX45 (Intan RHD recording controller or Open Ephys acquisition
    /// board gen 1)".
    pub description: String,
}

/// Listing the USB devices failed (for instance, sysfs could not be read).
#[derive(Debug, thiserror::Error)]
#[error("cannot list USB devices: {source}")]
pub struct DiscoveryError {
    #[source]
    source: io::Error,
}

impl DiscoveryError {
    /// The operating system's error underneath.
    pub fn io_error(&self) -> &io::Error {
        &self.source
    }
}

/// Known Opal Kelly modules: product id, model name, boards built on it.
const OPAL_KELLY_MODULES: [(u16, &str, &[&str]); 6] = [
    (
        0x002d,
        "XEM6010-LX45",
        &["Intan RHD USB interface board", "Intan RHS stim/recording controller", "Open Ephys acquisition board"],
    ),
    (0x002e, "XEM6010-LX150", &[]),
    (0x0121, "XEM6310-LX45", &["Intan RHD recording controller", "Open Ephys acquisition board gen 1"]),
    (0x0122, "XEM6310-LX150", &[]),
    (0x0130, "XEM7310-A75", &["KonteX XDAQ gen 1", "Intan controller of the XEM7310 generation"]),
    (0x0131, "XEM7310-A200", &[]),
];

/// Names `dev` if it is acquisition hardware; `None` for anything else on the bus. Pure: it
/// looks at the ids only, so it is the same on every platform and testable without hardware.
pub fn classify(dev: &UsbDevice) -> Option<FoundDevice> {
    if dev.vendor_id != OPAL_KELLY_VENDOR_ID {
        return None;
    }
    let known = OPAL_KELLY_MODULES.iter().find(|(product, _, _)| *product == dev.product_id);
    let (model, boards) = match known {
        Some(&(_, model, boards)) => (Some(model), boards),
        None => (None, &[][..]),
    };
    let module = match model {
        Some(model) => format!("Opal Kelly {model}"),
        None => format!("Opal Kelly module (product {:#06x})", dev.product_id),
    };
    let description = match boards {
        [] => module,
        [only] => format!("{module} ({only})"),
        [init @ .., last] => format!("{module} ({} or {last})", init.join(", ")),
    };
    Some(FoundDevice { usb: dev.clone(), family: Family::OpalKelly { model, boards }, description })
}

/// Lists the acquisition hardware on the USB bus, ordered by bus and address.
///
/// A machine without a USB bus (no `/sys/bus/usb` on Linux, as in many containers) has no
/// devices to list: that is an empty list, not an error. Any other failure to list is an
/// error. A device that vanishes while being read is skipped (nusb does that).
pub fn scan() -> Result<Vec<FoundDevice>, DiscoveryError> {
    let listed = nusb::list_devices().map(|devices| devices.map(|d| usb_device(&d)).collect());
    let mut found: Vec<FoundDevice> = present_or_absent(listed)?.iter().filter_map(classify).collect();
    found.sort_by_key(|f| (f.usb.bus, f.usb.address));
    Ok(found)
}

fn usb_device(info: &nusb::DeviceInfo) -> UsbDevice {
    UsbDevice {
        vendor_id: info.vendor_id(),
        product_id: info.product_id(),
        serial: info.serial_number().map(str::to_owned),
        manufacturer: info.manufacturer_string().map(str::to_owned),
        product: info.product_string().map(str::to_owned),
        bus: info.bus_number(),
        address: info.device_address(),
    }
}

/// nusb 0.1 lists Linux devices by reading `/sys/bus/usb/devices`, and reports a machine
/// without that directory as the `NotFound` of reading it: that means no USB bus, so no
/// devices. Elsewhere `NotFound` has no such meaning and stays an error.
fn present_or_absent(listed: io::Result<Vec<UsbDevice>>) -> Result<Vec<UsbDevice>, DiscoveryError> {
    match listed {
        Ok(devices) => Ok(devices),
        Err(e) if cfg!(target_os = "linux") && e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(DiscoveryError { source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(vendor_id: u16, product_id: u16) -> UsbDevice {
        UsbDevice {
            vendor_id,
            product_id,
            serial: Some("1234ABCD".into()),
            manufacturer: Some("Opal Kelly".into()),
            product: None,
            bus: 1,
            address: 4,
        }
    }

    fn model_of(found: &FoundDevice) -> Option<&'static str> {
        match found.family {
            Family::OpalKelly { model, .. } => model,
        }
    }

    #[test]
    fn the_xem6010_lx45_is_named_with_the_three_boards_built_on_it() {
        let found = classify(&device(0x151f, 0x002d)).unwrap();
        assert_eq!(model_of(&found), Some("XEM6010-LX45"));
        assert_eq!(
            found.description,
            "Opal Kelly XEM6010-LX45 (Intan RHD USB interface board, Intan RHS stim/recording controller or \
             Open Ephys acquisition board)"
        );
        assert_eq!(found.usb, device(0x151f, 0x002d), "the USB facts are kept as read");
    }

    #[test]
    fn the_xem6310_lx45_is_an_intan_recording_controller_or_an_open_ephys_board() {
        let found = classify(&device(0x151f, 0x0121)).unwrap();
        assert_eq!(model_of(&found), Some("XEM6310-LX45"));
        assert_eq!(
            found.description,
            "Opal Kelly XEM6310-LX45 (Intan RHD recording controller or Open Ephys acquisition board gen 1)"
        );
    }

    #[test]
    fn the_xem7310_a75_may_be_an_xdaq_gen_1_or_an_intan_controller() {
        let found = classify(&device(0x151f, 0x0130)).unwrap();
        assert_eq!(model_of(&found), Some("XEM7310-A75"));
        assert_eq!(
            found.family,
            Family::OpalKelly {
                model: Some("XEM7310-A75"),
                boards: &["KonteX XDAQ gen 1", "Intan controller of the XEM7310 generation"],
            }
        );
        assert_eq!(
            found.description,
            "Opal Kelly XEM7310-A75 (KonteX XDAQ gen 1 or Intan controller of the XEM7310 generation)"
        );
    }

    #[test]
    fn larger_fpga_variants_are_named_without_a_board() {
        for (product, name) in [(0x002e, "XEM6010-LX150"), (0x0122, "XEM6310-LX150"), (0x0131, "XEM7310-A200")] {
            let found = classify(&device(0x151f, product)).unwrap();
            assert_eq!(model_of(&found), Some(name));
            assert_eq!(found.description, format!("Opal Kelly {name}"));
        }
    }

    #[test]
    fn an_unknown_opal_kelly_product_is_listed_by_its_product_id() {
        let found = classify(&device(0x151f, 0x0999)).unwrap();
        assert_eq!(found.family, Family::OpalKelly { model: None, boards: &[] });
        assert_eq!(found.description, "Opal Kelly module (product 0x0999)");
    }

    #[test]
    fn devices_of_other_vendors_are_not_acquisition_hardware() {
        assert_eq!(classify(&device(0x1d6b, 0x0002)), None, "a root hub");
        assert_eq!(classify(&device(0x0403, 0x6001)), None, "an FTDI serial adapter");
        assert_eq!(classify(&device(0x4b43, 0x4b58)), None, "the XDAQ gen 2 PCIe ids are no USB ids");
        assert_eq!(classify(&device(0x151e, 0x0121)), None, "a neighbouring vendor id");
    }

    #[test]
    fn a_missing_usb_bus_on_linux_is_an_empty_list_and_other_failures_keep_their_cause() {
        let missing = present_or_absent(Err(io::Error::from(io::ErrorKind::NotFound)));
        if cfg!(target_os = "linux") {
            assert!(missing.unwrap().is_empty());
        } else {
            assert!(missing.is_err());
        }
        let denied = present_or_absent(Err(io::Error::from(io::ErrorKind::PermissionDenied))).unwrap_err();
        assert_eq!(denied.io_error().kind(), io::ErrorKind::PermissionDenied);
        assert!(std::error::Error::source(&denied).is_some(), "the io::Error is the source");
        assert!(denied.to_string().starts_with("cannot list USB devices: "), "{denied}");
        let listed = present_or_absent(Ok(vec![device(0x151f, 0x0121)])).unwrap();
        assert_eq!(listed, vec![device(0x151f, 0x0121)]);
    }

    #[test]
    fn scanning_this_machine_lists_only_classified_devices_in_bus_order() {
        // Whatever this machine has plugged in (often nothing): the scan must not fail on a
        // machine without USB, and what it lists must be what classify names.
        let found = scan().expect("scan");
        for pair in found.windows(2) {
            assert!((pair[0].usb.bus, pair[0].usb.address) <= (pair[1].usb.bus, pair[1].usb.address));
        }
        for f in &found {
            assert_eq!(classify(&f.usb).as_ref(), Some(f));
        }
    }
}
