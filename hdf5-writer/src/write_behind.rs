//! Write-behind and drop-behind for a recording file: the page cache holds a bounded window
//! of the recording, not all of it.
//!
//! Left to itself, the kernel keeps every byte a long recording writes in the page cache as
//! dirty memory until its writeback thresholds trip, then writes gigabytes in a burst that can
//! stall the writer, and keeps the written pages cached afterwards, evicting everything else
//! on the rig PC. A recording is written once and not read back, so that caching buys nothing.
//!
//! [`WriteBehind`] instead starts writeback of every batch as soon as it is written
//! (`sync_file_range(SYNC_FILE_RANGE_WRITE)`, asynchronous), and once the file has grown more
//! than [`WINDOW_BYTES`] past a range, waits for that range's writeback (long finished by then
//! in steady state) and drops it from the page cache (`posix_fadvise(DONTNEED)`). The result:
//! dirty data and cached pages stay within about one window, the disk sees a steady stream,
//! an I/O error surfaces while recording rather than at close, and the writer keeps reusing
//! the same recently freed pages instead of pulling fresh memory for every batch.
//!
//! It also reserves disk space ahead of the file's end (`fallocate`, [`RESERVE_BYTES`] at a
//! time, without changing the file's size), so the blocks are allocated in large contiguous
//! runs rather than page by page at writeback, and each write skips the file system's
//! per-page delayed-allocation bookkeeping; what is left reserved past the end is released
//! when the recording closes.
//!
//! The reservation is also what makes a full disk harmless. Before every write the writer asks
//! for room ([`WriteBehind::ensure_room`]): the write's bytes plus [`CLOSING_MARGIN_BYTES`],
//! reserved past the end. When that cannot be had, nothing is written and the writer closes
//! the file inside the margin it reserved earlier: the recording ends complete and valid
//! instead of with a write that failed half-way through HDF5's metadata. On a file system
//! that cannot reserve (`fallocate` unsupported), the same rule is kept with the free space
//! `statvfs` reports.
//!
//! This is not durability: `sync_file_range` neither flushes the device's cache nor the file
//! system's metadata. Crash safety is the recorder's flush and finalize policy; this bounds
//! how much is at stake in memory.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

/// How far behind the end of the file pages are dropped from the page cache, in bytes.
///
/// At 1024 channels × 30 kHz (61 MB/s) this is about 130 ms of signal; at 64 channels,
/// about two seconds. Small is right: the recorder may wait for the disk when it falls a
/// window behind, and that wait is harmless because the primary cache (60 s by default), not
/// the page cache, is what absorbs a slow disk. A small window also means the writer keeps
/// recycling the same few megabytes of page cache. HDF5 keeps its own metadata cache, so
/// dropping pages that hold chunk-index nodes costs at most an occasional re-read.
pub const WINDOW_BYTES: u64 = 8 << 20;

/// How much disk space is reserved ahead of the file's end at a time, in bytes.
pub const RESERVE_BYTES: u64 = 64 << 20;

/// Space always kept reserved past what has been written, for closing the file: the last
/// batch of frames, the tables' waiting rows, the final attributes and HDF5's metadata.
pub const CLOSING_MARGIN_BYTES: u64 = 8 << 20;

/// The smallest file-size limit a recording file can live with: room to close it, a batch,
/// and the recorder's headroom before it rolls over, twice over.
pub const MIN_FILE_SIZE_LIMIT: u64 = 32 << 20;

/// The room a write asked for is not there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NoRoom {
    /// Bytes the write (with the closing margin) needed past the current end of the file.
    pub needed: u64,
    /// Bytes that could be had: reserved past the end, or free on the file system.
    pub available: u64,
}

/// Follows a growing file and keeps its written-back tail out of the page cache.
///
/// Works on its own descriptor of the file: writeback and page-cache state belong to the
/// file, not to a descriptor, so this needs no access to the HDF5 library's descriptor.
#[derive(Debug)]
pub(crate) struct WriteBehind {
    file: File,
    /// Bytes from the start of the file whose writeback has been started.
    submitted: u64,
    /// Bytes from the start of the file written back and dropped from the page cache.
    settled: u64,
    /// Bytes from the start of the file with disk space reserved; `None` on a file system
    /// that cannot reserve, where free space is checked instead.
    reserved: Option<u64>,
    /// The file is in memory (tmpfs): there is no writeback to start and no page to drop.
    in_memory: bool,
    /// The largest size the file may reach (process or file-system limit), if any.
    max_size: Option<u64>,
}

