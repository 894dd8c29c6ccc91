//! KonteX's XDAQ gen 2 device library (`device.frontpanel = "xdaq"`): loaded through the
//! production path and examined, never called. Its interface is C++ only (see
//! `ephysd_drivers::frontpanel::xdaq`), so every outcome is one error saying what was found:
//! a missing library (what to install), a library without the device manager's entry point
//! (the symbol), Opal Kelly's library (which key takes it), and a device manager
//! (`libxdaq_manager_stub.so`, the `xdaq-manager-stub` crate, exporting `create_manager` as
//! KonteX's managers do) whose C++ interface this version cannot drive.

use std::path::{Path, PathBuf};

use ephysd_drivers::frontpanel::xdaq::{probe, XdaqLibraryError, MANAGER_SYMBOL};
use ephysd_drivers::spec::{DeviceKeys, DeviceSpec};
use ephysd_drivers::{open, DeviceError};

/// `target/<profile>/<name>`, next to this test's `target/<profile>/deps/<test>`.
fn built_library(name: &str, package: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).expect("the test runs from target/<profile>/deps");
    let library = profile_dir.join(name);
    assert!(
        library.is_file(),
        "{} is missing: build it first: cargo build -p {package} (make test does)",
        library.display()
    );
    library
}

fn manager_stub() -> PathBuf {
    built_library("libxdaq_manager_stub.so", "xdaq-manager-stub")
}

fn libc() -> &'static Path {
    ["/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libc.so.6"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.is_file())
        .expect("libc.so.6 in /lib/x86_64-linux-gnu or /usr/lib/x86_64-linux-gnu")
}

fn gen2_keys(library: &Path) -> DeviceKeys {
    DeviceKeys {
        backbone: "xdaq-gen2-one-rec".into(),
        frontpanel: "xdaq".into(),
        xdaq_library: library.display().to_string(),
        ..DeviceKeys::default()
    }
}

#[test]
fn a_missing_xdaq_library_names_its_path_and_what_to_install() {
    let path = Path::new("/nonexistent/pylibxdaq/managers/libxdaq_manager.so");
    let e = probe(path);
    assert!(matches!(e, XdaqLibraryError::Load { .. }), "{e:?}");
    let message = e.to_string();
    assert!(message.contains("/nonexistent/pylibxdaq/managers/libxdaq_manager.so"), "{message}");
    assert!(message.contains("install KonteX's XDAQ software (pip install pylibxdaq"), "{message}");
    assert!(message.contains("device.xdaq_library"), "{message}");
    assert!(std::error::Error::source(&e).is_some(), "the loader's error is kept as the cause");
}

#[test]
fn a_library_without_the_device_manager_entry_point_names_the_missing_symbol() {
    let libc = libc();
    let e = probe(libc);
    match &e {
        XdaqLibraryError::MissingSymbol { path, symbol, .. } => {
            assert_eq!(path, libc);
            assert_eq!(*symbol, MANAGER_SYMBOL);
            assert_eq!(*symbol, "create_manager");
        }
        other => panic!("expected a missing symbol, got {other:?}"),
    }
    let message = e.to_string();
    assert!(message.contains(&libc.display().to_string()) && message.contains("create_manager"), "{message}");
    assert!(message.contains("pip install pylibxdaq"), "{message}");
    assert!(std::error::Error::source(&e).is_some(), "the loader's error is kept as the cause");
}

#[test]
fn opal_kellys_library_given_as_the_xdaq_library_is_sent_to_frontpanel_library() {
    let okfp = built_library("libokfp_emu.so", "okfp-emu");
    let e = probe(&okfp);
    assert!(matches!(&e, XdaqLibraryError::FrontPanelLibrary { path } if *path == okfp), "{e:?}");
    let message = e.to_string();
    assert!(message.contains("okFrontPanel_Construct"), "{message}");
    assert!(message.contains("device.frontpanel = \"library\"") && message.contains("device.frontpanel_library"));
}

