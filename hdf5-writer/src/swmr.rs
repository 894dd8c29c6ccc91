//! SWMR (single writer, multiple readers): how recordings stay consistent on disk at every
//! instant.
//!
//! A file written in SWMR mode (HDF5 1.10 format) is structurally valid whenever the writer
//! stops, SIGKILL included, and readers can follow it live with `h5py.File(path, "r",
//! swmr=True)`. The price: every object is created before SWMR writing starts (afterwards only
//! appends and attribute updates), and a file whose writer died keeps its "open for writing"
//! mark, so plain readers refuse it until that mark is cleared. [`open_clearing_mark`] clears
//! it (what HDF5's `h5clear` tool does), which recovery uses.

use std::ffi::CString;
use std::path::Path;

use hdf5::file::FileAccess;
use hdf5::File;
use hdf5_sys::h5f::{H5Fopen, H5F_ACC_RDWR};
use hdf5_sys::h5p::H5Pset;

/// The file-access property HDF5's `h5clear` sets to open a file whose writer died.
const CLEAR_STATUS_FLAGS: &str = "clear_status_flags";

/// File access for recordings: the HDF5 1.10 format, which SWMR needs.
pub(crate) fn access() -> hdf5::Result<FileAccess> {
    FileAccess::build().libver_v110().finish()
}

/// Opens `path` read-write, clearing the "open for writing" mark a writer that died left.
/// Works on a cleanly closed file too (there is nothing to clear).
pub(crate) fn open_clearing_mark(path: &Path) -> hdf5::Result<File> {
    let name = CString::new(path.to_str().ok_or_else(|| format!("path is not UTF-8: {path:?}"))?)
        .map_err(|e| e.to_string())?;
    let property = CString::new(CLEAR_STATUS_FLAGS).expect("no NUL");
    let fapl = FileAccess::build().finish()?;
    hdf5::sync::sync(|| {
        // hbool_t is one byte in C; a 32-bit 1 reads as true whichever width HDF5 copies.
        let mut yes: u32 = 1;
        // SAFETY: `fapl` is a live file-access property list; the property name and value
        // outlive the call, which copies the value.
        hdf5::h5check(unsafe { H5Pset(fapl.id(), property.as_ptr(), (&mut yes as *mut u32).cast()) })?;
        // SAFETY: `name` is a valid C string; the id returned is owned by the File below.
        let id = hdf5::h5check(unsafe { H5Fopen(name.as_ptr(), H5F_ACC_RDWR, fapl.id()) })?;
        // SAFETY: a fresh file id nobody else holds.
        unsafe { hdf5::from_id::<File>(id) }
    })
}

/// Points HDF5's own descriptor of `file` at `target`, so that whatever the library writes
/// (or reads) from now on goes there instead of to the recording. Used after a failed write:
/// closing the file normally would make HDF5 write metadata describing the failed write, and a
/// file whose metadata points past what reached the disk no longer opens. Detached, the file
/// stays exactly as the last successful write left it, which SWMR keeps consistent.
pub(crate) fn redirect_descriptor(file: &File, target: &std::fs::File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let mut handle: *mut std::ffi::c_void = std::ptr::null_mut();
    let fd = hdf5::sync::sync(|| {
        // SAFETY: a live file id; H5P_DEFAULT asks for the driver's main descriptor, which the
        // sec2 driver returns as a pointer to its int file descriptor.
        let rc = unsafe { hdf5_sys::h5f::H5Fget_vfd_handle(file.id(), hdf5_sys::h5p::H5P_DEFAULT, &mut handle) };
        if rc < 0 || handle.is_null() {
            return Err(std::io::Error::other("HDF5 did not give its file descriptor"));
        }
        // SAFETY: non-null, pointing at the driver's int descriptor, which lives as long as the file.
        Ok(unsafe { *(handle as *const libc::c_int) })
    })?;
    // SAFETY: dup2 onto a descriptor the library owns and keeps using; both are valid.
    if unsafe { libc::dup2(target.as_raw_fd(), fd) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
