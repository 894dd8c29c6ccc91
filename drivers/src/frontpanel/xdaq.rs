//! KonteX's XDAQ gen 2 device library (`device.frontpanel = "xdaq"`, `device.xdaq_library`):
//! what it is, and why this version loads it only to say so.
//!
//! # What KonteX ships (stored public sources)
//!
//! - `pyxdaq` opens every XDAQ through `pylibxdaq`, never through a C library:
//!   `pyxdaq/xdaq.py` `get_XDAQ` takes `Board.list_devices()[index].with_mode("rhd"|"rhs")
//!   .create()`; `pyxdaq/board.py` `BoardInfo.create` calls
//!   `pyxdaq_device.get_device_manager(manager_path)` then
//!   `manager.create_device(json.dumps(options))`, and reads `raw.get_status()` (JSON with
//!   `"Mode"`, `"Capabilities"`) and `raw.get_info()` (JSON with `"Serial Number"`).
//! - Devices are found by scanning a directory of *device manager* shared libraries:
//!   `pylibxdaq/device.py` `list_devices` calls `pyxdaq_device.scan_devices_dir(DeviceManagerDir)`,
//!   and `pylibxdaq/managers/__init__.py` sets `DeviceManagerDir` to the package's own
//!   `managers/` folder, which `pylibxdaq/CMakeLists.txt` fills with
//!   `xdaq_install_device_managers(./managers)`. Earlier libxdaq distributions named them
//!   `libok_device_plugin.so` and `libthor_device_plugin.so` (kontex-neuro/libxdaq-dist,
//!   `lib/xdaq/plugin/`).
//! - A device manager exports exactly one C-linkage symbol, a factory returning a C++ object:
//!   `extern "C" XDAQ_PLUGIN_EXPORT xdaq::DeviceManager *create_manager()`
//!   (pylibxdaq `pylibxdaq/tests/test_device_manager.cc`, the mock manager). Everything else
//!   is C++ virtual functions: `xdaq::DeviceManager::info`, `list_devices`,
//!   `get_device_options` (JSON `std::string`s), `create_device(const std::string &config)`
//!   returning `std::unique_ptr<xdaq::Device>`; and `xdaq::Device` (`xdaq/device.h`,
//!   `BasicDevice<uint32_t, uint32_t, BasicDeviceStatus>`): `set_register(addr, value, mask)`
//!   and `send_registers()` (FrontPanel's SetWireInValue and UpdateWireIns),
//!   `read_registers()` / `get_register(addr)` / `get_register_sync(addr)` returning
//!   `std::optional` (UpdateWireOuts and GetWireOutValue), `trigger(addr, bit)`
//!   (ActivateTriggerIn), `write(addr, length, data)` and `read(addr, length, data)` returning
//!   the bytes moved (pipes), `start_read_stream(addr, callback, chunk_size)` delivering
//!   buffers to a `std::function`-like callback on the library's thread, and `get_status()` /
//!   `get_info()` returning `std::expected<std::string, std::string>`. Errors are
//!   `BasicDeviceStatus::{Success, Failure}` with no code beyond that, empty optionals, short
//!   byte counts, stream `Error` events carrying a string, and C++ exceptions from
//!   `get_device_manager` and `create_device` (the binding's tests catch `...`). There is no
//!   call that configures the FPGA from a bitfile.
//! - libxdaq itself is "a C++ interface library" needing "a C++23-compatible compiler"
//!   (kontex-neuro/libxdaq-dist `README.md`); its loader `xdaq::get_device_manager` lives in
//!   the static `libxdaq_device.a`, not in a shared library with C exports.
//!
//! So the vendor library has no C ABI that libloading can call: past `create_manager`, every
//! operation is a C++ virtual call whose arguments and results are libstdc++ types
//! (`std::string`, `std::unique_ptr`, `std::expected`, callables), and KonteX ships no C shim.
//! Calling it from Rust would mean hard-coding vtable slots and standard-library layouts that
//! no header promises, so this module does not. [`probe`] loads the configured library the
//! way the FrontPanel backend does and tells exactly what it found: not loadable (what to
//! install), not a device manager (the missing symbol), Opal Kelly's library (use
//! `frontpanel = "library"`), or a device manager whose C++-only interface this version
//! cannot drive. It never calls into the library. Gen 2 boards still run emulated
//! (`frontpanel = "emulated"`, or the emulator's FrontPanel stand-in `libokfp_emu.so`).

use std::path::{Path, PathBuf};