#[test]
fn a_device_manager_is_refused_because_its_interface_is_cpp_only() {
    let stub = manager_stub();
    let e = probe(&stub);
    assert!(matches!(&e, XdaqLibraryError::CppOnly { path } if *path == stub), "{e:?}");
    let message = e.to_string();
    assert!(message.contains(&stub.display().to_string()), "{message}");
    assert!(message.contains("a KonteX libxdaq device manager"), "{message}");
    assert!(message.contains("create_manager") && message.contains("C++"), "{message}");
    assert!(message.contains("KonteX ships no C API"), "{message}");
    assert!(message.contains("device.frontpanel = \"emulated\""), "{message}");
}

#[test]
fn opening_a_gen2_board_through_the_xdaq_library_answers_with_what_the_library_is() {
    let stub = manager_stub();
    let spec = DeviceSpec::from_keys(&gen2_keys(&stub)).unwrap();
    let DeviceSpec::XdaqLibrary(x) = &spec else { panic!("expected an XDAQ library spec, got {spec:?}") };
    assert_eq!(x.library, stub);
    assert_eq!(spec.backbone(), "xdaq-gen2-one-rec");
    match open(&spec) {
        Err(DeviceError::XdaqLibrary(XdaqLibraryError::CppOnly { path })) => assert_eq!(path, stub),
        Err(other) => panic!("expected the C++-only refusal, got {other}"),
        Ok(_) => panic!("opened a device through a library with no C interface"),
    }
    let missing = Path::new("/nonexistent/libxdaq_manager.so");
    match open(&DeviceSpec::from_keys(&gen2_keys(missing)).unwrap()) {
        Err(e @ DeviceError::XdaqLibrary(XdaqLibraryError::Load { .. })) => {
            assert!(e.to_string().contains("/nonexistent/libxdaq_manager.so"), "{e}")
        }
        Err(other) => panic!("expected a load error, got {other}"),
        Ok(_) => panic!("opened a device through a missing library"),
    }
    // The gen 2 RHS backbones take the same key.
    let rhs = DeviceKeys { backbone: "xdaq-gen2-core-stim".into(), ..gen2_keys(&stub) };
    assert!(matches!(DeviceSpec::from_keys(&rhs).unwrap(), DeviceSpec::XdaqLibrary(_)));
}

#[test]
fn the_xdaq_library_is_refused_for_other_boards_and_when_unset() {
    let stub = manager_stub();
    let gen1 = DeviceKeys { backbone: "xdaq-one-rec".into(), ..gen2_keys(&stub) };
    let e = DeviceSpec::from_keys(&gen1).unwrap_err();
    assert_eq!(e.key, "frontpanel");
    assert!(e.allowed.contains("xdaq-gen2-*") && e.allowed.contains("allowed: library, emulated"), "{e}");

    let unset = DeviceKeys { xdaq_library: String::new(), ..gen2_keys(&stub) };
    let e = DeviceSpec::from_keys(&unset).unwrap_err();
    assert_eq!(e.key, "xdaq_library");
    assert!(e.allowed.contains("pylibxdaq"), "{e}");

    let unknown = DeviceKeys { frontpanel: "usb".into(), ..gen2_keys(&stub) };
    assert_eq!(
        DeviceSpec::from_keys(&unknown).unwrap_err().to_string(),
        "frontpanel = usb: allowed: library, emulated, xdaq"
    );
    let unknown_gen1 = DeviceKeys { backbone: "xdaq-one-rec".into(), ..unknown };
    assert_eq!(
        DeviceSpec::from_keys(&unknown_gen1).unwrap_err().to_string(),
        "frontpanel = usb: allowed: library, emulated"
    );

    // The gen 2 boards still run through the FrontPanel operations, emulated.
    let emulated = DeviceKeys { frontpanel: "emulated".into(), ..gen2_keys(&stub) };
    assert!(matches!(DeviceSpec::from_keys(&emulated).unwrap(), DeviceSpec::Rhythm(_)));
}
