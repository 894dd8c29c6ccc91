//! The acquisition thread: source → primary cache, on a pinned core, for the daemon's life.
//!
//! One long-lived thread rather than one per stream, so it is pinned and prioritised once and
//! its heartbeat proves liveness to the systemd watchdog whether or not a stream is running.
//! It never waits on a consumer, a lock, the allocator or the disk: commands arrive on a
//! channel it polls without blocking while streaming, and everything it needs for a stream is
//! allocated by the control plane before the stream starts.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TryRecvError};
use ephysd_drivers::{FrameBlock, Source, SourceError};

use crate::core::{PipelineCounters, PrimaryCache};
use crate::realtime::{make_current_thread_realtime, RealtimeOutcome};

/// How the acquisition thread should be scheduled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreadPlacement {
    pub core: Option<usize>,
    pub fifo_priority: Option<i32>,
}

/// How often an idle thread bumps its heartbeat.
const IDLE_TICK: Duration = Duration::from_millis(20);

/// How long an accelerated stream waits for the recorder when the cache is full.
const ACCELERATED_BACKOFF: Duration = Duration::from_micros(200);

/// Everything a stream needs, built by the control plane so the thread allocates nothing.
pub struct StreamPlan {
    pub source: Box<dyn Source>,
    pub cache: Arc<PrimaryCache>,
    /// Honour the cache's pace gate (accelerated sources only).
    pub accelerated: bool,
}

/// How a stream ended.
#[derive(Debug)]
pub enum StreamEnd {
    Stopped,
    SourceFailed(String),
}

enum Command {
    Start(StreamPlan),
    Stop(Sender<()>),
    Stall(Duration),
    Shutdown,
}

/// Control-plane handle to the acquisition thread.
pub struct Acquisition {
    commands: Sender<Command>,
    ended: Receiver<StreamEnd>,
    thread: Option<JoinHandle<()>>,
    counters: Arc<PipelineCounters>,
}

impl Acquisition {
    /// Spawns the thread; returns once it has applied its placement (reported back).
    pub fn spawn(placement: ThreadPlacement, counters: Arc<PipelineCounters>) -> std::io::Result<(Self, RealtimeOutcome)> {
        let (commands, command_rx) = crossbeam_channel::unbounded();
        let (ended_tx, ended) = crossbeam_channel::unbounded();
        let (placed_tx, placed_rx) = crossbeam_channel::bounded(1);
        let thread_counters = Arc::clone(&counters);
        let thread = std::thread::Builder::new().name("ephysd-acq".into()).spawn(move || {
            let outcome = make_current_thread_realtime(placement.core, placement.fifo_priority);
            let _ = placed_tx.send(outcome);
            run(command_rx, ended_tx, &thread_counters);
        })?;
        let outcome = placed_rx.recv().expect("acquisition thread died during start-up");
        Ok((Acquisition { commands, ended, thread: Some(thread), counters }, outcome))
    }

    pub fn counters(&self) -> &Arc<PipelineCounters> {
        &self.counters
    }

    /// Starts streaming `plan`. A running stream is stopped first.
    pub fn start(&self, plan: StreamPlan) {
        let _ = self.commands.send(Command::Start(plan));
    }

    /// Stops the running stream (if any) and waits until the thread has let go of it.
    pub fn stop(&self) {
        let (tx, rx) = crossbeam_channel::bounded(1);
        if self.commands.send(Command::Stop(tx)).is_ok() {
            let _ = rx.recv_timeout(Duration::from_secs(2));
        }
    }

    /// Streams that ended on their own (source failure) since the last call.
    pub fn take_ended(&self) -> Option<StreamEnd> {
        self.ended.try_recv().ok()
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

fn run(commands: Receiver<Command>, ended: Sender<StreamEnd>, counters: &PipelineCounters) {
    let mut stream: Option<(StreamPlan, FrameBlock, Option<u64>)> = None;
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
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => continue,
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return,
            }
        };
        match command {
            Some(Command::Start(plan)) => {
                let block = FrameBlock::new(plan.source.info().layout);
                stream = Some((plan, block, None));
                continue;
            }
            Some(Command::Stop(done)) => {
                if stream.take().is_some() {
                    let _ = ended.send(StreamEnd::Stopped);
                }
                let _ = done.send(());
                continue;
            }
            Some(Command::Stall(d)) => {
                std::thread::sleep(d);
                continue;
            }
            Some(Command::Shutdown) => return,
            None => {}
        }
        let Some((plan, block, last_index)) = stream.as_mut() else { continue };
        if plan.accelerated && !plan.cache.has_room_for(block.layout().frames_per_block) {
            // Accelerated streams only: sleep rather than spin, so the recorder gets the core.
            std::thread::sleep(ACCELERATED_BACKOFF);
            continue;
        }
        match plan.source.read_block(block) {
            Ok(()) => {
                let gaps = block.count_gaps(*last_index);
                if block.frames > 0 {
                    *last_index = Some(block.frame_index[block.frames - 1]);
                }
                plan.cache.publish(block);
                PipelineCounters::add(&counters.frames_acquired, block.frames as u64);
                PipelineCounters::add(&counters.blocks_acquired, 1);
                if gaps > 0 {
                    PipelineCounters::add(&counters.frame_index_gaps, gaps);
                }
            }
            Err(e) => {
                PipelineCounters::add(&counters.source_errors, u64::from(!matches!(e, SourceError::Ended)));
                let _ = ended.send(StreamEnd::SourceFailed(e.to_string()));
                stream = None;
            }
        }
    }
}
