//! A stand-in for Opal Kelly's `libokFrontPanel.so` that serves the emulated Rhythm board, or
//! the emulated SmartBox Pro with a SiNAPS probe.
//!
//! The daemon talks to real boards through the vendor library, loaded at run time
//! ([`ephysd_drivers::frontpanel::library::LibraryProvider`]). This shared library exports the
//! same `okFrontPanel_*` C entry points, with the signatures of the vendor's
//! `okFrontPanelDLL.h`, and answers them from the emulated board
//! ([`ephysd_drivers::emulator`]), so the production loading path (dlopen, symbol resolution,
//! every call across the C boundary, the board driver above it) runs end to end without
//! hardware:
//!
//! ```text
//! cargo build --release -p okfp-emu
//! # in the daemon's configuration:
//! device.frontpanel_library = "target/release/libokfp_emu.so"
//! ```
//!
//! The board it plays is read from the `OKFP_EMU_SPEC` environment variable (the spec
//! syntax of [`EmulatedBoardSpec`]: a Rhythm board, or with `board=sinaps-256`, `sinaps-512`
//! or `sinaps-1024` the SmartBox Pro; the default Rhythm board when it is unset) each time
//! devices are listed or opened. One board per process: every handle that opens it shares its
//! presence on the bus and its fired faults, as the in-process providers do.
//!
//! Conventions of the C API kept here: a handle that is not open answers `DeviceNotOpen` (-8)
//! where the function returns an error code and does nothing where it returns nothing; string
//! outputs are NUL-terminated and no longer than the API's buffers (serial 10 + 1, device id
//! 32 + 1, board model string 128); pipe functions return the bytes moved or a negative error
//! code. A handle whose board went away (an unplug fault) is closed, so `IsOpen` turns false as
//! it does with the vendor library.

#![allow(non_snake_case)]

use std::ffi::{c_char, c_int, c_long, c_ulong, c_void, CStr, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::{Arc, Mutex};

use ephysd_drivers::emulator::{EmulatedBoardSpec, SPEC_ENV};
use ephysd_drivers::frontpanel::{FrontPanel, FrontPanelError, ListedPanel, OkErrorCode, PanelProvider};

/// `OK_MAX_SERIALNUMBER_LENGTH`, `OK_MAX_DEVICEID_LENGTH`, `OK_MAX_BOARD_MODEL_STRING_LENGTH`:
/// buffer sizes, terminating NUL included.
const SERIAL_LEN: usize = 11;
const DEVICE_ID_LEN: usize = 33;
const MODEL_STRING_LEN: usize = 128;

/// `ok_BoardModel` values of the modules the emulated boards are built on.
const BOARD_MODELS: [(c_int, &str); 3] = [(13, "XEM6010LX45"), (21, "XEM6310LX45"), (43, "XEM7310A75")];
/// `ok_brdUnknown`.
const UNKNOWN_MODEL: c_int = 0;

const NO_ERROR: c_int = 0;

fn model_code(name: &str) -> c_int {
    BOARD_MODELS.iter().find(|(_, n)| *n == name).map_or(UNKNOWN_MODEL, |(code, _)| *code)
}

fn model_name(code: c_int) -> &'static str {
    BOARD_MODELS.iter().find(|(c, _)| *c == code).map_or("Unknown", |(_, name)| name)
}

/// The board of this process: created for the spec in `OKFP_EMU_SPEC`, and created anew
/// only if the spec changes.
static BOARD: Mutex<Option<(EmulatedBoardSpec, Arc<dyn PanelProvider>)>> = Mutex::new(None);

/// The last spec error written to stderr.
static REPORTED: Mutex<Option<String>> = Mutex::new(None);

