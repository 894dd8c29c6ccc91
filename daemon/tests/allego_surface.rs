//! Channels, signals and the core configuration through the real daemon and a tonic client:
//! metadata with probe geometry, selection and groups, signals read back against the
//! simulated device's known sines, sample-rate changes and restarts into other modes.

mod common;

use std::process::Child;
use std::time::{Duration, Instant};

use common::{signal, wait_exit, TestDaemon};
use ephysd_proto::allego::allego_core_client::AllegoCoreClient;
use ephysd_proto::allego::pcache1_client::Pcache1Client;
use ephysd_proto::allego::update_signal_group_request::{Operation, SubOperation, SubOperationOneOf};
use ephysd_proto::allego::{
    BackboneMode, CableDelay, HdSnapshot2, HdSnapshotRequest2, RecordMode, RestartRequest, SetConfigCoreRequest,
    SetRecordRequest, SetStreamRequest, SigSelector, SignalGroup, SignalGroupIdRequest, SignalType, StandardRequest,
    TimeRange, TimeRangeSelMode, UpdateSignalGroupRequest,
};
use tonic::transport::Channel;
use tonic::Code;

const LIVE: &str = "Live Signals";

struct Rig {
    daemon: TestDaemon,
    child: Child,
    core: AllegoCoreClient<Channel>,
    pcache: Pcache1Client<Channel>,
}

impl Rig {
    async fn start(backbone: &str) -> Rig {
        let mut daemon = TestDaemon::new();
        let mut cmd = daemon.command();
        cmd.env("EPHYSD_DEVICE__BACKBONE", backbone);
        let mut child = cmd.spawn().unwrap();
        common::wait_for_port(daemon.base_port + 4, &mut child, Duration::from_secs(20));
        let core = AllegoCoreClient::connect(daemon.endpoint(0)).await.unwrap();
        let pcache = Pcache1Client::connect(daemon.endpoint(1)).await.unwrap();
        Rig { daemon, child, core, pcache }
    }

    async fn group(&mut self) -> SignalGroup {
        let request = SignalGroupIdRequest { stream_group_id: LIVE.into() };
        self.core.get_signal_group(request).await.unwrap().into_inner()
    }

    async fn stream(&mut self, on: bool) {
        self.core.set_stream_state(SetStreamRequest { mode: on as i32 }).await.unwrap();
    }

    async fn update(
        &mut self,
        op: Operation,
        add: bool,
        kind: SignalType,
        channels: Vec<i32>,
    ) -> Result<(), tonic::Status> {
        let sub = if add { SubOperation::Add } else { SubOperation::Remove };
        self.core
            .update_signal_group(UpdateSignalGroupRequest {
                stream_group_id: LIVE.into(),
                operation: op as i32,
                ntv_chan_idx: channels,
                signal_type: kind as i32,
                propagate: Some(false),
                sub_operation: Some(SubOperationOneOf::AddRemove(sub as i32)),
            })
            .await
            .map(drop)
    }

    async fn snapshot(
        &mut self,
        range: [f64; 2],
        mode: TimeRangeSelMode,
        sel: SigSelector,
    ) -> Result<HdSnapshot2, tonic::Status> {
        self.pcache
            .get_hd_snapshot2(HdSnapshotRequest2 {
                dsource_id: LIVE.into(),
                t_r: TimeRange { time_range_sec: range.to_vec(), fs: 30000.0, ..Default::default() },
                sel_mode: Some(mode as i32),
                sig_sel: Some(sel),
                apply_ds_pstage2: Some(false),
            })
            .await
            .map(|r| r.into_inner())
    }

    /// Waits until the cache holds at least `seconds`.
    async fn wait_cached(&mut self, seconds: f64) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let s = self.core.get_status(StandardRequest::default()).await.unwrap().into_inner();
            let range = s.streaming.primary_cache_t_range;
            if range.len() == 2 && range[1] - range[0] >= seconds {
                return;
            }
            assert!(Instant::now() < deadline, "cache never held {seconds} s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn stop(mut self) {
        signal(&self.child, libc::SIGTERM);
        let (status, _) = wait_exit(&mut self.child, Duration::from_secs(20));
        assert!(status.success(), "{}", self.daemon.log_text());
    }
}

