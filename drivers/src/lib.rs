//! Devices for ephysd: one layer for every board and its stand-ins.
//!
//! [`open`] builds whatever a [`DeviceSpec`] names (parsed once from the configuration's
//! `device.*` keys) and returns a [`Device`]: it describes itself once
//! ([`DeviceDescription`]), starts streams whose read side is a [`Source`] (which fills a
//! preallocated [`FrameBlock`] in place, so the acquisition thread never allocates), and is
//! acted on through its [`Control`] side (outputs, stimulation, impedance). The devices: the
//! simulated device ([`sim`]), the Rhythm/XDAQ boards ([`rhythm`]) and SmartBox Pro with
//! SiNAPS probes ([`sinaps`]) over the FrontPanel operations; file replay plugs in behind the
//! same types from the daemon.

pub mod control;
pub mod description;
pub mod device;
pub mod discovery;
pub mod emulator;
pub mod frame;
pub mod frontpanel;
pub mod rates;
pub mod rhythm;
pub mod sim;
pub mod sinaps;
pub mod source;
pub mod spec;

pub use control::{check_ttl_input, Control, ControlError, Impedance, StimPhase, StimPulse, TTL_INPUTS};
pub use description::{DeviceDescription, PortDescription};
pub use device::{open, Backend, Device, DeviceError, GroundTruth};
pub use frame::{
    analog_in_volts, BlockLayout, FrameBlock, LayoutError, AMPLIFIER_UV_PER_UNIT, ANALOG_IN_VOLTS_PER_CODE,
    ANALOG_IN_ZERO_CODE, MAX_AMPLIFIER_CHANNELS,
};
pub use rates::{canonical_sample_rate, INTAN_SAMPLE_RATES};
pub use sim::GroundTruthSpike;
pub use sinaps::{SinapsControl, SinapsError, SinapsModel, SinapsStatus};
pub use source::{Source, SourceError};
pub use spec::{DeviceKeys, DeviceSpec, DeviceSpecError, ReplaySpec};
