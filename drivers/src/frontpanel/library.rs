//! The vendor library backend: Opal Kelly's `libokFrontPanel.so`, opened at run time.
//!
//! [`LibraryProvider::load`] opens the shared library and resolves every C entry point this
//! backend calls (the `okFrontPanel_*` functions of the vendor's `okFrontPanelDLL.h`) before
//! anything else happens, so a file that is not the FrontPanel library fails there, naming
//! the missing symbol, rather than at the first call that needs it. The daemon does not link
//! against the library: a host without Opal Kelly's software builds and runs everything
//! except real boards, and the `okfp-emu` crate builds a stand-in library with the same entry
//! points, backed by the emulated board, which this backend opens like the real one.
//!
//! [`LibraryPanel`] is one opened device. Its wire, trigger and pipe operations call straight
//! into the library and build their errors from static strings: they do not allocate, since
//! they run on the acquisition thread.

use std::ffi::{c_char, c_int, c_long, c_ulong, c_void, CString};
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{
    check_endpoint, FrontPanel, FrontPanelError, ListedPanel, OkErrorCode, PanelInfo, PanelProvider, PIPE_IN_RANGE,
    PIPE_OUT_RANGE, TRIGGER_IN_RANGE, WIRE_IN_RANGE, WIRE_OUT_RANGE,
};

/// What to do when the library is not there.
const INSTALL_HINT: &str =
    "install Opal Kelly FrontPanel (libokFrontPanel.so) or set device.frontpanel_library to its \
                            path; for tests, build the emulator: cargo build -p okfp-emu";

/// Buffer sizes of the C API's string outputs, terminating NUL included
/// (`OK_MAX_SERIALNUMBER_LENGTH`, `OK_MAX_DEVICEID_LENGTH`, `OK_MAX_BOARD_MODEL_STRING_LENGTH`).
const SERIAL_LEN: usize = 11;
const DEVICE_ID_LEN: usize = 33;
const MODEL_STRING_LEN: usize = 128;

/// The library could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LibraryError {
    /// The file is missing or is not a loadable shared library.
    #[error("FrontPanel library {}: cannot load it: {source}; {INSTALL_HINT}", path.display())]
    Load {
        path: PathBuf,
        #[source]
        source: libloading::Error,
    },
    /// The file loaded but lacks an entry point of the FrontPanel C API.
    #[error(
        "FrontPanel library {}: no entry point {symbol} (not Opal Kelly's libokFrontPanel.so, or a version without \
         it): {source}",
        path.display()
    )]
    MissingSymbol {
        path: PathBuf,
        symbol: &'static str,
        #[source]
        source: libloading::Error,
    },
}

/// `okFrontPanel_HANDLE`.
type Handle = *mut c_void;

/// The entry points, resolved once. The function pointers stay valid as long as `_library`
/// is loaded, which is as long as this value lives (it owns the library).
struct Api {
    construct: unsafe extern "C" fn() -> Handle,
    destruct: unsafe extern "C" fn(Handle),
    get_device_count: unsafe extern "C" fn(Handle) -> c_int,
    get_device_list_serial: unsafe extern "C" fn(Handle, c_int, *mut c_char),
    get_device_list_model: unsafe extern "C" fn(Handle, c_int) -> c_int,
    get_board_model_string: unsafe extern "C" fn(Handle, c_int, *mut c_char),
    get_board_model: unsafe extern "C" fn(Handle) -> c_int,
    open_by_serial: unsafe extern "C" fn(Handle, *const c_char) -> c_int,
    is_open: unsafe extern "C" fn(Handle) -> c_int,
    load_default_pll_configuration: unsafe extern "C" fn(Handle) -> c_int,
    get_serial_number: unsafe extern "C" fn(Handle, *mut c_char),
    get_device_id: unsafe extern "C" fn(Handle, *mut c_char),
    configure_fpga: unsafe extern "C" fn(Handle, *const c_char) -> c_int,
    is_front_panel_enabled: unsafe extern "C" fn(Handle) -> c_int,
    set_wire_in_value: unsafe extern "C" fn(Handle, c_int, c_ulong, c_ulong) -> c_int,
    update_wire_ins: unsafe extern "C" fn(Handle),
    update_wire_outs: unsafe extern "C" fn(Handle),
    get_wire_out_value: unsafe extern "C" fn(Handle, c_int) -> c_ulong,
    activate_trigger_in: unsafe extern "C" fn(Handle, c_int, c_int) -> c_int,
    write_to_pipe_in: unsafe extern "C" fn(Handle, c_int, c_long, *mut u8) -> c_long,
    read_from_pipe_out: unsafe extern "C" fn(Handle, c_int, c_long, *mut u8) -> c_long,
    read_from_block_pipe_out: unsafe extern "C" fn(Handle, c_int, c_int, c_long, *mut u8) -> c_long,
    /// Declared last: dropped (unloaded) after everything above.
    _library: libloading::Library,
}

