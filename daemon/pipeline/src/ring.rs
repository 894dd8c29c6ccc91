//! The sequence-lock protocol behind the primary cache and the event rings.
//!
//! Both are rings with one writer and any number of readers that must never wait for each
//! other. Every item gets a sequence number (0, 1, 2, ...) and lives in slot
//! `seq % capacity`. Before overwriting slots, the writer announces how far it is about to
//! write (`claimed`), then stores the data, then publishes `head`. A reader copies items below
//! `head`, then re-reads `claimed`: any item older than `claimed - capacity` may have been
//! overwritten during the copy, so it is discarded and counted as lost, and the copy is redone
//! from the first safe item. A reader therefore never keeps torn data and always knows exactly
//! how much it missed.
//!
//! The item storage itself is the caller's (atomic words, so concurrent access is defined);
//! this type holds only the positions and runs the protocol.

use std::sync::atomic::{fence, AtomicU64, Ordering};

/// Writer and reader positions of one ring.
#[derive(Debug)]
pub(crate) struct SeqRing {
    capacity: u64,
    /// One past the last item the writer has started to overwrite.
    claimed: AtomicU64,
    /// One past the last item fully written.
    head: AtomicU64,
    /// Sequence number of the ring's first item: 0, or where [`SeqRing::start_at`] put it.
    /// Nothing below it was ever written.
    first: AtomicU64,
}

/// What one read of a ring returned: `items` copied (the newest copy is the valid one) and
/// `lost` items the reader wanted but the writer had already overwritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Taken {
    pub items: usize,
    pub lost: u64,
}

impl SeqRing {
    pub fn new(capacity: usize) -> Self {
        assert!(capacity > 0, "a ring holds at least one item");
        SeqRing {
            capacity: capacity as u64,
            claimed: AtomicU64::new(0),
            head: AtomicU64::new(0),
            first: AtomicU64::new(0),
        }
    }

    /// Writer only, before its first write: numbers the first item `first` instead of 0, for a
    /// ring that follows another from the middle of its stream. Readers see no item below it.
    pub fn start_at(&self, first: u64) {
        assert_eq!(self.claimed.load(Ordering::Relaxed), 0, "a ring starts before its first write");
        self.first.store(first, Ordering::Relaxed);
        self.claimed.store(first, Ordering::Relaxed);
        // Published with `head` (Release), so a reader that sees the new head sees `first`.
        self.head.store(first, Ordering::Release);
    }

    /// Sequence number of the oldest item held (the writer overwrites it next).
    #[inline]
    pub fn oldest(&self) -> u64 {
        self.oldest_at(self.head())
    }

    /// The oldest item held while the newest is `head - 1`.
    #[inline]
    fn oldest_at(&self, head: u64) -> u64 {
        head.saturating_sub(self.capacity).max(self.first.load(Ordering::Relaxed))
    }

    pub fn capacity(&self) -> usize {
        self.capacity as usize
    }

    /// Items written since the ring was made (the next item's sequence number).
    #[inline]
    pub fn head(&self) -> u64 {
        self.head.load(Ordering::Acquire)
    }

    /// The slot that holds sequence number `seq`.
    #[inline]
    pub fn slot(&self, seq: u64) -> usize {
        (seq % self.capacity) as usize
    }

    /// Writer only: announces that items `head..head + n` are about to be written and returns
    /// `head`. Nothing may be stored into their slots before this.
    #[inline]
    pub fn begin_write(&self, n: usize) -> u64 {
        let start = self.head.load(Ordering::Relaxed);
        self.claimed.store(start + n as u64, Ordering::Relaxed);
        // The seqlock's "odd" phase: the claim is visible before any slot changes.
        fence(Ordering::Release);
        start
    }

    /// Writer only: makes everything below `end` readable.
    #[inline]
    pub fn end_write(&self, end: u64) {
        self.head.store(end, Ordering::Release);
    }

    /// Reader side: copies up to `max` items from `*next` on with `copy(from, n)`, keeps only
    /// what the writer cannot have overwritten during the copy, and advances `*next` past it.
    /// Never blocks; returns zero items when the reader is caught up.
    pub fn read(&self, next: &mut u64, max: usize, mut copy: impl FnMut(u64, usize)) -> Taken {
        let mut lost = 0u64;
        loop {
            let head = self.head.load(Ordering::Acquire);
            let oldest = self.oldest_at(head);
            if *next < oldest {
                lost += oldest - *next;
                *next = oldest;
            }
            let n = ((head - *next) as usize).min(max);
            if n == 0 {
                return Taken { items: 0, lost };
            }
            copy(*next, n);
            // Close the seqlock: anything the writer began overwriting before this point is
            // suspect, and whatever was copied older than that is dropped, never returned torn.
            fence(Ordering::Acquire);
            let claimed = self.claimed.load(Ordering::Relaxed);
            let safe_from = claimed.saturating_sub(self.capacity);
            if *next >= safe_from {
                *next += n as u64;
                return Taken { items: n, lost };
            }
            lost += safe_from - *next;
            *next = safe_from;
        }
    }
}

