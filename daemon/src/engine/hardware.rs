//! Requests that act on the hardware itself: impedance, and the Sinaps probe methods (which
//! reach the device through `Control::sinaps` and are refused on any other device, naming it).

use ephysd_drivers::{Impedance, SinapsControl, SinapsError, SinapsStatus};

use super::{Engine, EngineError};

impl Engine {
    /// Measures the impedance of every electrode on `port` (0 = A), as the device measures it
    /// (an Intan chip: a 1 kHz test current through its on-chip capacitors). Refused while
    /// streaming (the test current would be in the signal) and on devices that cannot. The
    /// measurement is kept for the next recordings' `/channels`.
    pub fn measure_port_impedance(&self, port: usize) -> Result<Vec<Impedance>, EngineError> {
        let mut st = self.lock();
        if st.stream.is_some() {
            return Err(EngineError::StreamingOn { action: "measuring impedance" });
        }
        let d = std::sync::Arc::clone(&st.description);
        if !d.can_measure_impedance {
            return Err(EngineError::WrongDevice {
                method: "allego.AllegoCore/GetIntanImpedance",
                needs: "a device that measures electrode impedance",
                device: d.name.clone(),
                backbone: d.backbone,
            });
        }
        let Some(p) = d.ports.iter().find(|p| p.port == port) else {
            let ports: Vec<String> = d.ports.iter().map(|p| p.letter().to_string()).collect();
            return Err(EngineError::InvalidArgument {
                field: "port".into(),
                value: ((b'A' + port as u8) as char).to_string(),
                allowed: format!("a port with channels: {}", ports.join(", ")),
            });
        };
        let range = p.first_channel..p.first_channel + p.channels;
        let all = st.device.control().measure_impedance()?;
        let on_port = all.iter().filter(|z| range.contains(&z.channel)).copied().collect();
        st.impedance = Some(all);
        Ok(on_port)
    }

    /// Runs a Sinaps operation on the open device: refused, naming the device, when it has no
    /// Sinaps probe (`method` as the wire names it); with `idle`, also while streaming (the
    /// action refused). Device I/O: call it off the async workers.
    fn with_sinaps<T>(
        &self,
        method: &'static str,
        idle: Option<&'static str>,
        op: impl FnOnce(&mut dyn SinapsControl) -> Result<T, SinapsError>,
    ) -> Result<T, EngineError> {
        let mut st = self.lock();
        let d = std::sync::Arc::clone(&st.description);
        let streaming = st.stream.is_some();
        let Some(sinaps) = st.device.control().sinaps() else {
            return Err(EngineError::WrongDevice {
                method,
                needs: SINAPS_DEVICE,
                device: d.name.clone(),
                backbone: d.backbone,
            });
        };
        if let (Some(action), true) = (idle, streaming) {
            return Err(EngineError::StreamingOn { action });
        }
        Ok(op(sinaps)?)
    }

    /// `LoadAllMosi`: the MOSI register bank, checked register by register, into the FPGA.
    pub fn load_all_mosi(&self, register_vals: &[i32]) -> Result<(), EngineError> {
        self.with_sinaps("allego.AllegoCore/LoadAllMosi", None, |s| s.load_all_mosi(register_vals))
    }

    /// `TransmitMosi`: the loaded bank to the probe.
    pub fn transmit_mosi(&self) -> Result<(), EngineError> {
        self.with_sinaps("allego.AllegoCore/TransmitMosi", None, |s| s.transmit_mosi())
    }

    /// `ReadWireOut`: one FrontPanel wire-out of the SmartBox Pro's FPGA.
    pub fn read_wire_out(&self, address: i64) -> Result<u32, EngineError> {
        self.with_sinaps("allego.AllegoCore/ReadWireOut", None, |s| s.read_wire_out(address))
    }

    /// `GetSinapsStatusRegisters`: the FPGA's status registers, decoded.
    pub fn sinaps_status(&self) -> Result<SinapsStatus, EngineError> {
        self.with_sinaps("allego.AllegoCore/GetSinapsStatusRegisters", None, |s| s.status())
    }

    /// `FlashSinaps`: configures the FPGA from `bitfile` (checked whole first) and brings the
    /// probe up again. Refused while streaming, like impedance.
    pub fn flash_sinaps(&self, bitfile: &str) -> Result<(), EngineError> {
        self.with_sinaps("allego.AllegoCore/FlashSinaps", Some("flashing the Sinaps FPGA"), |s| {
            if bitfile.is_empty() {
                return Err(SinapsError::InvalidArgument {
                    field: "bitfile".into(),
                    value: "\"\"".into(),
                    allowed: "the path of a Xilinx .bit file on the daemon's machine".into(),
                });
            }
            s.flash(std::path::Path::new(bitfile))
        })
    }
}

/// What the Sinaps methods need, as refusals name it.
const SINAPS_DEVICE: &str =
    "a SmartBox Pro with a Sinaps probe (device.backbone smartbox-pro-sinaps-256, -512 or -1024)";