/// The provider of the board `OKFP_EMU_SPEC` describes, or `None` (after one line on
/// stderr) if it describes none.
fn board() -> Option<Arc<dyn PanelProvider>> {
    let spec = match EmulatedBoardSpec::from_env() {
        Ok(spec) => spec,
        Err(e) => {
            // Once per distinct error: listing and opening both read the spec.
            let line = format!("okfp-emu: {SPEC_ENV}: {e}");
            let mut reported = REPORTED.lock().unwrap_or_else(|p| p.into_inner());
            if reported.as_deref() != Some(line.as_str()) {
                eprintln!("{line}");
                *reported = Some(line);
            }
            return None;
        }
    };
    let mut board = BOARD.lock().unwrap_or_else(|p| p.into_inner());
    match board.as_ref() {
        Some((current, _)) if *current == spec => {}
        _ => {
            let provider = spec.provider();
            *board = Some((spec, provider));
        }
    }
    board.as_ref().map(|(_, provider)| Arc::clone(provider))
}

/// The devices on the emulated bus: the board while it is plugged in.
fn listed() -> Vec<ListedPanel> {
    catch_unwind(|| board().and_then(|b| b.list().ok()).unwrap_or_default()).unwrap_or_default()
}

/// What a handle points to.
struct Device {
    /// The open board, or `None` before `OpenBySerial` (and after the board went away).
    panel: Option<Box<dyn FrontPanel>>,
}

/// The C return value of an error.
fn raw_code(e: &FrontPanelError) -> c_int {
    match e {
        FrontPanelError::Code { code, .. } => code.raw(),
        FrontPanelError::Endpoint { .. } => OkErrorCode::InvalidEndpoint.raw(),
        FrontPanelError::NotFound { .. } => OkErrorCode::DeviceNotOpen.raw(),
        FrontPanelError::Bitfile { .. } => OkErrorCode::InvalidBitstream.raw(),
        _ => OkErrorCode::Failed.raw(),
    }
}

/// The device behind handle `h`.
///
/// # Safety
///
/// `h` is null or a handle from [`okFrontPanel_Construct`] not yet destructed, used by one
/// thread at a time.
unsafe fn device<'a>(h: *mut c_void) -> Option<&'a mut Device> {
    // SAFETY: per the contract, a non-null `h` points to a live `Device` nobody else uses now.
    unsafe { h.cast::<Device>().as_mut() }
}

/// Runs `op` on the open board of `h`. Errors come back as C return values: `DeviceNotOpen`
/// for a handle that is not open, the mapped code otherwise. A board that answers
/// `DeviceNotOpen` went away and the handle is closed; so is one whose model panicked
/// (`Failed`).
///
/// # Safety
///
/// As for [`device`].
unsafe fn on_panel<T>(
    h: *mut c_void,
    op: impl FnOnce(&mut dyn FrontPanel) -> Result<T, FrontPanelError>,
) -> Result<T, c_int> {
    // SAFETY: forwarded contract.
    let Some(device) = (unsafe { device(h) }) else { return Err(OkErrorCode::DeviceNotOpen.raw()) };
    let Some(panel) = device.panel.as_mut() else { return Err(OkErrorCode::DeviceNotOpen.raw()) };
    match catch_unwind(AssertUnwindSafe(|| op(&mut **panel))) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => {
            let raw = raw_code(&e);
            if raw == OkErrorCode::DeviceNotOpen.raw() {
                device.panel = None;
            }
            Err(raw)
        }
        Err(_) => {
            device.panel = None;
            Err(OkErrorCode::Failed.raw())
        }
    }
}

/// Writes `text` into the C buffer `buf` of `size` bytes, truncated to `size - 1` bytes and
/// NUL-terminated.
///
/// # Safety
///
/// `buf` is null or writable for `size` bytes.
unsafe fn write_c_string(buf: *mut c_char, size: usize, text: &str) {
    if buf.is_null() || size == 0 {
        return;
    }
    let n = text.len().min(size - 1);
    // SAFETY: `n + 1 <= size` bytes of `buf` are writable; `text` does not overlap it.
    unsafe {
        std::ptr::copy_nonoverlapping(text.as_ptr(), buf.cast::<u8>(), n);
        *buf.add(n) = 0;
    }
}

