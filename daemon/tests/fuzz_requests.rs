//! Arbitrary well-formed requests to every implemented method of a streaming daemon: each
//! gets an answer (a reply or a status, never a dropped connection or a hang), and the
//! stream keeps running throughout.
//!
//! Values are drawn to hit edges: any `i32` for enums and indices, NaN, ±inf and huge
//! numbers for times and rates, empty and long lists, odd strings. Stopping the stream is
//! the one request left out, since the property is that nothing else stops it.

mod common;

use std::time::Duration;

use common::{signal, wait_exit, TestDaemon};
use ephysd_proto::allego::allego_core_client::AllegoCoreClient;
use ephysd_proto::allego::allego_lifecycle_client::AllegoLifecycleClient;
use ephysd_proto::allego::dsp_params::{FreqSpec, FreqSpecBand};
use ephysd_proto::allego::kpi1_client::Kpi1Client;
use ephysd_proto::allego::neurons1_client::Neurons1Client;
use ephysd_proto::allego::pcache1_client::Pcache1Client;
use ephysd_proto::allego::update_signal_group_request::SubOperationOneOf;
use ephysd_proto::allego::{
    BundleReq, CableDelay, ConfigRecording, DspParams, GetKpiStatusRequest, HdSnapshotRequest2, ImpedanceRequest,
    KpiMetricId, KpiMetricsReq, ReadWireOutRequest, RestartRequest, SetConfigCoreRequest, SetDspGroupRequest,
    SetKpiParamRequest, SetRecordRequest, SetStreamRequest, SetTriggerRequest, SigSelector, SignalGroupIdRequest,
    SpikeSorterCommandRequest, SpikeSorterDashboardRequest, SpikeSorterSetParamRequest, SpikeSorterSetParamsRequest,
    SpikeSorterStandardRequest, StandardRequest, TimeRange, UpdateSignalGroupRequest,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use tonic::transport::Channel;

/// Requests per method.
const CASES: u32 = 48;

fn any_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(0.0),
        Just(-0.0),
        Just(f64::MAX),
        Just(f64::MIN_POSITIVE),
        -1e6..1e6f64,
        0.0..5.0f64,
        any::<f64>(),
    ]
}

fn any_index() -> impl Strategy<Value = i32> {
    prop_oneof![Just(-1), Just(0), Just(i32::MAX), Just(i32::MIN), 0..40i32, any::<i32>()]
}

fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("Live Signals".to_string()),
        Just("../../etc".to_string()),
        Just("a\0b".to_string()),
        "[ -~]{0,40}",
        ".{0,8}",
    ]
}

fn time_range() -> impl Strategy<Value = TimeRange> {
    (prop::collection::vec(any_f64(), 0..4), prop::collection::vec(any::<i64>(), 0..3), any_f64())
        .prop_map(|(time_range_sec, timestamp, fs)| TimeRange { time_range_sec, timestamp, fs, ..Default::default() })
}

fn selector() -> impl Strategy<Value = SigSelector> {
    let list = || prop::collection::vec(prop_oneof![0..20i64, any::<i64>()], 0..6);
    (list(), list(), list(), list()).prop_map(|(amp, ain, din, dout)| SigSelector {
        amp_ntv_idxs: amp,
        ain_ntv_idxs: ain,
        din_ntv_idxs: din,
        dout_ntv_idxs: dout,
    })
}

struct Clients {
    core: AllegoCoreClient<Channel>,
    pcache: Pcache1Client<Channel>,
    kpi: Kpi1Client<Channel>,
    neurons: Neurons1Client<Channel>,
    lifecycle: AllegoLifecycleClient<Channel>,
}

