//! The acquisition thread: device → stages → primary cache, on a pinned core, for the
//! daemon's life.
//!
//! One long-lived thread rather than one per stream, so it is pinned and prioritised once and
//! its heartbeat proves liveness to the systemd watchdog whether or not a stream is running.
//! It never waits on a consumer, a lock, the allocator or the disk: commands arrive on a
//! channel it polls without blocking while streaming, and everything a stream needs (the
//! device's source, the cache writer, the stages with all their state) is built by the control
//! plane before the stream starts and handed over in a [`StreamPlan`].

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use ephysd_drivers::{FrameBlock, Source, SourceError};

use crate::cache::CacheWriter;
use crate::counters::PipelineCounters;
use crate::placement::{place_current_thread, PlacementOutcome, ThreadPlacement};
use crate::stage::StageChain;

/// How often an idle thread bumps its heartbeat.
const IDLE_TICK: Duration = Duration::from_millis(20);

/// How long a consumer-paced stream waits when its consumer has not made room yet.
const CONSUMER_BACKOFF: Duration = Duration::from_micros(200);

/// How long [`Acquisition::stop`] waits for the thread to let go of a stream.
const STOP_TIMEOUT: Duration = Duration::from_secs(2);

/// Who sets the pace of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pacing {
    /// The device delivers frames at its own rate (hardware, or the simulated device in real
    /// time). The thread never waits for anyone; a slow consumer loses frames, counted.
    Device,
    /// The source produces frames as fast as asked (an accelerated simulation for tests and
    /// benchmarks) and the thread waits for the consumer registered at the cache's pace gate,
    /// since there is no real clock to keep up with.
    Consumer,
}

/// Identifies one stream across the control plane and the acquisition thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId(pub u64);

/// Everything a stream needs, built by the control plane so the thread allocates nothing.
pub struct StreamPlan {
    /// Which stream this is (reported back if it ends on its own).
    pub id: StreamId,
    /// The read side of the device.
    pub source: Box<dyn Source>,
    /// The writer of the stream's primary cache.
    pub cache: CacheWriter,
    /// The processing stages, run on every block before it is published.
    pub stages: StageChain,
    /// Who sets the pace.
    pub pacing: Pacing,
}

/// A stream that ended without being asked to stop.
#[derive(Debug)]
pub struct StreamEnded {
    /// The stream that ended.
    pub stream: StreamId,
    /// Why: the source's own error.
    pub reason: SourceError,
}

enum Command {
    Start(Box<StreamPlan>),
    Stop(Sender<()>),
    Stall(Duration),
    Shutdown,
}

/// Control-plane handle to the acquisition thread.
pub struct Acquisition {
    commands: Sender<Command>,
    ended: Receiver<StreamEnded>,
    thread: Option<JoinHandle<()>>,
    counters: Arc<PipelineCounters>,
}

impl Acquisition {
    /// Spawns the thread; returns once it has applied its placement (reported back).
    pub fn spawn(
        placement: ThreadPlacement,
        counters: Arc<PipelineCounters>,
    ) -> std::io::Result<(Self, PlacementOutcome)> {
        let (commands, command_rx) = crossbeam_channel::unbounded();
        let (ended_tx, ended) = crossbeam_channel::unbounded();
        let (placed_tx, placed_rx) = crossbeam_channel::bounded(1);
        let thread_counters = Arc::clone(&counters);
        let thread = std::thread::Builder::new().name("ephysd-acq".into()).spawn(move || {
            let _ = placed_tx.send(place_current_thread(placement));
            run(command_rx, ended_tx, &thread_counters);
        })?;
        let outcome =
            placed_rx.recv().map_err(|_| std::io::Error::other("the acquisition thread died during start-up"))?;
        Ok((Acquisition { commands, ended, thread: Some(thread), counters }, outcome))
    }

    /// The counters the thread bumps.
    pub fn counters(&self) -> &Arc<PipelineCounters> {
        &self.counters
    }

    /// Starts streaming `plan`. A running stream is dropped first.
    pub fn start(&self, plan: StreamPlan) {
        let _ = self.commands.send(Command::Start(Box::new(plan)));
    }

