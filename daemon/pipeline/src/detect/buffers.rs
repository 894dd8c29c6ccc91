//! Buffers the detector allocates once, at construction, and faults in there.

/// A buffer of `n` copies of `value` whose pages are all mapped.
///
/// Fresh pages are mapped lazily, on first write: left that way, the acquisition thread would
/// take a page fault (and the kernel would zero a page) the first time each 4 KiB of history,
/// noise ring or pending snippet is written. Writing every page here moves that cost to the
/// thread that builds the detector.
pub(crate) fn prefaulted<T: Copy>(n: usize, value: T) -> Box<[T]> {
    let mut buffer = vec![value; n].into_boxed_slice();
    let per_page = (4096 / std::mem::size_of::<T>().max(1)).max(1);
    for slot in buffer.iter_mut().step_by(per_page) {
        // SAFETY: `slot` is a valid, aligned, initialized element; the volatile write of the
        // value it already holds only keeps the compiler from eliding the store.
        unsafe { std::ptr::write_volatile(slot, value) };
    }
    buffer
}
