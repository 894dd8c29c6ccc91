//! Channels: `GetSignalGroup`, `UpdateSignalGroup`, `ScanPorts`, `GetSignalGroupIDs`.
//!
//! The live signal group ("Live Signals") lists every channel of the device: amplifier
//! channels with their probe site (position, shape, area) where a probe map is known, then
//! the board analog inputs and the digital lines. Allego's conventions, which radiens-core
//! relies on: positions in units of 10 µm (the client multiplies by 10), areas in µm²,
//! `siteNum = -23` for "no probe site", `colorGroupIdx = i32::MAX` for "no group", and
//! `datasetRidx` set on every record.

use std::collections::HashMap;
use std::sync::Arc;

use ephysd_drivers::DeviceDescription;
use ephysd_proto::allego::update_signal_group_request::{Operation, SubOperation, SubOperationOneOf};
use ephysd_proto::allego::{
    sensor, ChannelRecord, GetSignalGroupIDsReply, Sensor, SensorPortSpec, SensorPositionTcs, SignalGroup,
    SignalGroupIdRequest, SignalGroupUnits, SignalType, StandardReply, UpdateSignalGroupRequest, XyCoord,
};
use tonic::Status;

use super::{off_workers, status::healthy};
use crate::engine::{ChannelTable, ChannelUpdate, Engine, SignalKind};
use crate::probe_map::{ProbeMap, Site};

/// The one stream group the daemon serves: the primary cache.
pub const LIVE_SIGNALS: &str = "Live Signals";

/// `siteNum` of a channel with no known probe site.
const NO_SITE: i32 = -23;

/// Allego's signal units (radiens-core `SignalUnits`): µV, V, binary.
const UNITS_MICROVOLTS: i32 = 1;
const UNITS_VOLTS: i32 = 2;
const UNITS_BINARY: i32 = 3;

/// Allego carries site coordinates in units of 10 µm.
const UM_PER_WIRE_UNIT: f64 = 10.0;

/// How far apart two sites may be to count as neighbours (for sorters), µm.
const NEIGHBOR_MAX_RADIUS_UM: f64 = 100.0;

/// `GetSignalGroupIDs`: one continuous group, no discrete ones.
pub fn signal_group_ids() -> GetSignalGroupIDsReply {
    GetSignalGroupIDsReply { continuous: vec![LIVE_SIGNALS.to_string()], discrete: Vec::new() }
}

/// `GetSignalGroup`.
pub fn signal_group(engine: &Engine, request: &SignalGroupIdRequest) -> Result<SignalGroup, Status> {
    check_group_id("streamGroupId", &request.stream_group_id)?;
    Ok(live_signal_group(engine))
}

/// `ScanPorts`: looks at the ports again (refused while streaming) and answers the group.
pub async fn scan_ports(engine: &Arc<Engine>) -> Result<SignalGroup, Status> {
    off_workers(engine, |e| e.scan_ports()).await?;
    Ok(live_signal_group(engine))
}

/// `UpdateSignalGroup`: selection and colour groups (sorting and audio are not supported).
pub async fn update_signal_group(
    engine: &Arc<Engine>,
    request: &UpdateSignalGroupRequest,
) -> Result<StandardReply, Status> {
    check_group_id("streamGroupId", &request.stream_group_id)?;
    let kind = kind_of("signalType", request.signal_type)?;
    let add = match request.sub_operation {
        Some(SubOperationOneOf::AddRemove(v)) => match SubOperation::try_from(v) {
            Ok(SubOperation::Add) => true,
            Ok(SubOperation::Remove) => false,
            Err(_) => return Err(Status::invalid_argument(format!("addRemove = {v}: allowed ADD (0), REMOVE (1)"))),
        },
        Some(SubOperationOneOf::SortOp(_)) => {
            return Err(Status::invalid_argument(
                "sortOp: sorting the signal group is not supported; allowed: addRemove",
            ))
        }
        None => return Err(Status::invalid_argument("addRemove is missing: allowed ADD (0), REMOVE (1)")),
    };
    let mut channels = Vec::with_capacity(request.ntv_chan_idx.len());
    for (i, &c) in request.ntv_chan_idx.iter().enumerate() {
        let c = usize::try_from(c)
            .map_err(|_| Status::invalid_argument(format!("ntvChanIdx[{i}] = {c}: channel indices are 0 or more")))?;
        channels.push(c);
    }
    let update = match Operation::try_from(request.operation) {
        Ok(Operation::Select) => ChannelUpdate::Select { kind, channels, add },
        Ok(Operation::Color) => ChannelUpdate::Group { kind, channels, add },
        Ok(other) => {
            return Err(Status::invalid_argument(format!(
                "operation = {}: not supported; allowed COLOR (0), SELECT (1)",
                other.as_str_name()
            )))
        }
        Err(_) => {
            return Err(Status::invalid_argument(format!(
                "operation = {}: allowed COLOR (0), SELECT (1)",
                request.operation
            )))
        }
    };
    off_workers(engine, move |e| e.update_channels(&update, "ntvChanIdx")).await?;
    Ok(healthy())
}

