//! Hardware methods: `GetIntanImpedance`, and the Sinaps probe methods (`LoadAllMosi`,
//! `TransmitMosi`, `ReadWireOut`, `GetSinapsStatusRegisters`, `FlashSinaps`), which a SmartBox
//! Pro with a Sinaps probe answers and every other device refuses, naming itself.

use std::sync::Arc;

use ephysd_proto::allego::impedance::ImpedanceValue;
use ephysd_proto::allego::{
    FlashSinapsRequest, Impedance, ImpedanceRequest, LoadAllMosiRequest, Port, ReadWireOutReply, ReadWireOutRequest,
    SinapsStatusRegisters, StandardReply,
};
use tonic::Status;

use super::off_workers;
use super::status::healthy;
use crate::engine::Engine;

/// `GetIntanImpedance`: the impedance of every electrode on the port asked for.
pub async fn intan_impedance(engine: &Arc<Engine>, request: &ImpedanceRequest) -> Result<Impedance, Status> {
    let port = Port::try_from(request.port)
        .map_err(|_| Status::invalid_argument(format!("port = {}: allowed 0..=7 (A..H)", request.port)))?;
    let measured = off_workers(engine, move |e| e.measure_port_impedance(port as usize)).await?;
    Ok(Impedance {
        impedances: measured
            .into_iter()
            .map(|z| ImpedanceValue {
                ntv_chan_idx: z.channel as i32,
                z_mag: z.magnitude_ohms,
                z_phase: z.phase_degrees,
            })
            .collect(),
    })
}

/// `LoadAllMosi`: the MOSI register bank into the SmartBox Pro's FPGA.
pub async fn load_all_mosi(engine: &Arc<Engine>, request: &LoadAllMosiRequest) -> Result<StandardReply, Status> {
    let values = request.register_vals.clone();
    off_workers(engine, move |e| e.load_all_mosi(&values)).await?;
    Ok(healthy())
}

/// `TransmitMosi`: the loaded bank to the probe.
pub async fn transmit_mosi(engine: &Arc<Engine>) -> Result<StandardReply, Status> {
    off_workers(engine, |e| e.transmit_mosi()).await?;
    Ok(healthy())
}

/// `ReadWireOut`: one wire-out of the FPGA.
pub async fn read_wire_out(engine: &Arc<Engine>, request: &ReadWireOutRequest) -> Result<ReadWireOutReply, Status> {
    let address = request.wire_out_address;
    let value = off_workers(engine, move |e| e.read_wire_out(address)).await?;
    Ok(ReadWireOutReply { wire_out_value: i64::from(value) })
}

/// `GetSinapsStatusRegisters`: the FPGA's status registers.
pub async fn sinaps_status_registers(engine: &Arc<Engine>) -> Result<SinapsStatusRegisters, Status> {
    let s = off_workers(engine, |e| e.sinaps_status()).await?;
    let count = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
    Ok(SinapsStatusRegisters {
        calibration_state: s.calibrating,
        calibration_progress: s.calibration_progress,
        num_active_pixels_shank0: count(s.active_pixels[0]),
        num_active_pixels_shank1: count(s.active_pixels[1]),
        num_active_pixels_shank2: count(s.active_pixels[2]),
        num_active_pixels_shank3: count(s.active_pixels[3]),
        v_ref_ffa: s.vref_volts[0],
        v_ref_ffb: s.vref_volts[1],
        v_ref_ffc: s.vref_volts[2],
        v_ref_ffd: s.vref_volts[3],
        is_error0: s.shank_errors[0],
        is_error1: s.shank_errors[1],
        is_error2: s.shank_errors[2],
        is_error3: s.shank_errors[3],
        // Counters wrap as the FPGA's 32-bit registers do.
        host_counter: s.host_counter as i32,
        fpga_counter: s.fpga_counter as i32,
        firmware_version: s.firmware,
        probe_generation: count(s.probe_generation),
        probe_model: count(s.probe_model),
    })
}

/// `FlashSinaps`: the FPGA configured from a bitfile (checked whole first; not while streaming).
pub async fn flash_sinaps(engine: &Arc<Engine>, request: &FlashSinapsRequest) -> Result<StandardReply, Status> {
    let bitfile = request.bitfile.clone();
    off_workers(engine, move |e| e.flash_sinaps(&bitfile)).await?;
    Ok(healthy())
}