/// Looks `symbol` up in `library` as a `T`.
///
/// # Safety
///
/// `T` must be the function pointer type of the C function `symbol` names.
unsafe fn resolve<T: Copy>(
    library: &libloading::Library,
    path: &Path,
    symbol: &'static str,
) -> Result<T, LibraryError> {
    // SAFETY: the caller guarantees `T` matches the symbol's C signature.
    match unsafe { library.get::<T>(symbol.as_bytes()) } {
        Ok(found) => Ok(*found),
        Err(source) => Err(LibraryError::MissingSymbol { path: path.to_path_buf(), symbol, source }),
    }
}

impl Api {
    fn load(path: &Path) -> Result<Api, LibraryError> {
        // SAFETY: loading runs the library's initializers; the library is Opal Kelly's
        // FrontPanel library or a stand-in with the same entry points, whichever the
        // configuration names, and either is meant to be loaded into this process.
        let library = unsafe { libloading::Library::new(path) }
            .map_err(|source| LibraryError::Load { path: path.to_path_buf(), source })?;
        // SAFETY (every `resolve` below): each type is the signature okFrontPanelDLL.h declares
        // for that function on Linux (Bool and enums are int, UINT32 is unsigned int).
        unsafe {
            Ok(Api {
                construct: resolve(&library, path, "okFrontPanel_Construct")?,
                destruct: resolve(&library, path, "okFrontPanel_Destruct")?,
                get_device_count: resolve(&library, path, "okFrontPanel_GetDeviceCount")?,
                get_device_list_serial: resolve(&library, path, "okFrontPanel_GetDeviceListSerial")?,
                get_device_list_model: resolve(&library, path, "okFrontPanel_GetDeviceListModel")?,
                get_board_model_string: resolve(&library, path, "okFrontPanel_GetBoardModelString")?,
                get_board_model: resolve(&library, path, "okFrontPanel_GetBoardModel")?,
                open_by_serial: resolve(&library, path, "okFrontPanel_OpenBySerial")?,
                is_open: resolve(&library, path, "okFrontPanel_IsOpen")?,
                load_default_pll_configuration: resolve(&library, path, "okFrontPanel_LoadDefaultPLLConfiguration")?,
                get_serial_number: resolve(&library, path, "okFrontPanel_GetSerialNumber")?,
                get_device_id: resolve(&library, path, "okFrontPanel_GetDeviceID")?,
                configure_fpga: resolve(&library, path, "okFrontPanel_ConfigureFPGA")?,
                is_front_panel_enabled: resolve(&library, path, "okFrontPanel_IsFrontPanelEnabled")?,
                set_wire_in_value: resolve(&library, path, "okFrontPanel_SetWireInValue")?,
                update_wire_ins: resolve(&library, path, "okFrontPanel_UpdateWireIns")?,
                update_wire_outs: resolve(&library, path, "okFrontPanel_UpdateWireOuts")?,
                get_wire_out_value: resolve(&library, path, "okFrontPanel_GetWireOutValue")?,
                activate_trigger_in: resolve(&library, path, "okFrontPanel_ActivateTriggerIn")?,
                write_to_pipe_in: resolve(&library, path, "okFrontPanel_WriteToPipeIn")?,
                read_from_pipe_out: resolve(&library, path, "okFrontPanel_ReadFromPipeOut")?,
                read_from_block_pipe_out: resolve(&library, path, "okFrontPanel_ReadFromBlockPipeOut")?,
                _library: library,
            })
        }
    }
}

/// `Ok` for `ok_NoError`, else the code as an error of `operation`.
fn check(operation: &'static str, raw: c_int) -> Result<(), FrontPanelError> {
    match OkErrorCode::from_raw(raw) {
        None => Ok(()),
        Some(code) => Err(FrontPanelError::Code { operation, code }),
    }
}