/// Refuses any stream group but the live one.
pub fn check_group_id(field: &str, id: &str) -> Result<(), Status> {
    if id == LIVE_SIGNALS {
        Ok(())
    } else {
        Err(Status::not_found(format!("{field} = {id:?}: no such signal group; allowed: {LIVE_SIGNALS:?}")))
    }
}

/// The signal kind a `SignalType` value names.
pub fn kind_of(field: &str, value: i32) -> Result<SignalKind, Status> {
    match SignalType::try_from(value) {
        Ok(SignalType::Pri) => Ok(SignalKind::Amplifier),
        Ok(SignalType::Aux) => Ok(SignalKind::AnalogIn),
        Ok(SignalType::Din) => Ok(SignalKind::DigitalIn),
        Ok(SignalType::Dout) => Ok(SignalKind::DigitalOut),
        Err(_) => {
            Err(Status::invalid_argument(format!("{field} = {value}: allowed PRI (0), AUX (1), DIN (2), DOUT (3)")))
        }
    }
}

fn signal_type(kind: SignalKind) -> SignalType {
    match kind {
        SignalKind::Amplifier => SignalType::Pri,
        SignalKind::AnalogIn => SignalType::Aux,
        SignalKind::DigitalIn => SignalType::Din,
        SignalKind::DigitalOut => SignalType::Dout,
    }
}

/// The live signal group as the engine holds it now.
pub fn live_signal_group(engine: &Engine) -> SignalGroup {
    let d = engine.description();
    let (table, probes, dataset_uid) = engine.channels();
    build_signal_group(&d, &table, &probes, dataset_uid)
}

fn build_signal_group(
    d: &DeviceDescription,
    table: &ChannelTable,
    probes: &[Option<ProbeMap>],
    dataset_uid: String,
) -> SignalGroup {
    let mut channels = Vec::new();
    let mut sys = 0i32;
    for (i, port) in d.ports.iter().enumerate() {
        let map = probes.get(i).and_then(Option::as_ref);
        for c in 0..port.channels {
            let ntv = port.first_channel + c;
            let site = map.and_then(|m| m.site_for_channel(c).map(|s| (m, s)));
            channels.push(amplifier_record(table, ntv, sys, port.port, &port.headstage, site));
            sys += 1;
        }
    }
    for kind in [SignalKind::AnalogIn, SignalKind::DigitalIn, SignalKind::DigitalOut] {
        for ntv in 0..table.count(kind) {
            channels.push(gpio_record(table, kind, ntv, sys));
            sys += 1;
        }
    }
    let units = [
        (SignalType::Pri, UNITS_MICROVOLTS),
        (SignalType::Aux, UNITS_VOLTS),
        (SignalType::Din, UNITS_BINARY),
        (SignalType::Dout, UNITS_BINARY),
    ];
    SignalGroup {
        channels,
        sensor_port_spec: sensor_port_spec(d, probes),
        dataset_uid: Some(dataset_uid),
        samp_freq: Some(d.sample_rate_hz),
        source_label: Some(d.name.clone()),
        neighbor_max_radius: Some(NEIGHBOR_MAX_RADIUS_UM),
        signal_units: Some(SignalGroupUnits {
            units: units.iter().map(|(t, u)| (*t as i32, *u)).collect::<HashMap<_, _>>(),
        }),
        has_discrete: Some(false),
        has_continuous_amp: Some(d.layout.amplifier_channels > 0),
    }
}

