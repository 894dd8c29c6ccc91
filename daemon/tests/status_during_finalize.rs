//! `GetStatus` answers from a published snapshot: it stays fast while a long recording is
//! being finalized (which joins the recorder thread and drains the cache to disk), and it
//! never changes state.

mod common;

use std::time::{Duration, Instant};

use common::{signal, wait_exit, TestDaemon};
use ephysd_proto::allego::allego_core_client::AllegoCoreClient;
use ephysd_proto::allego::{RecordMode, SetRecordRequest, StandardRequest};

/// "Within a few milliseconds": the bound on every status answer during the stop.
const STATUS_BOUND: Duration = Duration::from_millis(25);

#[test]
fn get_status_answers_within_milliseconds_while_a_minute_of_1024_channels_is_finalized() {
    let mut d = TestDaemon::new();
    let mut child = d
        .command()
        .env("EPHYSD_DEVICE__CHANNELS", "1024")
        .env("EPHYSD_DEVICE__ACCELERATED", "true")
        // Ten seconds of cache the accelerated device runs ahead into, so the stop has up to
        // ten seconds of 1024-channel signal (600 MB) to drain before the file is closed.
        .env("EPHYSD_CACHE__SECONDS", "10")
        // The raw stream alone, so the device runs far ahead of the disk and the stop has
        // seconds of signal to drain (with detection on, the stages pace the device).
        .env("EPHYSD_PROCESSING__DETECTION", "false")
        .spawn()
        .unwrap();
    common::wait_for_port(d.base_port + 4, &mut child, Duration::from_secs(20));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (stop_took, latencies, recorded) = rt.block_on(async {
        let mut core = AllegoCoreClient::connect(d.endpoint(0)).await.unwrap();
        core.set_record_state(SetRecordRequest { mode: RecordMode::ROn as i32, port: None }).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let status = core.get_status(StandardRequest::default()).await.unwrap().into_inner();
            if status.recording.duration >= 60.0 {
                break;
            }
            assert!(Instant::now() < deadline, "only {} s recorded", status.recording.duration);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Stop on one connection, ask for status on another until the stop returns.
        let mut stopper = AllegoCoreClient::connect(d.endpoint(0)).await.unwrap();
        let started = Instant::now();
        let stop = tokio::spawn(async move {
            stopper.set_record_state(SetRecordRequest { mode: RecordMode::ROff as i32, port: None }).await.unwrap();
            started.elapsed()
        });
        let mut latencies = Vec::new();
        let mut recorded = 0.0f64;
        while !stop.is_finished() {
            let asked = Instant::now();
            let status = core.get_status(StandardRequest::default()).await.unwrap().into_inner();
            latencies.push(asked.elapsed());
            if status.recording.record_mode == RecordMode::ROn as i32 {
                recorded = recorded.max(status.recording.duration);
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        (stop.await.unwrap(), latencies, recorded)
    });
    signal(&child, libc::SIGTERM);
    let (status, _) = wait_exit(&mut child, Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "{}", d.log_text());

    let worst = latencies.iter().max().copied().unwrap_or_default();
    println!(
        "stop took {stop_took:?}; {} status answers meanwhile, worst {worst:?}; {recorded:.1} s recorded",
        latencies.len()
    );
    assert!(recorded >= 60.0, "status kept reporting the recording while it was finalized ({recorded} s)");
    // The stop must have lasted long enough to be overlapped, or this test proves nothing.
    assert!(latencies.len() >= 5, "only {} status answers during a {stop_took:?} stop", latencies.len());
    assert!(worst < STATUS_BOUND, "a status answer took {worst:?} while the recording was finalized");
}
