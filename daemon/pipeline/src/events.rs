//! Event rings: what stages emit (spikes now, stimulations later), for every reader that wants
//! it.
//!
//! A stage on the acquisition thread pushes events through its [`EventWriter`]; the recorder,
//! the gRPC snapshots and closed-loop client streams each follow with their own
//! [`EventReader`]. Like the primary cache, a ring is preallocated, wait-free for the writer and
//! lock-free for readers, and a reader that falls behind is told exactly how many events it
//! lost (the protocol of [`crate::ring`]), never handed a torn one.
//!
//! Events are stored as a fixed number of 64-bit words ([`Event::WORDS`]) in atomic storage,
//! which is what makes concurrent reading well defined without locks. A 75-sample float32
//! spike snippet with its frame, channel and unit is 40 words.

use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::ring::{prefaulted_words, SeqRing};

/// A fixed-size record a stage emits. Encoding must be total: [`Event::decode`] of any words
/// [`Event::encode`] produced gives the event back.
pub trait Event: Copy + Send + Sync + 'static {
    /// Number of 64-bit words one event takes.
    const WORDS: usize;
    /// Writes the event into exactly [`Event::WORDS`] words.
    fn encode(&self, words: &mut [u64]);
    /// Reads an event back from exactly [`Event::WORDS`] words.
    fn decode(words: &[u64]) -> Self;
}

/// One ring of events of type `E`, shared as `Arc<EventRing<E>>` by its readers.
pub struct EventRing<E: Event> {
    positions: SeqRing,
    words: Box<[AtomicU64]>,
    _events: PhantomData<fn() -> E>,
}

/// The single writer of an [`EventRing`], owned by the stage that emits the events.
pub struct EventWriter<E: Event> {
    ring: Arc<EventRing<E>>,
    /// Encoding space for one event, allocated with the ring.
    scratch: Vec<u64>,
}

/// What a read of events returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EventsRead {
    /// Events handed to the caller.
    pub events: usize,
    /// Events the reader wanted but the writer had already overwritten.
    pub lost: u64,
}

/// A reader's position in an [`EventRing`], with room to copy `batch` events per read.
pub struct EventReader<E: Event> {
    next: u64,
    batch: usize,
    scratch: Vec<u64>,
    _events: PhantomData<fn() -> E>,
}

impl<E: Event> EventRing<E> {
    /// A ring that holds the last `capacity` events (at least one), and its writer. All memory
    /// is allocated and faulted in here, so build it before the stream starts.
    pub fn new(capacity: usize) -> (EventWriter<E>, Arc<EventRing<E>>) {
        assert!(E::WORDS > 0, "an event takes at least one word");
        let capacity = capacity.max(1);
        let ring = Arc::new(EventRing {
            positions: SeqRing::new(capacity),
            words: prefaulted_words(capacity * E::WORDS),
            _events: PhantomData,
        });
        (EventWriter { ring: Arc::clone(&ring), scratch: vec![0; E::WORDS] }, ring)
    }

    /// Events the ring holds.
    pub fn capacity(&self) -> usize {
        self.positions.capacity()
    }

    /// Events pushed since the ring was made (the next event's sequence number).
    pub fn head(&self) -> u64 {
        self.positions.head()
    }

    /// A reader that sees only events pushed from now on, copying up to `batch` per read.
    pub fn reader_at_head(&self, batch: usize) -> EventReader<E> {
        self.reader_at(self.head(), batch)
    }

    /// A reader that starts at sequence number `seq` (which may already be lost).
    pub fn reader_at(&self, seq: u64, batch: usize) -> EventReader<E> {
        let batch = batch.max(1);
        EventReader { next: seq, batch, scratch: vec![0; batch * E::WORDS], _events: PhantomData }
    }

    fn slot_words(&self, seq: u64) -> &[AtomicU64] {
        let slot = self.positions.slot(seq);
        &self.words[slot * E::WORDS..(slot + 1) * E::WORDS]
    }
}

impl<E: Event> EventWriter<E> {
    /// Appends one event and makes it readable at once. Wait-free; never allocates.
    #[inline]
    pub fn push(&mut self, event: &E) {
        let ring = &*self.ring;
        event.encode(&mut self.scratch);
        let seq = ring.positions.begin_write(1);
        for (slot, word) in ring.slot_words(seq).iter().zip(&self.scratch) {
            slot.store(*word, Ordering::Relaxed);
        }
        ring.positions.end_write(seq + 1);
    }