impl WriteBehind {
    /// Opens `path` (an existing file, not truncated) to follow it.
    pub fn open(path: &Path) -> io::Result<Self> {
        let file = OpenOptions::new().write(true).open(path)?;
        // On a memory file system reserving allocates and zeroes RAM ahead of the data, for
        // nothing: there are no blocks to keep contiguous. Free space is checked instead.
        let in_memory = sys::is_memory_backed(&file);
        let max_size = sys::max_file_size(&file);
        Ok(WriteBehind { file, submitted: 0, settled: 0, reserved: (!in_memory).then_some(0), in_memory, max_size })
    }

    /// Starts writeback of everything written since the last call, and drops what lies more
    /// than [`WINDOW_BYTES`] before the end of the file. Call after each batch is written.
    ///
    /// An error is a real write error on the device (EIO, ENOSPC at allocation): the data
    /// in the affected range did not reach the disk.
    pub fn advance(&mut self) -> io::Result<()> {
        if self.in_memory {
            return Ok(());
        }
        let end = self.file.metadata()?.len();
        if end > self.submitted {
            sys::start_writeback(&self.file, self.submitted, end - self.submitted)?;
            self.submitted = end;
        }
        let settle_to = end.saturating_sub(WINDOW_BYTES);
        if settle_to > self.settled {
            sys::finish_writeback(&self.file, self.settled, settle_to - self.settled)?;
            sys::drop_cached(&self.file, self.settled, settle_to - self.settled)?;
            self.settled = settle_to;
        }
        Ok(())
    }

    /// Makes sure `bytes` more can be written and the file still closed: reserves up to
    /// `end + bytes + CLOSING_MARGIN_BYTES` (a whole [`RESERVE_BYTES`] step when it can, just
    /// what is needed when the disk is nearly full). Fails, having written nothing, when that
    /// much cannot be had.
    pub fn ensure_room(&mut self, bytes: u64) -> Result<(), NoRoom> {
        let end = self.file.metadata().map(|m| m.len()).unwrap_or(0);
        let needed = end + bytes + CLOSING_MARGIN_BYTES;
        if let Some(max) = self.max_size {
            if needed > max {
                return Err(NoRoom { needed: needed - end, available: max.saturating_sub(end) });
            }
        }
        let Some(reserved) = self.reserved else {
            let free = sys::free_bytes(&self.file).unwrap_or(u64::MAX);
            return if free >= bytes + CLOSING_MARGIN_BYTES {
                Ok(())
            } else {
                Err(NoRoom { needed: bytes + CLOSING_MARGIN_BYTES, available: free })
            };
        };
        if needed <= reserved {
            return Ok(());
        }
        let from = reserved.max(end);
        let step = needed.max(from + RESERVE_BYTES);
        match sys::reserve(&self.file, from, step - from) {
            Ok(()) => {
                self.reserved = Some(step);
                Ok(())
            }
            Err(e) if is_no_space(&e) => match sys::reserve(&self.file, from, needed - from) {
                Ok(()) => {
                    self.reserved = Some(needed);
                    Ok(())
                }
                Err(_) => Err(NoRoom { needed: needed - end, available: reserved.saturating_sub(end) }),
            },
            Err(_) => {
                // Reserving is not supported here: keep the same rule with free space.
                self.reserved = None;
                self.ensure_room(bytes)
            }
        }
    }

    /// The file-size limit itself, if any.
    pub fn max_size(&self) -> Option<u64> {
        self.max_size
    }

    /// The largest size the file can be written to and still closed: its size limit less the
    /// closing margin.
    pub fn size_limit(&self) -> Option<u64> {
        self.max_size.map(|m| m.saturating_sub(CLOSING_MARGIN_BYTES))
    }

    /// Gives back the space reserved past the file's end. Call once the file is closed.
    pub fn release_reserved(&mut self) -> io::Result<()> {
        if self.reserved.take().is_some() {
            // Truncating to the current size keeps every byte and frees the blocks past it.
            let len = self.file.metadata()?.len();
            self.file.set_len(len)?;
        }
        Ok(())
    }
}

/// Bytes an unprivileged writer can still use on the file system that holds `path` (a file or
/// a directory).
pub fn free_space(path: &Path) -> io::Result<u64> {
    sys::free_bytes(&File::open(path)?)
}

/// Whether a failed reservation means "not enough space" (as opposed to "cannot reserve").
fn is_no_space(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded | io::ErrorKind::FileTooLarge)
}

#[cfg(target_os = "linux")]
mod sys {
    use std::fs::File;
    use std::io;
    use std::os::fd::AsRawFd;

