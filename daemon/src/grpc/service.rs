//! The five Allego services as tonic sees them: each method hands its request to the module
//! of its domain (`status`, `core_config`, `channels`, `streaming`, `recording`, `triggers`)
//! and nothing else; `GetHDSnapshot2` has its own route (`signal_stream`). Methods not listed here
//! keep tonic's default answer, which the UNIMPLEMENTED guard turns into one naming the method.

use std::sync::Arc;

use ephysd_proto::allego::allego_core_server::AllegoCore;
use ephysd_proto::allego::allego_lifecycle_server::AllegoLifecycle;
use ephysd_proto::allego::{kpi1_server::Kpi1, neurons1_server::Neurons1, pcache1_server::Pcache1};
use ephysd_proto::allego::{
    BackboneStatus, ConfigCore, ConfigRecording, DspGroup, FlashSinapsRequest, GetKpiStatusRequest,
    GetSignalGroupIDsReply, GetSpikeSorterIDsReply, GetSpikeSorterParamCommandReply, Impedance, ImpedanceRequest,
    KpiMetricsReq, KpiStatusReply, LoadAllMosiRequest, OfflineLicenseStatus, ReadWireOutReply, ReadWireOutRequest,
    RestartRequest, ServerVersion, SetConfigCoreRequest, SetDspGroupRequest, SetKpiParamRequest, SetRecordRequest,
    SetStreamRequest, SetTriggerRequest, SignalGroup, SignalGroupIdRequest, SignalMetricsPacketReply,
    SinapsStatusRegisters, SpikeSorterCommandRequest, SpikeSorterDashboardReply, SpikeSorterDashboardRequest,
    SpikeSorterIsAnyActiveReply, SpikeSorterIsAnyActiveRequest, SpikeSorterSetParamRequest,
    SpikeSorterSetParamsRequest, SpikeSorterStandardRequest, SpikeSorterState, StandardReply, StandardRequest,
    TransmitMosiRequest, TriggerState, UpdateSignalGroupRequest,
};
use tonic::{Request, Response, Status};

use super::{channels, core_config, dsp, hardware, kpi, recording, sorter, status, streaming, triggers};
use crate::engine::{Engine, SignalKind};

type Reply<T> = Result<Response<T>, Status>;

/// AllegoCore: status, streaming, recording (channels and signals, DSP, stimulation later).
pub struct CoreService {
    pub engine: Arc<Engine>,
    /// The core port's address, as `GetConfig` reports it.
    pub core_address: String,
}

#[tonic::async_trait]
impl AllegoCore for CoreService {
    async fn healthcheck(&self, _: Request<StandardRequest>) -> Reply<StandardReply> {
        Ok(Response::new(status::healthy()))
    }

    async fn get_status(&self, _: Request<StandardRequest>) -> Reply<BackboneStatus> {
        Ok(Response::new(status::backbone_status(&self.engine)))
    }

    async fn get_config(&self, _: Request<StandardRequest>) -> Reply<ConfigCore> {
        core_config::config_core(&self.engine, &self.core_address).map(Response::new)
    }

    async fn set_config_core(&self, request: Request<SetConfigCoreRequest>) -> Reply<StandardReply> {
        core_config::set_config_core(&self.engine, request.get_ref()).await.map(Response::new)
    }

    async fn restart(&self, request: Request<RestartRequest>) -> Reply<StandardReply> {
        core_config::restart(&self.engine, request.get_ref()).await.map(Response::new)
    }

    async fn get_signal_group_i_ds(&self, _: Request<StandardRequest>) -> Reply<GetSignalGroupIDsReply> {
        Ok(Response::new(channels::signal_group_ids()))
    }

    async fn get_signal_group(&self, request: Request<SignalGroupIdRequest>) -> Reply<SignalGroup> {
        channels::signal_group(&self.engine, request.get_ref()).map(Response::new)
    }

    async fn update_signal_group(&self, request: Request<UpdateSignalGroupRequest>) -> Reply<StandardReply> {
        channels::update_signal_group(&self.engine, request.get_ref()).await.map(Response::new)
    }