fn refused(operation: &'static str, code: OkErrorCode) -> FrontPanelError {
    FrontPanelError::Code { operation, code }
}

/// The NUL-terminated text the library wrote into `buf` (the whole buffer if it wrote no NUL).
fn text_of(buf: &[u8]) -> String {
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// Opal Kelly's FrontPanel library, loaded: lists and opens the devices it sees.
pub struct LibraryProvider {
    path: PathBuf,
    api: Arc<Api>,
}

impl fmt::Debug for LibraryProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LibraryProvider").field("path", &self.path).finish_non_exhaustive()
    }
}

impl LibraryProvider {
    /// Loads the library at `path` (a bare file name is searched for the way the dynamic
    /// loader does) and resolves every entry point this backend uses.
    pub fn load(path: &Path) -> Result<LibraryProvider, LibraryError> {
        Ok(LibraryProvider { path: path.to_path_buf(), api: Arc::new(Api::load(path)?) })
    }

    /// The path the library was loaded from, as given.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A fresh, unopened handle (destructed when the returned panel drops).
    fn construct(&self) -> Result<LibraryPanel, FrontPanelError> {
        // SAFETY: Construct takes nothing and returns a new handle or NULL.
        let handle = unsafe { (self.api.construct)() };
        if handle.is_null() {
            return Err(refused("Construct", OkErrorCode::Failed));
        }
        Ok(LibraryPanel { api: self.api.clone(), handle })
    }

    /// The attached serials, for a "not found" message.
    fn attached(&self) -> String {
        match self.list() {
            Ok(panels) if panels.is_empty() => "none".into(),
            Ok(panels) => panels.iter().map(|p| p.serial.as_str()).collect::<Vec<_>>().join(", "),
            Err(e) => format!("unknown: {e}"),
        }
    }
}

impl PanelProvider for LibraryProvider {
    fn describe(&self) -> String {
        format!("FrontPanel library {}", self.path.display())
    }

    fn list(&self) -> Result<Vec<ListedPanel>, FrontPanelError> {
        let panel = self.construct()?;
        let api = &self.api;
        let h = panel.handle;
        // SAFETY: `h` is a live handle; GetDeviceCount enumerates the bus.
        let count = unsafe { (api.get_device_count)(h) };
        let mut listed = Vec::with_capacity(count.max(0) as usize);
        for i in 0..count.max(0) {
            let mut serial = [0u8; SERIAL_LEN];
            let mut model = [0u8; MODEL_STRING_LEN];
            // SAFETY: `h` is live, `i` is below the count it reported, and the buffers have
            // the sizes the C API writes at most (serial 10 + NUL, model string 128).
            unsafe {
                (api.get_device_list_serial)(h, i, serial.as_mut_ptr().cast());
                let code = (api.get_device_list_model)(h, i);
                (api.get_board_model_string)(h, code, model.as_mut_ptr().cast());
            }
            listed.push(ListedPanel { serial: text_of(&serial), model: text_of(&model) });
        }
        Ok(listed)
    }

    fn open(&self, serial: Option<&str>) -> Result<Box<dyn FrontPanel>, FrontPanelError> {
        const OP: &str = "OpenBySerial";
        let wanted = serial.unwrap_or("");
        let not_found = || FrontPanelError::NotFound { serial: wanted.to_string(), attached: self.attached() };
        // A serial with a NUL in it names no device.
        let c_serial = CString::new(wanted).map_err(|_| not_found())?;
        let panel = self.construct()?;
        // SAFETY: the handle is live and `c_serial` is NUL-terminated ("" opens the first
        // device).
        let raw = unsafe { (self.api.open_by_serial)(panel.handle, c_serial.as_ptr()) };
        match OkErrorCode::from_raw(raw) {
            None => {}
            Some(OkErrorCode::DeviceNotOpen | OkErrorCode::Failed) => {
                // Let go of this handle before listing (which constructs its own).
                drop(panel);
                return Err(not_found());
            }
            Some(code) => return Err(refused(OP, code)),
        }
        // SAFETY: the handle is live and open.
        let raw = unsafe { (self.api.load_default_pll_configuration)(panel.handle) };
        match OkErrorCode::from_raw(raw) {
            // Modules without a programmable PLL (the USB 3 ones) answer UnsupportedFeature.
            None | Some(OkErrorCode::UnsupportedFeature) => {}
            Some(code) => return Err(refused("LoadDefaultPLLConfiguration", code)),
        }
        Ok(Box::new(panel))
    }
}