/// The one C entry point of a KonteX libxdaq device manager (pylibxdaq
/// `tests/test_device_manager.cc`: `extern "C" ... xdaq::DeviceManager *create_manager()`).
pub const MANAGER_SYMBOL: &str = "create_manager";

/// An entry point every Opal Kelly FrontPanel library exports (`okFrontPanelDLL.h`).
const FRONTPANEL_SYMBOL: &str = "okFrontPanel_Construct";

/// What to do when the library is not there.
const INSTALL_HINT: &str = "install KonteX's XDAQ software (pip install pylibxdaq: its device manager libraries are \
                            in site-packages/pylibxdaq/managers/) and set device.xdaq_library to one of them";

/// Why this version cannot drive XDAQ gen 2 hardware through its vendor library.
const CPP_ONLY: &str = "its only C entry point, create_manager, returns a C++ xdaq::DeviceManager whose operations \
                        (list_devices, create_device, set_register, send_registers, get_register_sync, trigger, \
                        read, write, start_read_stream) are C++ virtual functions taking and returning std::string, \
                        std::unique_ptr, std::expected and callables; KonteX ships no C API, and ephysd calls C \
                        entry points only, so this version cannot drive XDAQ gen 2 hardware through it (run the gen \
                        2 board emulated with device.frontpanel = \"emulated\")";

/// The XDAQ gen 2 device library could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum XdaqLibraryError {
    /// The file is missing or is not a loadable shared library.
    #[error("XDAQ gen 2 device library {}: cannot load it: {source}; {INSTALL_HINT}", path.display())]
    Load {
        path: PathBuf,
        #[source]
        source: libloading::Error,
    },
    /// The file loaded but is not a KonteX device manager.
    #[error(
        "XDAQ gen 2 device library {}: no entry point {symbol} (not a KonteX libxdaq device manager): {source}; \
         {INSTALL_HINT}",
        path.display()
    )]
    MissingSymbol {
        path: PathBuf,
        symbol: &'static str,
        #[source]
        source: libloading::Error,
    },
    /// The file is Opal Kelly's FrontPanel library (or a stand-in for it), not KonteX's.
    #[error(
        "XDAQ gen 2 device library {}: it exports Opal Kelly's FrontPanel entry points ({FRONTPANEL_SYMBOL}), not \
         KonteX's device manager; to reach a board through it, set device.frontpanel = \"library\" and \
         device.frontpanel_library to this path",
        path.display()
    )]
    FrontPanelLibrary { path: PathBuf },
    /// The file is a KonteX device manager, whose interface is C++ only.
    #[error("XDAQ gen 2 device library {}: a KonteX libxdaq device manager, but {CPP_ONLY}", path.display())]
    CppOnly { path: PathBuf },
}

/// What [`probe`] found in a library that loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exports {
    /// `create_manager`: a KonteX device manager.
    Manager,
    /// `okFrontPanel_Construct` without `create_manager`: a FrontPanel library.
    FrontPanel,
}

/// Loads the library at `path` (a bare file name is searched for the way the dynamic loader
/// does), looks for the device manager's entry point without calling it, and returns why it
/// cannot be used: it always fails, and the error says what was found. See the module
/// documentation for the facts behind each answer.
pub fn probe(path: &Path) -> XdaqLibraryError {
    // SAFETY: loading runs the library's initializers; the library is the one the
    // configuration names for the XDAQ (KonteX's device manager or whatever stands in for
    // it), meant to be loaded into a process. Nothing in it is called.
    let library = match unsafe { libloading::Library::new(path) } {
        Ok(library) => library,
        Err(source) => return XdaqLibraryError::Load { path: path.to_path_buf(), source },
    };
    let has = |symbol: &str| {
        // SAFETY: the symbol is only looked up, never called or read through; the pointer
        // type is irrelevant to a lookup.
        unsafe { library.get::<*const std::ffi::c_void>(symbol.as_bytes()) }
    };
    let found = match has(MANAGER_SYMBOL) {
        Ok(_) => Exports::Manager,
        Err(source) => match has(FRONTPANEL_SYMBOL) {
            Ok(_) => Exports::FrontPanel,
            Err(_) => {
                return XdaqLibraryError::MissingSymbol { path: path.to_path_buf(), symbol: MANAGER_SYMBOL, source }
            }
        },
    };
    drop(library);
    match found {
        Exports::Manager => XdaqLibraryError::CppOnly { path: path.to_path_buf() },
        Exports::FrontPanel => XdaqLibraryError::FrontPanelLibrary { path: path.to_path_buf() },
    }
}
