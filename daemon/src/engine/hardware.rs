//! Requests that act on the hardware itself: impedance, and the Sinaps probe methods.

use ephysd_drivers::Impedance;

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

    /// The refusal a Sinaps method gets on this device: none of the devices this version
    /// drives has Sinaps probes.
    pub fn sinaps_refusal(&self, method: &'static str) -> EngineError {
        let d = self.description();
        EngineError::WrongDevice {
            method,
            needs: "a SmartBox Pro with Sinaps probes (smartbox-pro-sinaps-*), which this version does not drive",
            device: d.name.clone(),
            backbone: d.backbone,
        }
    }
}