/// One device handle of the FrontPanel library: destructed (closing the device) on drop.
pub struct LibraryPanel {
    /// Keeps the library loaded while this handle exists.
    api: Arc<Api>,
    handle: Handle,
}

// SAFETY: a FrontPanel handle is not tied to the thread that constructed it; the library
// requires only that one thread use a handle at a time. `LibraryPanel` is not `Sync` and
// every call goes through `&self`/`&mut self` of its single owner, so moving it to another
// thread never lets two threads use the handle at once.
unsafe impl Send for LibraryPanel {}

impl fmt::Debug for LibraryPanel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LibraryPanel").field("handle", &self.handle).finish_non_exhaustive()
    }
}

impl Drop for LibraryPanel {
    fn drop(&mut self) {
        // SAFETY: the handle came from Construct, is destructed exactly once, here, and the
        // library it belongs to is still loaded (`self.api`).
        unsafe { (self.api.destruct)(self.handle) }
    }
}

impl LibraryPanel {
    /// Whether the device behind the handle is still open. The library closes a handle
    /// whose device stopped answering, so this turns an unplugged board into an error for
    /// the calls whose C function returns nothing.
    fn check_open(&self, operation: &'static str) -> Result<(), FrontPanelError> {
        // SAFETY: the handle is live.
        if unsafe { (self.api.is_open)(self.handle) } != 0 {
            Ok(())
        } else {
            Err(refused(operation, OkErrorCode::DeviceNotOpen))
        }
    }
}

impl FrontPanel for LibraryPanel {
    fn info(&self) -> PanelInfo {
        let mut serial = [0u8; SERIAL_LEN];
        let mut model = [0u8; MODEL_STRING_LEN];
        let mut device_id = [0u8; DEVICE_ID_LEN];
        // SAFETY: the handle is live and each buffer has the size the C API writes at most.
        unsafe {
            (self.api.get_serial_number)(self.handle, serial.as_mut_ptr().cast());
            let code = (self.api.get_board_model)(self.handle);
            (self.api.get_board_model_string)(self.handle, code, model.as_mut_ptr().cast());
            (self.api.get_device_id)(self.handle, device_id.as_mut_ptr().cast());
        }
        PanelInfo { serial: text_of(&serial), model: text_of(&model), device_id: text_of(&device_id) }
    }

    fn configure_fpga(&mut self, bitfile: &Path) -> Result<(), FrontPanelError> {
        const OP: &str = "ConfigureFPGA";
        let shown = || bitfile.display().to_string();
        let c_path = CString::new(bitfile.as_os_str().as_bytes())
            .map_err(|_| FrontPanelError::Bitfile { path: shown(), reason: "the path contains a NUL byte".into() })?;
        // SAFETY: the handle is live and `c_path` is NUL-terminated.
        let raw = unsafe { (self.api.configure_fpga)(self.handle, c_path.as_ptr()) };
        let bitfile_error = |reason: &str, code: OkErrorCode| FrontPanelError::Bitfile {
            path: shown(),
            reason: format!("{reason} ({OP}: {code})"),
        };
        match OkErrorCode::from_raw(raw) {
            None => {}
            Some(code @ OkErrorCode::FileError) => return Err(bitfile_error("the library cannot read it", code)),
            Some(code @ OkErrorCode::InvalidBitstream) => {
                return Err(bitfile_error("not a bitstream for this board's FPGA", code))
            }
            Some(code @ OkErrorCode::DoneNotHigh) => {
                return Err(bitfile_error("the FPGA did not come up with it (DONE stayed low)", code))
            }
            Some(code) => return Err(refused(OP, code)),
        }
        // SAFETY: the handle is live.
        if unsafe { (self.api.is_front_panel_enabled)(self.handle) } == 0 {
            return Err(FrontPanelError::Bitfile {
                path: shown(),
                reason: "the FPGA is configured but FrontPanel support is not enabled in this design".into(),
            });
        }
        Ok(())
    }