    fn check(rc: libc::c_int) -> io::Result<()> {
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    fn off(v: u64) -> libc::off64_t {
        v.min(libc::off64_t::MAX as u64) as libc::off64_t
    }

    /// Queues writeback of the range without waiting for it.
    pub fn start_writeback(file: &File, offset: u64, len: u64) -> io::Result<()> {
        // SAFETY: plain syscall on a descriptor we own; no memory is passed.
        check(unsafe { libc::sync_file_range(file.as_raw_fd(), off(offset), off(len), libc::SYNC_FILE_RANGE_WRITE) })
    }

    /// Writes back the range and waits until it is on the device (started long ago in
    /// steady state, so this rarely waits).
    pub fn finish_writeback(file: &File, offset: u64, len: u64) -> io::Result<()> {
        let flags = libc::SYNC_FILE_RANGE_WAIT_BEFORE | libc::SYNC_FILE_RANGE_WRITE | libc::SYNC_FILE_RANGE_WAIT_AFTER;
        // SAFETY: as above.
        check(unsafe { libc::sync_file_range(file.as_raw_fd(), off(offset), off(len), flags) })
    }

    /// Allocates disk space for the range without changing the file's size.
    pub fn reserve(file: &File, offset: u64, len: u64) -> io::Result<()> {
        // SAFETY: as above.
        check(unsafe { libc::fallocate(file.as_raw_fd(), libc::FALLOC_FL_KEEP_SIZE, off(offset), off(len)) })
    }

    /// The largest size the file may reach: the process's file-size limit (`RLIMIT_FSIZE`) or
    /// the file system's (`_PC_FILESIZEBITS`), whichever is smaller; `None` when neither is
    /// below what a recording could ever reach.
    pub fn max_file_size(file: &File) -> Option<u64> {
        let mut max = u64::MAX;
        // SAFETY: getrlimit fills the struct we pass; fpathconf only reads the descriptor.
        unsafe {
            let mut limit: libc::rlimit = std::mem::zeroed();
            if libc::getrlimit(libc::RLIMIT_FSIZE, &mut limit) == 0 && limit.rlim_cur != libc::RLIM_INFINITY {
                max = max.min(limit.rlim_cur);
            }
            let bits = libc::fpathconf(file.as_raw_fd(), libc::_PC_FILESIZEBITS);
            if (1..64).contains(&bits) {
                max = max.min((1u64 << (bits - 1)) - 1);
            }
        }
        (max < 1 << 62).then_some(max)
    }

    /// Whether the file lives in memory (tmpfs, ramfs).
    pub fn is_memory_backed(file: &File) -> bool {
        const TMPFS_MAGIC: i64 = 0x0102_1994;
        const RAMFS_MAGIC: i64 = 0x8584_58f6;
        // SAFETY: fstatfs fills the struct we pass; it is plain data.
        unsafe {
            let mut stats: libc::statfs = std::mem::zeroed();
            libc::fstatfs(file.as_raw_fd(), &mut stats) == 0 && matches!(stats.f_type as i64, TMPFS_MAGIC | RAMFS_MAGIC)
        }
    }

    /// Bytes an unprivileged writer can still use on the file's file system.
    pub fn free_bytes(file: &File) -> io::Result<u64> {
        // SAFETY: fstatvfs fills the struct we pass; it is plain data.
        unsafe {
            let mut stats: libc::statvfs = std::mem::zeroed();
            check(libc::fstatvfs(file.as_raw_fd(), &mut stats))?;
            Ok(stats.f_bavail as u64 * stats.f_frsize as u64)
        }
    }

    /// Tells the kernel the (clean) range will not be read again, so its pages are freed.
    pub fn drop_cached(file: &File, offset: u64, len: u64) -> io::Result<()> {
        // SAFETY: as above. posix_fadvise returns the error number instead of setting errno.
        let rc = unsafe { libc::posix_fadvise(file.as_raw_fd(), off(offset), off(len), libc::POSIX_FADV_DONTNEED) };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::from_raw_os_error(rc))
        }
    }
}

/// Elsewhere the kernel's own policy applies; the window is Linux-only.
#[cfg(not(target_os = "linux"))]
mod sys {
    use std::fs::File;
    use std::io;

    pub fn start_writeback(_: &File, _: u64, _: u64) -> io::Result<()> {
        Ok(())
    }

    pub fn finish_writeback(_: &File, _: u64, _: u64) -> io::Result<()> {
        Ok(())
    }

    pub fn drop_cached(_: &File, _: u64, _: u64) -> io::Result<()> {
        Ok(())
    }

    pub fn reserve(_: &File, _: u64, _: u64) -> io::Result<()> {
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }

    pub fn free_bytes(_: &File) -> io::Result<u64> {
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }

    pub fn is_memory_backed(_: &File) -> bool {
        false
    }

    pub fn max_file_size(_: &File) -> Option<u64> {
        None
    }
}
