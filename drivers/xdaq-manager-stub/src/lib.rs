//! A stand-in for a KonteX libxdaq device manager library, as far as a C loader can see one.
//!
//! A device manager (the shared libraries pylibxdaq installs in its `managers/` folder and
//! `pyxdaq_device.get_device_manager` loads) exports one C-linkage symbol,
//! `extern "C" xdaq::DeviceManager *create_manager()` (pylibxdaq
//! `pylibxdaq/tests/test_device_manager.cc`); the object it returns is C++ only. This library
//! exports a symbol of that name and nothing of the C++ interface, which is all
//! `ephysd_drivers::frontpanel::xdaq::probe` looks at: it lets the tests load "a device
//! manager" through the production loading path (dlopen, symbol lookup) and see the daemon's
//! answer. It is not an emulator: the XDAQ gen 2 interface behind `create_manager` has no C
//! ABI to emulate.
//!
//! ```text
//! cargo build -p xdaq-manager-stub   # target/debug/libxdaq_manager_stub.so
//! ```

use std::ffi::c_void;

/// Named like the device manager's factory. Returns null: there is no manager behind it, and
/// ephysd never calls it (it only checks that the symbol exists).
#[no_mangle]
pub extern "C" fn create_manager() -> *mut c_void {
    std::ptr::null_mut()
}