    async fn scan_ports(&self, _: Request<StandardRequest>) -> Reply<SignalGroup> {
        channels::scan_ports(&self.engine).await.map(Response::new)
    }

    async fn get_intan_impedance(&self, request: Request<ImpedanceRequest>) -> Reply<Impedance> {
        hardware::intan_impedance(&self.engine, request.get_ref()).await.map(Response::new)
    }

    async fn load_all_mosi(&self, request: Request<LoadAllMosiRequest>) -> Reply<StandardReply> {
        hardware::load_all_mosi(&self.engine, request.get_ref()).await.map(Response::new)
    }

    async fn transmit_mosi(&self, _: Request<TransmitMosiRequest>) -> Reply<StandardReply> {
        hardware::transmit_mosi(&self.engine).await.map(Response::new)
    }

    async fn read_wire_out(&self, request: Request<ReadWireOutRequest>) -> Reply<ReadWireOutReply> {
        hardware::read_wire_out(&self.engine, request.get_ref()).await.map(Response::new)
    }

    async fn get_sinaps_status_registers(&self, _: Request<StandardRequest>) -> Reply<SinapsStatusRegisters> {
        hardware::sinaps_status_registers(&self.engine).await.map(Response::new)
    }

    async fn flash_sinaps(&self, request: Request<FlashSinapsRequest>) -> Reply<StandardReply> {
        hardware::flash_sinaps(&self.engine, request.get_ref()).await.map(Response::new)
    }

    async fn set_stream_state(&self, request: Request<SetStreamRequest>) -> Reply<StandardReply> {
        streaming::set_stream_state(&self.engine, request.get_ref()).await.map(Response::new)
    }

    async fn set_record_state(&self, request: Request<SetRecordRequest>) -> Reply<StandardReply> {
        recording::set_record_state(&self.engine, request.get_ref()).await.map(Response::new)
    }

    async fn get_config_recording(&self, _: Request<StandardRequest>) -> Reply<ConfigRecording> {
        Ok(Response::new(recording::config_recording(&self.engine)))
    }

    async fn set_config_recording(&self, request: Request<ConfigRecording>) -> Reply<StandardReply> {
        recording::set_config_recording(&self.engine, request.get_ref()).await.map(Response::new)
    }

    async fn set_trigger_state(&self, request: Request<SetTriggerRequest>) -> Reply<StandardReply> {
        triggers::set_trigger_state(&self.engine, request.get_ref()).await.map(Response::new)
    }

    async fn get_trigger_state(&self, _: Request<StandardRequest>) -> Reply<TriggerState> {
        Ok(Response::new(triggers::trigger_state(&self.engine)))
    }

    async fn get_dsp_group(&self, request: Request<SignalGroupIdRequest>) -> Reply<DspGroup> {
        dsp::get_dsp_group(&self.engine, request.get_ref()).map(Response::new)
    }

    async fn set_dsp_group(&self, request: Request<SetDspGroupRequest>) -> Reply<StandardReply> {
        dsp::set_dsp_group(&self.engine, request.get_ref()).await.map(Response::new)
    }

    async fn get_spike_sorter_i_ds(&self, _: Request<StandardRequest>) -> Reply<GetSpikeSorterIDsReply> {
        Ok(Response::new(sorter::sorter_ids()))
    }
}

/// AllegoLifecycle: liveness, version and the server identity clients authenticate with.
pub struct LifecycleService;

#[tonic::async_trait]
impl AllegoLifecycle for LifecycleService {
    async fn healthcheck(&self, _: Request<StandardRequest>) -> Reply<StandardReply> {
        Ok(Response::new(status::healthy()))
    }

    async fn get_version(&self, _: Request<StandardRequest>) -> Reply<ServerVersion> {
        Ok(Response::new(status::version()))
    }

    async fn get_offline_license_status(&self, _: Request<StandardRequest>) -> Reply<OfflineLicenseStatus> {
        Ok(Response::new(status::offline_license()))
    }
}