    /// The ring this writer fills.
    pub fn ring(&self) -> &Arc<EventRing<E>> {
        &self.ring
    }
}

impl<E: Event> EventReader<E> {
    /// Sequence number of the next event this reader will return.
    pub fn position(&self) -> u64 {
        self.next
    }

    /// Hands up to one batch of the next events to `sink`, oldest first. Never blocks and
    /// never allocates; returns zero events when the reader is caught up.
    pub fn read(&mut self, ring: &EventRing<E>, mut sink: impl FnMut(&E)) -> EventsRead {
        let scratch = &mut self.scratch;
        let taken = ring.positions.read(&mut self.next, self.batch, |from, n| {
            for i in 0..n {
                let out = &mut scratch[i * E::WORDS..(i + 1) * E::WORDS];
                for (o, w) in out.iter_mut().zip(ring.slot_words(from + i as u64)) {
                    *o = w.load(Ordering::Relaxed);
                }
            }
        });
        // Only the words of the last, validated copy are decoded.
        for words in self.scratch[..taken.items * E::WORDS].chunks_exact(E::WORDS) {
            sink(&E::decode(words));
        }
        EventsRead { events: taken.items, lost: taken.lost }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An event whose every word is derived from its sequence number, so a torn copy shows.
    #[derive(Debug, Clone, Copy, PartialEq)]
    struct Stamped {
        seq: u64,
        payload: [u64; 5],
    }

    impl Stamped {
        fn new(seq: u64) -> Self {
            Stamped { seq, payload: std::array::from_fn(|i| seq.wrapping_mul(0x9E37_79B9).wrapping_add(i as u64)) }
        }
    }

    impl Event for Stamped {
        const WORDS: usize = 6;
        fn encode(&self, words: &mut [u64]) {
            words[0] = self.seq;
            words[1..].copy_from_slice(&self.payload);
        }
        fn decode(words: &[u64]) -> Self {
            Stamped { seq: words[0], payload: std::array::from_fn(|i| words[1 + i]) }
        }
    }

    #[test]
    fn readers_each_get_every_event_in_order() {
        let (mut writer, ring) = EventRing::<Stamped>::new(16);
        let mut a = ring.reader_at_head(4);
        let mut b = ring.reader_at_head(100);
        for seq in 0..10 {
            writer.push(&Stamped::new(seq));
        }
        let mut got_a = Vec::new();
        while a.read(&ring, |e| got_a.push(*e)).events > 0 {}
        let mut got_b = Vec::new();
        assert_eq!(b.read(&ring, |e| got_b.push(*e)), EventsRead { events: 10, lost: 0 });
        let expected: Vec<_> = (0..10).map(Stamped::new).collect();
        assert_eq!(got_a, expected);
        assert_eq!(got_b, expected);
    }

    #[test]
    fn a_reader_that_fell_behind_is_told_exactly_how_many_it_lost() {
        let (mut writer, ring) = EventRing::<Stamped>::new(8);
        let mut reader = ring.reader_at_head(64);
        for seq in 0..30 {
            writer.push(&Stamped::new(seq));
        }
        let mut got = Vec::new();
        assert_eq!(reader.read(&ring, |e| got.push(e.seq)), EventsRead { events: 8, lost: 22 });
        assert_eq!(got, (22..30).collect::<Vec<_>>());
    }

    #[test]
    fn concurrent_readers_never_see_torn_events_and_account_for_every_one() {
        let (mut writer, ring) = EventRing::<Stamped>::new(64);
        let total = 200_000u64;
        let readers: Vec<_> = (0..2)
            .map(|i| {
                let ring = Arc::clone(&ring);
                std::thread::spawn(move || {
                    let mut reader = ring.reader_at(0, 7 + i * 50);
                    let (mut got, mut lost, mut expected) = (0u64, 0u64, 0u64);
                    while got + lost < total {
                        let r = reader.read(&ring, |e| {
                            assert_eq!(*e, Stamped::new(e.seq), "torn event");
                            assert!(e.seq >= expected, "events out of order");
                            expected = e.seq + 1;
                        });
                        got += r.events as u64;
                        lost += r.lost;
                    }
                    (got, lost)
                })
            })
            .collect();
        for seq in 0..total {
            writer.push(&Stamped::new(seq));
        }
        for r in readers {
            let (got, lost) = r.join().unwrap();
            assert_eq!(got + lost, total);
            assert!(got > 0);
        }
    }
}