fn amplifier_record(
    table: &ChannelTable,
    ntv: usize,
    sys: i32,
    port: usize,
    headstage: &str,
    site: Option<(&ProbeMap, &Site)>,
) -> ChannelRecord {
    let letter = (b'A' + port as u8) as char;
    let mut record = ChannelRecord {
        chan_name: format!("{letter}-{:03}", ntv),
        chan_type: SignalType::Pri as i32,
        ntv_chan_idx: ntv as i32,
        site_num: NO_SITE,
        color_group_idx: table.group(SignalKind::Amplifier, ntv),
        is_selected: table.is_selected(SignalKind::Amplifier, ntv),
        port: port as i32,
        site_shape: String::new(),
        sensor_units: "uV".into(),
        abs_idx: ntv as i32,
        sys_chan_idx: sys,
        dataset_ridx: Some(ntv as i32),
        dataset_aidx: Some(ntv as i32),
        ntv_chan_name: Some(format!("{letter}-{:03}", ntv)),
        headstage_id: Some(headstage.to_string()),
        sensor_idx: Some(-1),
        ..Default::default()
    };
    if let Some((map, s)) = site {
        let radius = site_half_width(s);
        let wire = |um: f64| um / UM_PER_WIRE_UNIT;
        record.site_num = s.site;
        record.site_shape = s.shape.name().to_string();
        record.site_ctr_x = wire(s.x_um);
        record.site_ctr_y = wire(s.y_um);
        record.site_ctr_z = wire(s.z_um);
        record.site_ctr_tcs_x = wire(s.x_um);
        record.site_ctr_tcs_y = wire(s.y_um);
        record.site_ctr_tcs_z = wire(s.z_um);
        record.site_lim_x_min = wire(s.x_um - radius);
        record.site_lim_x_max = wire(s.x_um + radius);
        record.site_lim_y_min = wire(s.y_um - radius);
        record.site_lim_y_max = wire(s.y_um + radius);
        record.site_lim_z_min = wire(s.z_um);
        record.site_lim_z_max = wire(s.z_um);
        record.site_area_micron2 = Some(s.area_um2);
        record.scs_to_tcs_x = Some(0.0);
        record.scs_to_tcs_y = Some(0.0);
        record.scs_to_tcs_z = Some(0.0);
        record.probe_id = Some(map.name.clone());
        record.sensor_id = Some(format!("{letter}:{}", map.name));
    }
    record
}

/// Half the width of a site, µm, from its area (a disc's radius, a square's half side).
fn site_half_width(s: &Site) -> f64 {
    match s.shape {
        crate::probe_map::SiteShape::Circle => (s.area_um2 / std::f64::consts::PI).sqrt(),
        _ => s.area_um2.sqrt() / 2.0,
    }
}

fn gpio_record(table: &ChannelTable, kind: SignalKind, ntv: usize, sys: i32) -> ChannelRecord {
    let (prefix, units) = match kind {
        SignalKind::AnalogIn => ("AIN", "V"),
        SignalKind::DigitalIn => ("DIN", "binary"),
        _ => ("DOUT", "binary"),
    };
    let name = format!("{prefix}-{ntv:02}");
    ChannelRecord {
        chan_name: name.clone(),
        chan_type: signal_type(kind) as i32,
        ntv_chan_idx: ntv as i32,
        site_num: NO_SITE,
        color_group_idx: table.group(kind, ntv),
        is_selected: table.is_selected(kind, ntv),
        port: 0,
        sensor_units: units.into(),
        abs_idx: ntv as i32,
        sys_chan_idx: sys,
        dataset_ridx: Some(ntv as i32),
        dataset_aidx: Some(ntv as i32),
        ntv_chan_name: Some(name),
        sensor_idx: Some(-1),
        ..Default::default()
    }
}

/// One sensor (probe outline) per port whose probe is known.
fn sensor_port_spec(d: &DeviceDescription, probes: &[Option<ProbeMap>]) -> SensorPortSpec {
    let mut spec = SensorPortSpec::default();
    for (port, probe) in d.ports.iter().zip(probes) {
        let Some(map) = probe else { continue };
        let (x_min, x_max, y_min, y_max) = map.bounds();
        let wire = |um: f64| um / UM_PER_WIRE_UNIT;
        let corner = |x: f64, y: f64| XyCoord { x: wire(x), y: wire(y) };
        let sensor = Sensor {
            probe_id: map.name.clone(),
            headstage_id: port.headstage.clone(),
            wireframe: sensor::WireFrame {
                vtx: vec![corner(x_min, y_min), corner(x_max, y_min), corner(x_max, y_max), corner(x_min, y_max)],
                vtx_xlim: XyCoord { x: wire(x_min), y: wire(x_max) },
                vtx_ylim: XyCoord { x: wire(y_min), y: wire(y_max) },
            },
            x_min: wire(x_min),
            x_max: wire(x_max),
            y_min: wire(y_min),
            y_max: wire(y_max),
            position: SensorPositionTcs::default(),
            sensor_uid: Some(format!("{}:{}", port.letter(), map.name)),
            connection_ntv_idx: Some(port.first_channel as i32),
            num_sites: map.channels() as i32,
            sensor_idx: Some(-1),
        };
        let slot = match port.port {
            0 => &mut spec.sensor_a,
            1 => &mut spec.sensor_b,
            2 => &mut spec.sensor_c,
            3 => &mut spec.sensor_d,
            4 => &mut spec.sensor_e,
            5 => &mut spec.sensor_f,
            6 => &mut spec.sensor_g,
            _ => &mut spec.sensor_h,
        };
        slot.push(sensor);
    }
    spec
}