    /// Stops the running stream (if any) and waits until the thread has stopped reading it
    /// and let go of its device (its buffers may still be being freed).
    pub fn stop(&self) {
        let (tx, rx) = crossbeam_channel::bounded(1);
        if self.commands.send(Command::Stop(tx)).is_ok() {
            let _ = rx.recv_timeout(STOP_TIMEOUT);
        }
    }

    /// Streams that ended on their own (the device failed or ran out), in order. The control
    /// plane's supervisor waits on this.
    pub fn ended_streams(&self) -> &Receiver<StreamEnded> {
        &self.ended
    }

    /// Freezes the thread for `duration`, heartbeat included: lets tests prove that a stalled
    /// acquisition thread stops the watchdog pings. Not reachable from any external interface.
    #[doc(hidden)]
    pub fn inject_stall(&self, duration: Duration) {
        let _ = self.commands.send(Command::Stall(duration));
    }
}

impl Drop for Acquisition {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Shutdown);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A stream being run: the plan, its block buffer and the last frame index seen.
struct Running {
    plan: Box<StreamPlan>,
    block: FrameBlock,
    last_index: Option<u64>,
}

fn run(commands: Receiver<Command>, ended: Sender<StreamEnded>, counters: &PipelineCounters) {
    let mut stream: Option<Running> = None;
    loop {
        PipelineCounters::add(&counters.heartbeat, 1);
        let command = if stream.is_some() {
            match commands.try_recv() {
                Ok(c) => Some(c),
                Err(TryRecvError::Empty) => None,
                Err(TryRecvError::Disconnected) => return,
            }
        } else {
            match commands.recv_timeout(IDLE_TICK) {
                Ok(c) => Some(c),
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        };
        match command {
            Some(Command::Start(plan)) => {
                // The block is sized here, once per stream, from the source's fixed layout, and its
                // pages mapped now rather than by the first reads.
                let mut block = FrameBlock::new(plan.source.layout());
                crate::prefault::touch_block(&mut block);
                stream = Some(Running { plan, block, last_index: None });
                continue;
            }
            Some(Command::Stop(done)) => {
                // The device is let go of before the reply (the control plane may open it
                // again at once); the stream's buffers (stage state, the filtered cache:
                // up to hundreds of MB) are freed after it, so the stop does not wait for
                // the kernel to take that memory back.
                let buffers = stream.take().map(|running| {
                    let Running { plan, block, .. } = running;
                    let StreamPlan { source, cache, stages, .. } = *plan;
                    drop(source);
                    (cache, stages, block)
                });
                let _ = done.send(());
                drop(buffers);
                continue;
            }
            Some(Command::Stall(d)) => {
                std::thread::sleep(d);
                continue;
            }
            Some(Command::Shutdown) => return,
            None => {}
        }
        let Some(running) = stream.as_mut() else {
            continue;
        };
        if let Err(reason) = acquire_block(running, counters) {
            let id = running.plan.id;
            PipelineCounters::add(&counters.source_errors, u64::from(!matches!(reason, SourceError::Ended)));
            let _ = ended.send(StreamEnded { stream: id, reason });
            stream = None;
        }
    }
}

/// One pass of a running stream: read a block, run the stages, publish, count.
#[inline]
fn acquire_block(running: &mut Running, counters: &PipelineCounters) -> Result<(), SourceError> {
    let Running { plan, block, last_index } = running;
    if plan.pacing == Pacing::Consumer && !plan.cache.cache().has_room_for(block.layout().frames_per_block) {
        // Sleep rather than spin, so the consumer gets the core.
        std::thread::sleep(CONSUMER_BACKOFF);
        return Ok(());
    }
    plan.source.read_block(block)?;
    let gaps = block.count_gaps(*last_index);
    if block.frames > 0 {
        *last_index = Some(block.frame_index[block.frames - 1]);
    }
    plan.stages.run_block(block);
    plan.cache.publish(block);
    PipelineCounters::add(&counters.frames_acquired, block.frames as u64);
    PipelineCounters::add(&counters.blocks_acquired, 1);
    if gaps > 0 {
        PipelineCounters::add(&counters.frame_index_gaps, gaps);
    }
    Ok(())
}
