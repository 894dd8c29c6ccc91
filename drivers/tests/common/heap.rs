//! A global allocator that counts the current thread's allocations while counting is switched
//! on, so a test can assert that a real-time call (reading a block, decoding frames) makes
//! none. Each test binary installs it with
//! `#[global_allocator] static GLOBAL: common::heap::CountingAllocator = common::heap::CountingAllocator;`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Counts allocations (and reallocations) of the current thread while [`counting`] is on.
pub struct CountingAllocator;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: the allocator also serves threads whose locals are being torn down.
    if COUNTING.try_with(Cell::get).unwrap_or(false) {
        let _ = ALLOCATIONS.try_with(|a| a.set(a.get() + 1));
    }
}

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Switches counting on or off for the current thread.
pub fn counting(on: bool) {
    COUNTING.with(|c| c.set(on));
}

/// The allocations counted so far on the current thread, and starts again from zero.
pub fn take_allocations() -> usize {
    ALLOCATIONS.with(|a| a.replace(0))
}