/// A C endpoint address as the trait's `u8`, or `InvalidEndpoint`.
fn endpoint(ep: c_int) -> Result<u8, FrontPanelError> {
    u8::try_from(ep).map_err(|_| FrontPanelError::Code { operation: "endpoint", code: OkErrorCode::InvalidEndpoint })
}

fn invalid(operation: &'static str, code: OkErrorCode) -> FrontPanelError {
    FrontPanelError::Code { operation, code }
}

/// A pipe's result as its C return value: bytes moved (a short transfer moved some), or a
/// negative code.
fn pipe_result(result: Result<usize, c_int>) -> c_long {
    match result {
        Ok(n) => n as c_long,
        Err(raw) => c_long::from(raw),
    }
}

/// A pipe transfer's outcome with a short transfer counted as the bytes it moved.
fn moved(result: Result<usize, FrontPanelError>) -> Result<usize, FrontPanelError> {
    match result {
        Err(FrontPanelError::ShortTransfer { moved, .. }) => Ok(moved),
        other => other,
    }
}

/// Creates a handle, not open to any device.
///
/// # Safety
///
/// None beyond the C API's: the handle must be released with [`okFrontPanel_Destruct`].
#[no_mangle]
pub unsafe extern "C" fn okFrontPanel_Construct() -> *mut c_void {
    Box::into_raw(Box::new(Device { panel: None })).cast()
}

/// Releases a handle, closing its device.
///
/// # Safety
///
/// `h` is null or a handle from [`okFrontPanel_Construct`], destructed once and not used after.
#[no_mangle]
pub unsafe extern "C" fn okFrontPanel_Destruct(h: *mut c_void) {
    if !h.is_null() {
        // SAFETY: `h` came from `Box::into_raw` in Construct and is released once.
        drop(unsafe { Box::from_raw(h.cast::<Device>()) });
    }
}

/// Enumerates the bus: 1 while the emulated board is plugged in, 0 otherwise (or when
/// `OKFP_EMU_SPEC` holds no usable spec).
///
/// # Safety
///
/// `h` is a handle from [`okFrontPanel_Construct`] (it is not used: the bus is the process's).
#[no_mangle]
pub unsafe extern "C" fn okFrontPanel_GetDeviceCount(_h: *mut c_void) -> c_int {
    listed().len() as c_int
}

/// The serial number of listed device `num` (an empty string for no such device).
///
/// # Safety
///
/// `buf` is null or writable for 11 bytes.
#[no_mangle]
pub unsafe extern "C" fn okFrontPanel_GetDeviceListSerial(_h: *mut c_void, num: c_int, buf: *mut c_char) {
    let list = listed();
    let serial = usize::try_from(num).ok().and_then(|i| list.get(i)).map_or("", |p| p.serial.as_str());
    // SAFETY: per the contract.
    unsafe { write_c_string(buf, SERIAL_LEN, serial) }
}

/// The `ok_BoardModel` of listed device `num` (`ok_brdUnknown` for no such device).
///
/// # Safety
///
/// None: `h` is not used.
#[no_mangle]
pub unsafe extern "C" fn okFrontPanel_GetDeviceListModel(_h: *mut c_void, num: c_int) -> c_int {
    let list = listed();
    usize::try_from(num).ok().and_then(|i| list.get(i)).map_or(UNKNOWN_MODEL, |p| model_code(&p.model))
}

/// The name of board model `model` ("Unknown" for one the emulator does not play).
///
/// # Safety
///
/// `buf` is null or writable for 128 bytes.
#[no_mangle]
pub unsafe extern "C" fn okFrontPanel_GetBoardModelString(_h: *mut c_void, model: c_int, buf: *mut c_char) {
    // SAFETY: per the contract.
    unsafe { write_c_string(buf, MODEL_STRING_LEN, model_name(model)) }
}