/// A filter entry with every field drawn: type, stage, any frequency form, order, family,
/// ripple, port, analog input.
fn dsp_params() -> impl Strategy<Value = DspParams> {
    let freq = prop_oneof![
        Just(None),
        any_f64().prop_map(|f| Some(FreqSpec::Freq(f))),
        (any_f64(), any_f64())
            .prop_map(|(l, h)| Some(FreqSpec::FreqSpecBand(FreqSpecBand { low_freq: l, high_freq: h }))),
        any_index().prop_map(|c| Some(FreqSpec::RefNtvChanIdx(c))),
    ];
    (
        (any_index(), any_index(), freq, prop::option::of(any_f64()), any_index()),
        (prop::option::of(any_f64()), any::<bool>(), prop::option::of(any_index()), prop::option::of(any_index())),
        (prop::option::of(any::<bool>()), prop::option::of(any_index()), prop::option::of(any_f64())),
    )
        .prop_map(
            |((kind, stage, freq_spec, notch, port), (target, is_aux, aux, order), (zero, family, ripple))| DspParams {
                r#type: kind,
                stage,
                freq_spec,
                notch_bandwidth: notch,
                user_label: String::new(),
                port,
                target_ntv_chan_idx: target,
                is_aux,
                aux_chan_idx: aux,
                filter_order: order,
                zero_phase: zero,
                force_sos: None,
                family,
                ripple_db: ripple,
            },
        )
}

/// One detection-parameter command with any values and channels.
fn sorter_param() -> impl Strategy<Value = SpikeSorterSetParamRequest> {
    (
        prop_oneof![Just("Live Signals".to_string()), any_text()],
        any_index(),
        prop::collection::vec(any_f64(), 0..4),
        prop::collection::vec(any::<bool>(), 0..3),
        prop::collection::vec(any_index(), 0..5),
    )
        .prop_map(|(id, cmd, values, sides, channels)| SpikeSorterSetParamRequest {
            spike_sorter_id: id,
            cmd,
            reg_float64: values,
            reg_bool: sides,
            ntv_chan_idx: channels,
        })
}

/// Sends one request; `Ok` whatever the daemon answered, `Err` if it did not answer.
async fn answered<T>(call: impl std::future::Future<Output = Result<T, tonic::Status>>) -> Result<(), String> {
    match tokio::time::timeout(Duration::from_secs(10), call).await {
        Err(_) => Err("no answer within 10 s".into()),
        Ok(Ok(_)) => Ok(()),
        Ok(Err(status)) if matches!(status.code(), tonic::Code::Unknown | tonic::Code::Internal) => {
            Err(format!("{status:?}"))
        }
        // Only a transport failure has no code of its own; every daemon answer carries one.
        Ok(Err(status)) if status.message().contains("transport") => Err(format!("{status:?}")),
        Ok(Err(_)) => Ok(()),
    }
}

