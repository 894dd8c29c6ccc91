//! Hardware methods: `GetIntanImpedance`, and the Sinaps probe methods (which no device this
//! version drives answers: they are refused naming the device that is open).

use std::sync::Arc;

use ephysd_proto::allego::impedance::ImpedanceValue;
use ephysd_proto::allego::{Impedance, ImpedanceRequest, Port};
use tonic::Status;

use super::errors::status_of;
use super::off_workers;
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

/// The answer of a Sinaps method (`method` as the wire names it).
pub fn sinaps_refused(engine: &Engine, method: &'static str) -> Status {
    status_of(&engine.sinaps_refusal(method))
}