/// The open device's `ok_BoardModel` (`ok_brdUnknown` when not open).
///
/// # Safety
///
/// `h` is a live handle from [`okFrontPanel_Construct`], used by one thread at a time.
#[no_mangle]
pub unsafe extern "C" fn okFrontPanel_GetBoardModel(h: *mut c_void) -> c_int {
    // SAFETY: per the contract.
    unsafe { on_panel(h, |p| Ok(model_code(&p.info().model))) }.unwrap_or(UNKNOWN_MODEL)
}

/// Opens the device with serial `serial` (NULL or "" for the first one): the emulated board
/// of `OKFP_EMU_SPEC` if the serial is its own and it is plugged in, else `Failed`.
///
/// # Safety
///
/// `h` is a live handle from [`okFrontPanel_Construct`], used by one thread at a time;
/// `serial` is null or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn okFrontPanel_OpenBySerial(h: *mut c_void, serial: *const c_char) -> c_int {
    // SAFETY: per the contract.
    let Some(device) = (unsafe { device(h) }) else { return OkErrorCode::InvalidParameter.raw() };
    let wanted = if serial.is_null() {
        String::new()
    } else {
        // SAFETY: per the contract, a non-null `serial` is NUL-terminated.
        unsafe { CStr::from_ptr(serial) }.to_string_lossy().into_owned()
    };
    device.panel = None;
    let opened = catch_unwind(|| board()?.open(Some(wanted.as_str())).ok());
    match opened {
        Ok(Some(panel)) => {
            device.panel = Some(panel);
            NO_ERROR
        }
        _ => OkErrorCode::Failed.raw(),
    }
}

/// Whether the handle has a device open.
///
/// # Safety
///
/// `h` is null or a live handle from [`okFrontPanel_Construct`], used by one thread at a time.
#[no_mangle]
pub unsafe extern "C" fn okFrontPanel_IsOpen(h: *mut c_void) -> c_int {
    // SAFETY: per the contract.
    unsafe { device(h) }.is_some_and(|d| d.panel.is_some()) as c_int
}

/// Loads the module's PLL settings from its EEPROM: the emulated clock needs none.
///
/// # Safety
///
/// `h` is a live handle from [`okFrontPanel_Construct`], used by one thread at a time.
#[no_mangle]
pub unsafe extern "C" fn okFrontPanel_LoadDefaultPLLConfiguration(h: *mut c_void) -> c_int {
    // SAFETY: per the contract.
    unsafe { on_panel(h, |_| Ok(NO_ERROR)) }.unwrap_or_else(|raw| raw)
}

/// The open device's serial number (empty when not open).
///
/// # Safety
///
/// `h` is a live handle from [`okFrontPanel_Construct`], used by one thread at a time; `buf`
/// is null or writable for 11 bytes.
#[no_mangle]
pub unsafe extern "C" fn okFrontPanel_GetSerialNumber(h: *mut c_void, buf: *mut c_char) {
    // SAFETY: per the contract.
    let serial = unsafe { on_panel(h, |p| Ok(p.info().serial)) }.unwrap_or_default();
    // SAFETY: per the contract.
    unsafe { write_c_string(buf, SERIAL_LEN, &serial) }
}

/// The open device's device id string (empty when not open).
///
/// # Safety
///
/// `h` is a live handle from [`okFrontPanel_Construct`], used by one thread at a time; `buf`
/// is null or writable for 33 bytes.
#[no_mangle]
pub unsafe extern "C" fn okFrontPanel_GetDeviceID(h: *mut c_void, buf: *mut c_char) {
    // SAFETY: per the contract.
    let id = unsafe { on_panel(h, |p| Ok(p.info().device_id)) }.unwrap_or_default();
    // SAFETY: per the contract.
    unsafe { write_c_string(buf, DEVICE_ID_LEN, &id) }
}

