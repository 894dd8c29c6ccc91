//! Puts the calling thread on a dedicated core at real-time priority, when the OS allows.
//!
//! Neither step is required for correctness, so failures are reported, not fatal: a lab
//! trying ephysd on a laptop without CAP_SYS_NICE still gets a working daemon, with a warning.

/// Where and how the acquisition thread should run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ThreadPlacement {
    /// The CPU core to pin the thread to; `None` leaves it to the scheduler.
    pub core: Option<usize>,
    /// The SCHED_FIFO priority (1..=99) to run at; `None` keeps normal scheduling.
    pub fifo_priority: Option<i32>,
}

/// What happened when the thread asked for its placement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacementOutcome {
    /// The core the thread is pinned to, if pinning succeeded.
    pub pinned_core: Option<usize>,
    /// The SCHED_FIFO priority in force, if the switch succeeded.
    pub fifo_priority: Option<i32>,
    /// One line per request that could not be granted.
    pub warnings: Vec<String>,
}

/// Applies `placement` to the calling thread: pins it (if a core is given) and raises it to
/// SCHED_FIFO (if a priority is given).
pub fn place_current_thread(placement: ThreadPlacement) -> PlacementOutcome {
    let mut outcome = PlacementOutcome { pinned_core: None, fifo_priority: None, warnings: Vec::new() };
    if let Some(core) = placement.core {
        let ids = core_affinity::get_core_ids().unwrap_or_default();
        match ids.into_iter().find(|id| id.id == core) {
            Some(id) if core_affinity::set_for_current(id) => outcome.pinned_core = Some(core),
            Some(_) => outcome.warnings.push(format!("could not pin the acquisition thread to core {core}")),
            None => outcome.warnings.push(format!("realtime.core = {core} does not exist on this machine")),
        }
    }
    if let Some(priority) = placement.fifo_priority {
        match set_fifo(priority) {
            Ok(()) => outcome.fifo_priority = Some(priority),
            Err(e) => outcome.warnings.push(format!(
                "SCHED_FIFO priority {priority} not permitted ({e}); running at normal priority \
                 (grant CAP_SYS_NICE or LimitRTPRIO to enable it)"
            )),
        }
    }
    outcome
}

fn set_fifo(priority: i32) -> std::io::Result<()> {
    let param = libc::sched_param { sched_priority: priority };
    // SAFETY: pthread_self() is always valid for the calling thread; `param` outlives the call.
    let rc = unsafe { libc::pthread_setschedparam(libc::pthread_self(), libc::SCHED_FIFO, &param) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::from_raw_os_error(rc))
    }
}

/// Lowers the calling thread's scheduling priority to `nice` (0 to 19; higher is nicer), for
/// background threads that must not take the cores from the ones serving clients and writing
/// recordings when the machine is busy. Linux applies it to this thread alone.
pub fn lower_current_thread_priority(nice: i32) -> std::io::Result<()> {
    // SAFETY: gettid and setpriority take and return plain integers; with PRIO_PROCESS and a
    // thread id, Linux changes only that thread's nice value.
    let result = unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, nice.clamp(0, 19)) };
    if result == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Number of CPU cores the process may run on.
pub fn available_cores() -> usize {
    core_affinity::get_core_ids().map(|ids| ids.len()).unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placed(placement: ThreadPlacement) -> PlacementOutcome {
        std::thread::spawn(move || place_current_thread(placement)).join().unwrap()
    }

    #[test]
    fn a_missing_core_is_a_warning_not_a_failure() {
        let outcome = placed(ThreadPlacement { core: Some(100_000), fifo_priority: None });
        assert_eq!(outcome.pinned_core, None);
        assert!(outcome.warnings[0].contains("100000"), "{:?}", outcome.warnings);
    }

    #[test]
    fn pinning_to_core_zero_works() {
        assert_eq!(placed(ThreadPlacement { core: Some(0), fifo_priority: None }).pinned_core, Some(0));
    }

    #[test]
    fn no_request_changes_nothing_and_warns_of_nothing() {
        let outcome = placed(ThreadPlacement::default());
        assert_eq!(outcome, PlacementOutcome { pinned_core: None, fifo_priority: None, warnings: vec![] });
    }

    #[test]
    fn a_background_thread_lowers_its_own_priority_only() {
        // SAFETY: getpriority takes and returns plain integers.
        let nice = || unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) };
        let base = nice();
        let target = (base + 3).min(19);
        let own = std::thread::spawn(move || {
            lower_current_thread_priority(target).unwrap();
            nice()
        })
        .join()
        .unwrap();
        assert_eq!(own, target);
        assert_eq!(nice(), base, "the calling thread alone changes");
    }
}
