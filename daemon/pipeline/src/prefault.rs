//! Buffers the real-time stages allocate once, when they are built, and fault in there.

/// A buffer of `n` copies of `value` whose pages are all mapped.
///
/// Fresh pages are mapped lazily, on first write: left that way, the acquisition thread would
/// take a page fault (and the kernel would zero a page) the first time each 4 KiB of a signal
/// block, filter state, history, noise ring or pending snippet is written. Writing every page
/// here moves that cost to the thread that builds the stage.
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

/// Maps every page of `buffer` by rewriting one element per page.
pub(crate) fn touch<T: Copy>(buffer: &mut [T]) {
    let per_page = (4096 / std::mem::size_of::<T>().max(1)).max(1);
    for slot in buffer.iter_mut().step_by(per_page) {
        // SAFETY: as in `prefaulted`: a valid, initialized element rewritten with itself.
        unsafe { std::ptr::write_volatile(slot, *slot) };
    }
}

/// Maps every page of a frame block's lanes (blocks are allocated zeroed, so lazily).
pub(crate) fn touch_block(block: &mut ephysd_drivers::FrameBlock) {
    touch(&mut block.frame_index);
    touch(&mut block.amplifier);
    touch(&mut block.aux);
    touch(&mut block.analog_in);
    touch(&mut block.digital_in);
    touch(&mut block.digital_out);
}