fn rows(m: &ephysd_proto::allego::RadixMatrixBytes) -> Vec<Vec<f32>> {
    let (n, len) = (m.shape[0] as usize, m.shape[1] as usize);
    assert_eq!(m.data.len(), n * len * 4, "data length matches the shape");
    (0..n)
        .map(|r| {
            (0..len)
                .map(|i| {
                    let at = (r * len + i) * 4;
                    f32::from_le_bytes(m.data[at..at + 4].try_into().unwrap())
                })
                .collect()
        })
        .collect()
}

fn amp(channels: &[i64]) -> SigSelector {
    SigSelector { amp_ntv_idxs: channels.to_vec(), ..Default::default() }
}

#[tokio::test(flavor = "multi_thread")]
async fn channel_metadata_lists_every_channel_with_the_simulated_probe_geometry() {
    let mut rig = Rig::start("sim-spikes").await;
    let g = rig.group().await;
    assert_eq!(g.samp_freq, Some(30000.0));
    let of = |t: SignalType| g.channels.iter().filter(|c| c.chan_type == t as i32).collect::<Vec<_>>();
    let (amp, ain, din, dout) = (of(SignalType::Pri), of(SignalType::Aux), of(SignalType::Din), of(SignalType::Dout));
    assert_eq!((amp.len(), ain.len(), din.len(), dout.len()), (16, 8, 16, 16));
    let mut sys: Vec<i32> = g.channels.iter().map(|c| c.sys_chan_idx).collect();
    sys.sort();
    sys.dedup();
    assert_eq!(sys.len(), g.channels.len(), "system indices are unique across types");
    for (i, c) in amp.iter().enumerate() {
        assert_eq!((c.ntv_chan_idx, c.dataset_ridx), (i as i32, Some(i as i32)));
        assert!(c.is_selected);
        assert_eq!(c.color_group_idx, i32::MAX, "no group");
        // One straight shank, 25 µm pitch, sent in units of 10 µm.
        assert_eq!(c.site_num, i as i32 + 1);
        assert_eq!((c.site_ctr_x, c.site_ctr_y), (0.0, 2.5 * i as f64));
        assert_eq!(c.site_shape, "circle");
        assert_eq!(c.site_area_micron2, Some(177.0));
        assert!(c.probe_id.as_deref().is_some_and(|p| !p.is_empty()));
    }
    assert!(ain.iter().chain(&din).all(|c| c.site_num == -23), "GPIO channels have no site");
    assert_eq!(g.sensor_port_spec.sensor_a.len(), 1);
    assert_eq!(g.sensor_port_spec.sensor_a[0].num_sites, 16);
    rig.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn selection_and_groups_are_kept_and_bad_channels_are_refused_by_name() {
    let mut rig = Rig::start("sim-spikes").await;
    rig.update(Operation::Select, false, SignalType::Pri, vec![2, 3, 3]).await.unwrap();
    rig.update(Operation::Select, false, SignalType::Din, vec![]).await.unwrap();
    rig.update(Operation::Color, true, SignalType::Pri, vec![0, 1, 2]).await.unwrap();
    rig.update(Operation::Color, true, SignalType::Aux, vec![4]).await.unwrap();
    let g = rig.group().await;
    let amp: Vec<_> = g.channels.iter().filter(|c| c.chan_type == SignalType::Pri as i32).collect();
    let selected: Vec<i32> = amp.iter().filter(|c| c.is_selected).map(|c| c.ntv_chan_idx).collect();
    assert_eq!(selected.len(), 14);
    assert!(!selected.contains(&2) && !selected.contains(&3));
    assert_eq!((amp[0].color_group_idx, amp[1].color_group_idx, amp[2].color_group_idx), (1, 1, i32::MAX));
    let ain4 = g.channels.iter().find(|c| c.chan_type == SignalType::Aux as i32 && c.ntv_chan_idx == 4).unwrap();
    assert_eq!(ain4.color_group_idx, 2);

    let e = rig.update(Operation::Select, true, SignalType::Pri, vec![1, 16]).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("ntvChanIdx[1]") && e.message().contains("0..=15"), "{}", e.message());
    let e = rig.update(Operation::Select, true, SignalType::Pri, vec![-1]).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = rig.core.get_signal_group(SignalGroupIdRequest { stream_group_id: "Offline".into() }).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert!(e.message().contains("Live Signals"), "{}", e.message());
    rig.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn signals_come_back_in_physical_units_in_the_order_asked_and_clipped_to_the_cache() {
    let mut rig = Rig::start("sim-sine").await;
    let e = rig.snapshot([1.0, f64::NAN], TimeRangeSelMode::TrsFromHead, amp(&[0])).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    rig.stream(true).await;
    rig.wait_cached(1.2).await;

    // The last second of channel 0 (the 1 kHz, 100 µV test tone), twice, and channel 3.
    let s = rig.snapshot([1.0, f64::NAN], TimeRangeSelMode::TrsFromHead, amp(&[0, 3, 0])).await.unwrap();
    let t = &s.sigs.t_r;
    assert_eq!(t.fs, 30000.0);
    assert_eq!(t.timestamp[1] - t.timestamp[0], 30000);
    assert!((t.time_range_sec[1] - t.time_range_sec[0] - 1.0).abs() < 1e-9);
    let m = s.sigs.amp.as_ref().unwrap();
    assert_eq!(m.shape, vec![3, 30000]);
    let r = rows(m);
    assert_eq!(r[0], r[2], "a repeated channel gives the same row");
    let peak = r[0].iter().fold(0f32, |a, v| a.max(v.abs()));
    assert!((95.0..=110.0).contains(&peak), "test tone (100 µV and a little noise) peak {peak} µV");
    let crossings = r[0].windows(2).filter(|w| (w[0] < 0.0) != (w[1] < 0.0)).count();
    assert!((1900..=2100).contains(&crossings), "1 kHz tone has ~2000 zero crossings per second: {crossings}");
    assert_ne!(r[0], r[1]);

    // Analog in 0 is a ±2 V, 1 Hz sine; digital in 0 a 10 ms pulse each second.
    let sel = SigSelector { ain_ntv_idxs: vec![0, 1], din_ntv_idxs: vec![0], ..Default::default() };
    let s = rig.snapshot([1.0, f64::NAN], TimeRangeSelMode::TrsFromHead, sel).await.unwrap();
    let ain = rows(s.sigs.ain.as_ref().unwrap());
    let ain_peak = ain[0].iter().fold(0f32, |a, v| a.max(v.abs()));
    assert!((1.9..=2.01).contains(&ain_peak), "analog in 0 peak {ain_peak} V");
    assert!(ain[1].iter().all(|&v| v == 0.0), "an unconnected input reads 0 V");
    let din = rows(s.sigs.din.as_ref().unwrap());
    let high = din[0].iter().filter(|&&v| v == 1.0).count();
    assert!(din[0].iter().all(|&v| v == 0.0 || v == 1.0));
    assert!((290..=310).contains(&high), "10 ms of each second is high: {high} frames");
    assert!(s.sigs.amp.as_ref().is_none_or(|m| m.data.is_empty()), "no amplifier rows asked for");

    // An absolute range reaching before the stream started is clipped, and says so.
    let s = rig.snapshot([-5.0, 0.5], TimeRangeSelMode::TrsSubset, amp(&[1])).await.unwrap();
    assert_eq!(s.sigs.t_r.timestamp, vec![0, 15000]);
    assert_eq!(s.sigs.amp.unwrap().shape, vec![1, 15000]);
    // Nothing of it held: OUT_OF_RANGE naming what the cache holds.
    let e = rig.snapshot([1000.0, 1001.0], TimeRangeSelMode::TrsSubset, amp(&[1])).await.unwrap_err();
    assert_eq!(e.code(), Code::OutOfRange);
    assert!(e.message().contains("[1000, 1001) s") && e.message().contains("holds ["), "{}", e.message());
    // Bad requests are named.
    let e = rig.snapshot([0.0, f64::NAN], TimeRangeSelMode::TrsFromHead, amp(&[1])).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    // A request larger than any real one is refused before it is buffered whole.
    let e = rig.snapshot([1.0, f64::NAN], TimeRangeSelMode::TrsFromHead, amp(&vec![1; 3_000_000])).await.unwrap_err();
    assert!(e.code() == Code::InvalidArgument && e.message().contains("allowed up to"), "{e:?}");
    let e = rig.snapshot([1.0, f64::NAN], TimeRangeSelMode::TrsFromHead, amp(&[16])).await.unwrap_err();
    assert!(e.code() == Code::InvalidArgument && e.message().contains("sigSel.ampNtvIdxs[0] = 16"), "{e:?}");
    rig.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_sample_rate_reopens_the_device_and_is_refused_while_streaming() {
    let mut rig = Rig::start("sim-spikes").await;
    rig.stream(true).await;
    let e = rig.core.set_config_core(SetConfigCoreRequest { samp_freq: Some(20000.0), ..Default::default() }).await;
    let e = e.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("stop streaming"), "{}", e.message());
    // An empty update changes nothing and is fine even while streaming.
    rig.core.set_config_core(SetConfigCoreRequest::default()).await.unwrap();
    rig.stream(false).await;

    let e = rig.core.set_config_core(SetConfigCoreRequest { samp_freq: Some(44100.0), ..Default::default() }).await;
    let e = e.unwrap_err();
    assert!(
        e.code() == Code::InvalidArgument && e.message().contains("sampFreq") && e.message().contains("20000"),
        "{e:?}"
    );
    let e = rig.core.set_config_core(SetConfigCoreRequest { samp_freq: Some(f64::NAN), ..Default::default() }).await;
    assert_eq!(e.unwrap_err().code(), Code::InvalidArgument);

    rig.core.set_config_core(SetConfigCoreRequest { samp_freq: Some(20000.0), ..Default::default() }).await.unwrap();
    let config = rig.core.get_config(StandardRequest::default()).await.unwrap().into_inner();
    assert_eq!(config.base_samp_freq, 20000.0);
    assert_eq!(rig.group().await.samp_freq, Some(20000.0));
    rig.stream(true).await;
    rig.wait_cached(0.5).await;
    let s = rig.snapshot([0.25, f64::NAN], TimeRangeSelMode::TrsFromHead, amp(&[0])).await;
    let e = s.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "a request at the old rate is refused: {e:?}");
    let s = rig
        .pcache
        .get_hd_snapshot2(HdSnapshotRequest2 {
            dsource_id: LIVE.into(),
            t_r: TimeRange { time_range_sec: vec![0.25, f64::NAN], fs: 20000.0, ..Default::default() },
            sel_mode: Some(TimeRangeSelMode::TrsFromHead as i32),
            sig_sel: Some(amp(&[0])),
            apply_ds_pstage2: Some(false),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(s.sigs.amp.unwrap().shape, vec![1, 5000], "a quarter second at 20 kHz");
    rig.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn cable_delays_are_set_per_port_and_checked() {
    let mut rig = Rig::start("sim-spikes").await;
    let delay = |port, cable_delay, is_auto| SetConfigCoreRequest {
        cable_delay: Some(CableDelay { port, cable_delay, is_auto }),
        ..Default::default()
    };
    let config = rig.core.get_config(StandardRequest::default()).await.unwrap().into_inner();
    assert!(config.cable_delays.cable_delays[&0].is_auto, "automatic by default");
    rig.core.set_config_core(delay(0, 3, false)).await.unwrap();
    let config = rig.core.get_config(StandardRequest::default()).await.unwrap().into_inner();
    let a = &config.cable_delays.cable_delays[&0];
    assert_eq!((a.port, a.cable_delay, a.is_auto), (0, 3, false));
    let e = rig.core.set_config_core(delay(0, 16, false)).await.unwrap_err();
    assert!(e.code() == Code::InvalidArgument && e.message().contains("0..=15"), "{e:?}");
    let e = rig.core.set_config_core(delay(4, 1, false)).await.unwrap_err();
    assert!(e.code() == Code::InvalidArgument && e.message().contains("cableDelay.port = \"E\""), "{e:?}");
    rig.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn restart_changes_mode_and_a_mode_without_its_device_leaves_the_daemon_as_it_was() {
    let mut rig = Rig::start("sim-spikes").await;
    rig.update(Operation::Select, false, SignalType::Pri, vec![0]).await.unwrap();
    rig.stream(true).await;
    let e = rig.core.restart(RestartRequest { mode: BackboneMode::SmartboxSimGenSine as i32 }).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    rig.stream(false).await;

    let e = rig.core.restart(RestartRequest { mode: BackboneMode::XdaqOneRec as i32 }).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("mode = XDAQ_ONE_REC") && e.message().contains("xdaq-one-rec"), "{}", e.message());
    assert!(e.message().contains("left as it was"), "{}", e.message());
    let config = rig.core.get_config(StandardRequest::default()).await.unwrap().into_inner();
    assert_eq!(config.backbone_mode, BackboneMode::SmartboxSimGenSpikes as i32);
    assert!(!rig.group().await.channels[0].is_selected, "a failed restart keeps the selection");

    rig.core.restart(RestartRequest { mode: BackboneMode::SmartboxSimGenSine as i32 }).await.unwrap();
    let config = rig.core.get_config(StandardRequest::default()).await.unwrap().into_inner();
    assert_eq!(config.backbone_mode, BackboneMode::SmartboxSimGenSine as i32);
    assert!(rig.group().await.channels[0].is_selected, "a restart starts the selection afresh");
    rig.stream(true).await;
    rig.wait_cached(0.3).await;
    let s = rig.snapshot([0.2, f64::NAN], TimeRangeSelMode::TrsFromHead, amp(&[0])).await.unwrap();
    let peak = rows(s.sigs.amp.as_ref().unwrap())[0].iter().fold(0f32, |a, v| a.max(v.abs()));
    assert!((95.0..=110.0).contains(&peak), "now the sine device: peak {peak} µV");
    rig.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn status_reports_each_ports_record_mode_and_the_gpio_counts() {
    let mut rig = Rig::start("sim-spikes").await;
    let s = rig.core.get_status(StandardRequest::default()).await.unwrap().into_inner();
    assert_eq!(s.recording.record_mode_port_a, Some(RecordMode::ROff as i32));
    assert_eq!(s.recording.record_mode_port_b, None, "a 16-channel device has one port");
    assert_eq!((s.gpio_channel_count.n_aux, s.gpio_channel_count.n_din, s.gpio_channel_count.n_dout), (8, 16, 16));
    rig.core.set_record_state(SetRecordRequest { mode: RecordMode::ROn as i32, port: None }).await.unwrap();
    let s = rig.core.get_status(StandardRequest::default()).await.unwrap().into_inner();
    assert_eq!(s.recording.record_mode, RecordMode::ROn as i32);
    assert_eq!(s.recording.record_mode_port_a, Some(RecordMode::ROn as i32));
    assert!(!s.recording.active_file_name.is_empty());
    rig.core.set_record_state(SetRecordRequest { mode: RecordMode::ROff as i32, port: None }).await.unwrap();
    rig.stop();
}