fn run<S: Strategy>(
    runtime: &tokio::runtime::Runtime,
    clients: &mut Clients,
    name: &str,
    strategy: S,
    send: impl Fn(&mut Clients, S::Value) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + '_>>,
) where
    S::Value: std::fmt::Debug,
{
    let mut runner = TestRunner::new(Config { cases: CASES, failure_persistence: None, ..Config::default() });
    let clients = std::cell::RefCell::new(clients);
    runner
        .run(&strategy, |value| {
            let mut c = clients.borrow_mut();
            let result = runtime.block_on(send(&mut c, value));
            prop_assert!(result.is_ok(), "{name}: {}", result.unwrap_err());
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{name}: {e}"));
}

#[test]
fn every_method_answers_arbitrary_requests_and_the_stream_keeps_running() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut d = TestDaemon::new();
    let mut child = d.spawn();
    let recordings = d.recordings();
    let mut clients = runtime.block_on(async {
        Clients {
            core: AllegoCoreClient::connect(d.endpoint(0)).await.unwrap(),
            pcache: Pcache1Client::connect(d.endpoint(1)).await.unwrap(),
            kpi: Kpi1Client::connect(d.endpoint(2)).await.unwrap(),
            neurons: Neurons1Client::connect(d.endpoint(3)).await.unwrap(),
            lifecycle: AllegoLifecycleClient::connect(d.endpoint(4)).await.unwrap(),
        }
    });
    runtime.block_on(clients.core.set_stream_state(SetStreamRequest { mode: 1 })).unwrap();

    run(&runtime, &mut clients, "SetStreamState", any::<i32>().prop_filter("not S_OFF", |m| *m != 0), |c, mode| {
        Box::pin(answered(c.core.set_stream_state(SetStreamRequest { mode })))
    });
    run(&runtime, &mut clients, "SetRecordState", (any_index(), prop::option::of(any_index())), |c, (mode, port)| {
        Box::pin(answered(c.core.set_record_state(SetRecordRequest { mode, port })))
    });
    let recording = (any_text(), any::<bool>(), any::<bool>(), any_index(), any_index());
    let dir = recordings.display().to_string();
    run(&runtime, &mut clients, "SetConfigRecording", recording, move |c, (name, ts, split, kind, source)| {
        let msg = ConfigRecording {
            base_file_name: name,
            base_file_path: dir.clone(),
            data_source_idx: Some(source),
            time_stamp: Some(ts),
            split_files_by_port: Some(split),
            force_start_at_t_stamp0: Some(false),
            recording_type: kind,
        };
        Box::pin(answered(c.core.set_config_recording(msg)))
    });
    let core = (
        prop::option::of(any_f64()),
        prop::option::of(any_f64()),
        prop::option::of((any_index(), any_index(), any::<bool>())),
    );
    run(&runtime, &mut clients, "SetConfigCore", core, |c, (rate, loop_dur, delay)| {
        let msg = SetConfigCoreRequest {
            samp_freq: rate,
            loop_dur,
            pcache_persistence: None,
            cable_delay: delay.map(|(port, cable_delay, is_auto)| CableDelay { port, cable_delay, is_auto }),
        };
        Box::pin(answered(c.core.set_config_core(msg)))
    });
    run(&runtime, &mut clients, "Restart", any_index(), |c, mode| {
        Box::pin(answered(c.core.restart(RestartRequest { mode })))
    });
    run(&runtime, &mut clients, "GetSignalGroup", any_text(), |c, id| {
        Box::pin(answered(c.core.get_signal_group(SignalGroupIdRequest { stream_group_id: id })))
    });
    let update = (
        any_index(),
        prop::option::of(any_index()),
        prop::collection::vec(any_index(), 0..20),
        any_index(),
        prop_oneof![Just("Live Signals".to_string()), any_text()],
    );
    run(&runtime, &mut clients, "UpdateSignalGroup", update, |c, (op, sub, channels, kind, id)| {
        let msg = UpdateSignalGroupRequest {
            stream_group_id: id,
            operation: op,
            ntv_chan_idx: channels,
            signal_type: kind,
            propagate: None,
            sub_operation: sub.map(SubOperationOneOf::AddRemove),
        };
        Box::pin(answered(c.core.update_signal_group(msg)))
    });
    run(&runtime, &mut clients, "ScanPorts", Just(()), |c, ()| {
        Box::pin(answered(c.core.scan_ports(StandardRequest::default())))
    });
    run(&runtime, &mut clients, "GetIntanImpedance", any_index(), |c, port| {
        Box::pin(answered(c.core.get_intan_impedance(ImpedanceRequest { port })))
    });
    run(&runtime, &mut clients, "ReadWireOut", any::<i64>(), |c, address| {
        Box::pin(answered(c.core.read_wire_out(ReadWireOutRequest { wire_out_address: address })))
    });
    let trigger = (any_index(), any::<bool>(), any_index());
    run(&runtime, &mut clients, "SetTriggerState", trigger, |c, (channel, enabled, port)| {
        let msg = SetTriggerRequest { channel, enabled, port: Some(port) };
        Box::pin(answered(c.core.set_trigger_state(msg)))
    });
    let snapshot = (
        prop_oneof![Just("Live Signals".to_string()), any_text()],
        time_range(),
        prop::option::of(any_index()),
        prop::option::of(selector()),
        prop::option::of(any::<bool>()),
    );
    run(&runtime, &mut clients, "GetHDSnapshot2", snapshot, |c, (id, t_r, sel_mode, sig_sel, dsp)| {
        let msg = HdSnapshotRequest2 { dsource_id: id, t_r, sel_mode, sig_sel, apply_ds_pstage2: dsp };
        Box::pin(answered(c.pcache.get_hd_snapshot2(msg)))
    });
    let group = (
        prop_oneof![Just("Live Signals".to_string()), any_text()],
        any_index(),
        prop::collection::vec(dsp_params(), 0..4),
    );
    run(&runtime, &mut clients, "SetDSPGroup", group, |c, (id, stage, params)| {
        let msg = SetDspGroupRequest { stream_group_id: id, stage, dsp_params: params };
        Box::pin(answered(c.core.set_dsp_group(msg)))
    });
    run(&runtime, &mut clients, "SpikeSorterSetParam", sorter_param(), |c, msg| {
        Box::pin(answered(c.neurons.spike_sorter_set_param(msg)))
    });
    run(&runtime, &mut clients, "SpikeSorterSetParams", prop::collection::vec(sorter_param(), 0..4), |c, params| {
        Box::pin(answered(c.neurons.spike_sorter_set_params(SpikeSorterSetParamsRequest { params })))
    });
    let command = (prop_oneof![Just("Live Signals".to_string()), any_text()], any_index(), any_index());
    run(&runtime, &mut clients, "SpikeSorterCommand", command, |c, (id, cmd, sub)| {
        let msg = SpikeSorterCommandRequest {
            spike_sorter_id: id,
            cmd,
            sub_cmd: sub,
            clusterer_params: None,
            feature_params: None,
            neighbor_radius_um: None,
            max_num_site_neighbors: None,
        };
        Box::pin(answered(c.neurons.spike_sorter_command(msg)))
    });
    let dashboard = (any_text(), prop::collection::vec(any_index(), 0..4));
    run(&runtime, &mut clients, "SpikeSorterGetDashboard", dashboard, |c, (id, elements)| {
        let msg = SpikeSorterDashboardRequest { spike_sorter_id: id, dash_elements: elements };
        Box::pin(answered(c.neurons.spike_sorter_get_dashboard(msg)))
    });
    let metrics = (
        prop_oneof![Just("Live Signals".to_string()), any_text()],
        prop::option::of(any_index()),
        prop::collection::vec(any_index(), 0..5),
        prop::collection::vec(any_index(), 0..5),
        prop::option::of(any_index()),
        prop::option::of(any_f64()),
    );
    run(&runtime, &mut clients, "KpiGetMetrics", metrics, |c, (id, stype, channels, names, mode, lookback)| {
        let msg = KpiMetricsReq {
            stream_group_id: id,
            stype,
            arg: BundleReq {
                ntv_idxs: channels,
                t_r: TimeRange::default(),
                metrics: names.into_iter().map(|name| KpiMetricId { name }).collect(),
            },
            mode,
            stream_lookback_sec: lookback,
        };
        Box::pin(answered(c.kpi.kpi_get_metrics(msg)))
    });
    run(&runtime, &mut clients, "SetKpiParams", (prop::option::of(any_f64()), any::<bool>()), |c, (param, packet)| {
        let msg = SetKpiParamRequest { stream_group_id: None, param };
        Box::pin(async move {
            if packet {
                answered(c.kpi.set_kpi_packet_dur(msg)).await
            } else {
                answered(c.kpi.set_kpi_update_period(msg)).await
            }
        })
    });
    run(&runtime, &mut clients, "reads", Just(()), |c, ()| {
        Box::pin(async move {
            answered(c.core.get_status(StandardRequest::default())).await?;
            answered(c.core.get_config(StandardRequest::default())).await?;
            answered(c.core.get_config_recording(StandardRequest::default())).await?;
            answered(c.core.get_trigger_state(StandardRequest::default())).await?;
            answered(c.core.get_dsp_group(SignalGroupIdRequest { stream_group_id: "Live Signals".into() })).await?;
            answered(c.core.get_spike_sorter_i_ds(StandardRequest::default())).await?;
            let sorter = SpikeSorterStandardRequest { stream_group_id: None, spike_sorter_id: None };
            answered(c.neurons.spike_sorter_get_param(sorter.clone())).await?;
            answered(c.neurons.spike_sorter_get_state(sorter)).await?;
            answered(c.kpi.get_kpi_status(GetKpiStatusRequest { stream_group_id: "Live Signals".into() })).await?;
            answered(c.lifecycle.get_version(StandardRequest::default())).await
        })
    });

    // Still streaming, and the cache still advancing.
    let (first, second) = runtime.block_on(async {
        let status = |mut core: AllegoCoreClient<Channel>| async move {
            core.get_status(StandardRequest::default()).await.unwrap().into_inner()
        };
        let a = status(clients.core.clone()).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        (a, status(clients.core.clone()).await)
    });
    assert_eq!(second.streaming.stream_mode, 1, "the stream stopped: {}", d.log_text());
    assert!(second.streaming.primary_cache_t_range[1] > first.streaming.primary_cache_t_range[1]);
    assert!(!d.log_text().contains("panicked"), "{}", d.log_text());
    signal(&child, libc::SIGTERM);
    let (status, _) = wait_exit(&mut child, Duration::from_secs(30));
    assert!(status.success(), "{}", d.log_text());
}