/// Pcache1: primary-cache snapshots. `GetHDSnapshot2` is routed around it, to a reply sent
/// while it is read (`signal_stream`).
#[derive(Debug, Clone, Copy)]
pub struct PcacheService;
/// Kpi1: KPI metrics of the running stream.
pub struct KpiService {
    pub engine: Arc<Engine>,
}
/// Neurons1: the live sorter and its detection parameters.
pub struct NeuronsService {
    pub engine: Arc<Engine>,
}

#[tonic::async_trait]
impl Pcache1 for PcacheService {
    async fn healthcheck(&self, _: Request<StandardRequest>) -> Reply<StandardReply> {
        Ok(Response::new(status::healthy()))
    }
}

#[tonic::async_trait]
impl Kpi1 for KpiService {
    async fn healthcheck(&self, _: Request<StandardRequest>) -> Reply<StandardReply> {
        Ok(Response::new(status::healthy()))
    }

    async fn kpi_get_metrics(&self, request: Request<KpiMetricsReq>) -> Reply<SignalMetricsPacketReply> {
        let (table, _, _) = self.engine.channels();
        let selected = table.selected(SignalKind::Amplifier);
        kpi::metrics_reply(self.engine.kpi(), request.get_ref(), &selected, self.engine.stream_started_at())
            .map(Response::new)
    }

    async fn get_kpi_status(&self, request: Request<GetKpiStatusRequest>) -> Reply<KpiStatusReply> {
        let (_, _, dataset_uid) = self.engine.channels();
        kpi::status_reply(self.engine.kpi(), request.get_ref(), &dataset_uid, self.engine.stream_started_at())
            .map(Response::new)
    }

    async fn set_kpi_packet_dur(&self, request: Request<SetKpiParamRequest>) -> Reply<StandardReply> {
        kpi::set_packet_dur(self.engine.kpi(), request.get_ref()).map(Response::new)
    }

    async fn set_kpi_update_period(&self, request: Request<SetKpiParamRequest>) -> Reply<StandardReply> {
        kpi::set_update_period(self.engine.kpi(), request.get_ref()).map(Response::new)
    }
}

#[tonic::async_trait]
impl Neurons1 for NeuronsService {
    async fn healthcheck(&self, _: Request<StandardRequest>) -> Reply<StandardReply> {
        Ok(Response::new(status::healthy()))
    }

    async fn spike_sorter_command(&self, request: Request<SpikeSorterCommandRequest>) -> Reply<StandardReply> {
        sorter::command(&self.engine, request.get_ref()).await.map(Response::new)
    }

    async fn spike_sorter_set_param(&self, request: Request<SpikeSorterSetParamRequest>) -> Reply<StandardReply> {
        sorter::set_param(&self.engine, request.get_ref()).await.map(Response::new)
    }

    async fn spike_sorter_set_params(&self, request: Request<SpikeSorterSetParamsRequest>) -> Reply<StandardReply> {
        sorter::set_params(&self.engine, request.get_ref()).await.map(Response::new)
    }

    async fn spike_sorter_get_param(
        &self,
        request: Request<SpikeSorterStandardRequest>,
    ) -> Reply<GetSpikeSorterParamCommandReply> {
        sorter::get_params(&self.engine, request.get_ref()).map(Response::new)
    }

    async fn spike_sorter_is_any_active(
        &self,
        request: Request<SpikeSorterIsAnyActiveRequest>,
    ) -> Reply<SpikeSorterIsAnyActiveReply> {
        Ok(Response::new(sorter::is_any_active(&self.engine, request.get_ref())))
    }

    async fn spike_sorter_get_state(&self, request: Request<SpikeSorterStandardRequest>) -> Reply<SpikeSorterState> {
        sorter::state(&self.engine, request.get_ref()).map(Response::new)
    }

    async fn spike_sorter_get_dashboard(
        &self,
        request: Request<SpikeSorterDashboardRequest>,
    ) -> Reply<SpikeSorterDashboardReply> {
        sorter::dashboard(&self.engine, request.get_ref()).map(Response::new)
    }
}