/// Allocates `n` zeroed atomic words and faults every page in now.
///
/// The kernel hands out freshly allocated pages lazily, on first write. Left that way, the
/// acquisition thread would take a page fault (and the kernel would zero a page) every 4 KiB
/// of a ring's first pass: for a 1024-channel primary cache that is about 1 500 faults per
/// second of signal on the real-time thread. Touching every page here moves that cost to the
/// thread that builds the ring, before the stream starts.
pub(crate) fn prefaulted_words(n: usize) -> Box<[AtomicU64]> {
    if n == 0 {
        return Box::new([]);
    }
    let layout = std::alloc::Layout::array::<AtomicU64>(n).expect("ring size overflows");
    // SAFETY: the layout is non-zero-sized; all-zero bits are a valid AtomicU64; the pointer is
    // turned into a Box of exactly `n` elements with the same layout it was allocated with.
    let words: Box<[AtomicU64]> = unsafe {
        let ptr = std::alloc::alloc_zeroed(layout) as *mut AtomicU64;
        if ptr.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        Box::from_raw(std::ptr::slice_from_raw_parts_mut(ptr, n))
    };
    advise_huge_pages(words.as_ptr() as usize, n * std::mem::size_of::<AtomicU64>());
    // Write one word of every page (with the zero it already holds), so the kernel maps each
    // page now rather than on the real-time thread's first store.
    const WORDS_PER_PAGE: usize = 4096 / std::mem::size_of::<AtomicU64>();
    for word in words.iter().step_by(WORDS_PER_PAGE) {
        word.store(0, Ordering::Relaxed);
    }
    words
}

/// Asks Linux to back the `len` bytes at `address` with 2 MiB pages where it can, before they
/// are first touched (transparent huge pages; most distributions enable them for regions that
/// ask, `madvise` mode).
///
/// A 1024-channel cache is hundreds of MiB that every consumer walks with a 2 KiB stride
/// (one frame after the other), and a channel-major reader touches a new 4 KiB page every
/// two frames: with small pages nearly every frame costs a TLB miss, with 2 MiB pages one in
/// a thousand. Refusal (huge pages disabled, other kernels) only leaves the small pages.
fn advise_huge_pages(address: usize, len: usize) {
    const HUGE: usize = 2 << 20;
    #[cfg(target_os = "linux")]
    if len >= HUGE {
        // madvise wants a page-aligned start; the kernel uses huge pages for the 2 MiB-aligned
        // stretches inside the range.
        let start = address.next_multiple_of(4096);
        let end = address + len;
        // SAFETY: the range lies inside one live allocation owned by the caller; MADV_HUGEPAGE
        // only changes how its pages are backed, never their contents.
        unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE) };
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (address, len, HUGE);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_that_fell_behind_is_moved_to_the_oldest_item_and_told_the_loss() {
        let ring = SeqRing::new(8);
        let start = ring.begin_write(20);
        ring.end_write(start + 20);
        let mut next = 0;
        let taken = ring.read(&mut next, 100, |from, n| assert_eq!((from, n), (12, 8)));
        assert_eq!(taken, Taken { items: 8, lost: 12 });
        assert_eq!(next, 20);
        assert_eq!(ring.read(&mut next, 100, |_, _| panic!("nothing to copy")), Taken::default());
    }

    #[test]
    fn items_overwritten_during_a_copy_are_dropped_and_recopied() {
        let ring = SeqRing::new(4);
        let start = ring.begin_write(4);
        ring.end_write(start + 4);
        let mut next = 0;
        let mut copies = Vec::new();
        let taken = ring.read(&mut next, 4, |from, n| {
            copies.push((from, n));
            if copies.len() == 1 {
                // The writer starts overwriting items 0 and 1 while this copy runs.
                ring.begin_write(2);
            }
        });
        // The first copy is suspect from item 0 to 1; the reader starts again at 2.
        assert_eq!(copies, vec![(0, 4), (2, 2)]);
        assert_eq!(taken, Taken { items: 2, lost: 2 });
        assert_eq!(next, 4);
    }
}