    fn set_wire_in(&mut self, endpoint: u8, value: u32, mask: u32) -> Result<(), FrontPanelError> {
        const OP: &str = "SetWireInValue";
        check_endpoint(OP, endpoint, "wire-in", WIRE_IN_RANGE)?;
        // SAFETY: the handle is live; plain integer arguments.
        let raw = unsafe {
            (self.api.set_wire_in_value)(self.handle, c_int::from(endpoint), c_ulong::from(value), c_ulong::from(mask))
        };
        check(OP, raw)
    }

    fn update_wire_ins(&mut self) -> Result<(), FrontPanelError> {
        // SAFETY: the handle is live.
        unsafe { (self.api.update_wire_ins)(self.handle) };
        self.check_open("UpdateWireIns")
    }

    fn update_wire_outs(&mut self) -> Result<(), FrontPanelError> {
        // SAFETY: the handle is live.
        unsafe { (self.api.update_wire_outs)(self.handle) };
        self.check_open("UpdateWireOuts")
    }

    fn wire_out(&self, endpoint: u8) -> Result<u32, FrontPanelError> {
        check_endpoint("GetWireOutValue", endpoint, "wire-out", WIRE_OUT_RANGE)?;
        // SAFETY: the handle is live; it reads the value latched by UpdateWireOuts.
        let value = unsafe { (self.api.get_wire_out_value)(self.handle, c_int::from(endpoint)) };
        // Wire-outs are 32 bits wide; `unsigned long` is wider on 64-bit Linux.
        Ok(value as u32)
    }

    fn activate_trigger_in(&mut self, endpoint: u8, bit: u8) -> Result<(), FrontPanelError> {
        const OP: &str = "ActivateTriggerIn";
        check_endpoint(OP, endpoint, "trigger-in", TRIGGER_IN_RANGE)?;
        // SAFETY: the handle is live; plain integer arguments.
        let raw = unsafe { (self.api.activate_trigger_in)(self.handle, c_int::from(endpoint), c_int::from(bit)) };
        check(OP, raw)
    }

    fn read_pipe_out(
        &mut self,
        endpoint: u8,
        block_size: Option<usize>,
        buf: &mut [u8],
    ) -> Result<usize, FrontPanelError> {
        let op = if block_size.is_some() { "ReadFromBlockPipeOut" } else { "ReadFromPipeOut" };
        check_endpoint(op, endpoint, "pipe-out", PIPE_OUT_RANGE)?;
        let len = c_long::try_from(buf.len()).map_err(|_| refused(op, OkErrorCode::InvalidParameter))?;
        let ep = c_int::from(endpoint);
        let moved = match block_size {
            Some(block) => {
                let block = c_int::try_from(block).map_err(|_| refused(op, OkErrorCode::InvalidBlockSize))?;
                // SAFETY: the handle is live and `buf` is writable for `len` bytes.
                unsafe { (self.api.read_from_block_pipe_out)(self.handle, ep, block, len, buf.as_mut_ptr()) }
            }
            // SAFETY: the handle is live and `buf` is writable for `len` bytes.
            None => unsafe { (self.api.read_from_pipe_out)(self.handle, ep, len, buf.as_mut_ptr()) },
        };
        transferred(op, moved, buf.len())
    }

    fn write_pipe_in(&mut self, endpoint: u8, data: &[u8]) -> Result<usize, FrontPanelError> {
        const OP: &str = "WriteToPipeIn";
        check_endpoint(OP, endpoint, "pipe-in", PIPE_IN_RANGE)?;
        let len = c_long::try_from(data.len()).map_err(|_| refused(OP, OkErrorCode::InvalidParameter))?;
        // SAFETY: the handle is live and `data` is readable for `len` bytes; the C signature
        // takes a non-const pointer but WriteToPipeIn only reads through it.
        let moved =
            unsafe { (self.api.write_to_pipe_in)(self.handle, c_int::from(endpoint), len, data.as_ptr().cast_mut()) };
        transferred(OP, moved, data.len())
    }
}

/// A pipe function's return value: the bytes moved, or a negative error code.
fn transferred(operation: &'static str, moved: c_long, asked: usize) -> Result<usize, FrontPanelError> {
    if moved < 0 {
        let raw = i32::try_from(moved).unwrap_or(OkErrorCode::Failed.raw());
        return Err(refused(operation, OkErrorCode::from_raw(raw).unwrap_or(OkErrorCode::Failed)));
    }
    let moved = moved as usize;
    if moved < asked {
        return Err(FrontPanelError::ShortTransfer { operation, asked, moved });
    }
    Ok(asked)
}