/// Configures the FPGA from the bitfile at `path`.
///
/// # Safety
///
/// `h` is a live handle from [`okFrontPanel_Construct`], used by one thread at a time; `path`
/// is null or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn okFrontPanel_ConfigureFPGA(h: *mut c_void, path: *const c_char) -> c_int {
    if path.is_null() {
        return OkErrorCode::FileError.raw();
    }
    // SAFETY: per the contract, `path` is NUL-terminated.
    let path = Path::new(OsStr::from_bytes(unsafe { CStr::from_ptr(path) }.to_bytes()));
    // SAFETY: per the contract.
    unsafe { on_panel(h, |p| p.configure_fpga(path)) }.map_or_else(|raw| raw, |()| NO_ERROR)
}

/// Whether the FPGA design speaks FrontPanel: the emulated one always does, once open.
///
/// # Safety
///
/// `h` is null or a live handle from [`okFrontPanel_Construct`], used by one thread at a time.
#[no_mangle]
pub unsafe extern "C" fn okFrontPanel_IsFrontPanelEnabled(h: *mut c_void) -> c_int {
    // SAFETY: per the contract.
    unsafe { okFrontPanel_IsOpen(h) }
}

/// Runs the FPGA's reset profile: the emulated board has none (`UnsupportedFeature`).
///
/// # Safety
///
/// `h` is a live handle from [`okFrontPanel_Construct`], used by one thread at a time.
#[no_mangle]
pub unsafe extern "C" fn okFrontPanel_ResetFPGA(h: *mut c_void) -> c_int {
    // SAFETY: per the contract.
    unsafe { on_panel(h, |_| Ok(OkErrorCode::UnsupportedFeature.raw())) }.unwrap_or_else(|raw| raw)
}

/// Stages the `mask` bits of wire-in `ep` to `val`.
///
/// # Safety
///
/// `h` is a live handle from [`okFrontPanel_Construct`], used by one thread at a time.
#[no_mangle]
pub unsafe extern "C" fn okFrontPanel_SetWireInValue(h: *mut c_void, ep: c_int, val: c_ulong, mask: c_ulong) -> c_int {
    // SAFETY: per the contract.
    unsafe { on_panel(h, |p| p.set_wire_in(endpoint(ep)?, val as u32, mask as u32)) }
        .map_or_else(|raw| raw, |()| NO_ERROR)
}

/// Sends the staged wire-ins to the FPGA.
///
/// # Safety
///
/// `h` is a live handle from [`okFrontPanel_Construct`], used by one thread at a time.
#[no_mangle]
pub unsafe extern "C" fn okFrontPanel_UpdateWireIns(h: *mut c_void) {
    // SAFETY: per the contract. The C function returns nothing; a board that went away
    // closes the handle (`IsOpen` turns false).
    let _ = unsafe { on_panel(h, |p| p.update_wire_ins()) };
}

/// Samples every wire-out.
///
/// # Safety
///
/// `h` is a live handle from [`okFrontPanel_Construct`], used by one thread at a time.
#[no_mangle]
pub unsafe extern "C" fn okFrontPanel_UpdateWireOuts(h: *mut c_void) {
    // SAFETY: as in UpdateWireIns.
    let _ = unsafe { on_panel(h, |p| p.update_wire_outs()) };
}

/// Wire-out `ep` as of the last UpdateWireOuts (0 when not open or not a wire-out).
///
/// # Safety
///
/// `h` is a live handle from [`okFrontPanel_Construct`], used by one thread at a time.
#[no_mangle]
pub unsafe extern "C" fn okFrontPanel_GetWireOutValue(h: *mut c_void, ep: c_int) -> c_ulong {
    // SAFETY: per the contract.
    unsafe { on_panel(h, |p| p.wire_out(endpoint(ep)?)) }.map_or(0, c_ulong::from)
}

/// Pulses bit `bit` of trigger-in `ep`.
///
/// # Safety
///
/// `h` is a live handle from [`okFrontPanel_Construct`], used by one thread at a time.
#[no_mangle]
pub unsafe extern "C" fn okFrontPanel_ActivateTriggerIn(h: *mut c_void, ep: c_int, bit: c_int) -> c_int {
    // SAFETY: per the contract.
    unsafe {
        on_panel(h, |p| {
            let bit = u8::try_from(bit).map_err(|_| invalid("ActivateTriggerIn", OkErrorCode::InvalidParameter))?;
            p.activate_trigger_in(endpoint(ep)?, bit)
        })
    }
    .map_or_else(|raw| raw, |()| NO_ERROR)
}

/// Writes `length` bytes at `data` to pipe-in `ep`; returns the bytes written or an error code.
///
/// # Safety
///
/// `h` is a live handle from [`okFrontPanel_Construct`], used by one thread at a time; `data`
/// is readable for `length` bytes.
#[no_mangle]
pub unsafe extern "C" fn okFrontPanel_WriteToPipeIn(
    h: *mut c_void,
    ep: c_int,
    length: c_long,
    data: *mut u8,
) -> c_long {
    const OP: &str = "WriteToPipeIn";
    // SAFETY: per the contract.
    pipe_result(unsafe {
        on_panel(h, |p| {
            let len = usize::try_from(length).map_err(|_| invalid(OP, OkErrorCode::InvalidParameter))?;
            if data.is_null() && len > 0 {
                return Err(invalid(OP, OkErrorCode::InvalidParameter));
            }
            // SAFETY: per the contract, `data` is readable for `len` bytes.
            let data = if len == 0 { &[][..] } else { std::slice::from_raw_parts(data, len) };
            moved(p.write_pipe_in(endpoint(ep)?, data))
        })
    })
}

/// The buffer of a pipe read.
///
/// # Safety
///
/// `data` is writable for `length` bytes when `length` is positive.
unsafe fn read_buffer<'a>(
    operation: &'static str,
    length: c_long,
    data: *mut u8,
) -> Result<&'a mut [u8], FrontPanelError> {
    let len = usize::try_from(length).map_err(|_| invalid(operation, OkErrorCode::InvalidParameter))?;
    if len == 0 {
        return Ok(&mut []);
    }
    if data.is_null() {
        return Err(invalid(operation, OkErrorCode::InvalidParameter));
    }
    // SAFETY: per the contract.
    Ok(unsafe { std::slice::from_raw_parts_mut(data, len) })
}

/// Reads `length` bytes from pipe-out `ep` into `data`; returns the bytes read or an error
/// code.
///
/// # Safety
///
/// `h` is a live handle from [`okFrontPanel_Construct`], used by one thread at a time; `data`
/// is writable for `length` bytes.
#[no_mangle]
pub unsafe extern "C" fn okFrontPanel_ReadFromPipeOut(
    h: *mut c_void,
    ep: c_int,
    length: c_long,
    data: *mut u8,
) -> c_long {
    // SAFETY: per the contract.
    pipe_result(unsafe {
        on_panel(h, |p| {
            let buf = read_buffer("ReadFromPipeOut", length, data)?;
            moved(p.read_pipe_out(endpoint(ep)?, None, buf))
        })
    })
}

/// Reads `length` bytes from block-throttled pipe-out `ep` in blocks of `block_size` bytes;
/// returns the bytes read or an error code.
///
/// # Safety
///
/// `h` is a live handle from [`okFrontPanel_Construct`], used by one thread at a time; `data`
/// is writable for `length` bytes.
#[no_mangle]
pub unsafe extern "C" fn okFrontPanel_ReadFromBlockPipeOut(
    h: *mut c_void,
    ep: c_int,
    block_size: c_int,
    length: c_long,
    data: *mut u8,
) -> c_long {
    const OP: &str = "ReadFromBlockPipeOut";
    // SAFETY: per the contract.
    pipe_result(unsafe {
        on_panel(h, |p| {
            let block = usize::try_from(block_size)
                .ok()
                .filter(|&b| b > 0)
                .ok_or_else(|| invalid(OP, OkErrorCode::InvalidBlockSize))?;
            let buf = read_buffer(OP, length, data)?;
            moved(p.read_pipe_out(endpoint(ep)?, Some(block), buf))
        })
    })
}
