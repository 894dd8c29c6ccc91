//! `device.backbone` names and Allego's `BackboneMode`, in both directions.
//!
//! Allego's wire names each device family with an enum; ephysd's configuration names it in
//! lower kebab case. This table is the only place the two meet.

use ephysd_proto::allego::BackboneMode;

/// Every `BackboneMode` with its `device.backbone` name.
const NAMES: [(BackboneMode, &str); 23] = [
    (BackboneMode::SmartboxPro, "smartbox-pro"),
    (BackboneMode::SmartboxSimGenSine, "sim-sine"),
    (BackboneMode::SmartboxSimGenSpikes, "sim-spikes"),
    (BackboneMode::SmartboxSimDatasource, "sim-datasource"),
    (BackboneMode::OpenEphysUsb3, "open-ephys-usb3"),
    (BackboneMode::IntanRecordingController1024, "intan-recording-controller-1024"),
    (BackboneMode::SmartboxClassic, "smartbox-classic"),
    (BackboneMode::IntanRecordingController512, "intan-recording-controller-512"),
    (BackboneMode::OpenEphysUsb2, "open-ephys-usb2"),
    (BackboneMode::IntanUsb2, "intan-usb2"),
    (BackboneMode::SmartboxProSinaps256, "smartbox-pro-sinaps-256"),
    (BackboneMode::SmartboxProSinaps1024, "smartbox-pro-sinaps-1024"),
    (BackboneMode::XdaqOneRec, "xdaq-one-rec"),
    (BackboneMode::XdaqOneStim, "xdaq-one-stim"),
    (BackboneMode::XdaqCoreRec, "xdaq-core-rec"),
    (BackboneMode::XdaqCoreStim, "xdaq-core-stim"),
    (BackboneMode::SmartboxProSinaps512, "smartbox-pro-sinaps-512"),
    (BackboneMode::XdaqGen2OneStim, "xdaq-gen2-one-stim"),
    (BackboneMode::XdaqGen2CoreStim, "xdaq-gen2-core-stim"),
    (BackboneMode::XdaqGen2OneRec, "xdaq-gen2-one-rec"),
    (BackboneMode::XdaqGen2CoreRec, "xdaq-gen2-core-rec"),
    (BackboneMode::SmartboxSimGenLfp, "sim-lfp"),
    (BackboneMode::SmartboxSimGenBroadband, "sim-broadband"),
];

/// Every `BackboneMode` with its `device.backbone` name, for those that list or translate
/// names elsewhere (the command line) without a second copy of the table.
pub fn names() -> &'static [(BackboneMode, &'static str)] {
    &NAMES
}

/// The `BackboneMode` a device's backbone name stands for.
pub fn mode_of(backbone: &str) -> Option<BackboneMode> {
    names().iter().find(|(_, name)| *name == backbone).map(|(mode, _)| *mode)
}

/// The `device.backbone` name of a `BackboneMode`.
pub fn name_of(mode: BackboneMode) -> Option<&'static str> {
    names().iter().find(|(m, _)| *m == mode).map(|(_, name)| *name)
}

/// Every name, comma-separated, as messages list what is allowed.
pub fn name_list() -> String {
    names().iter().map(|(_, name)| *name).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mode_has_one_name_and_each_name_maps_back() {
        for value in 0..32 {
            let Ok(mode) = BackboneMode::try_from(value) else {
                continue;
            };
            let names: Vec<_> = NAMES.iter().filter(|(m, _)| *m == mode).map(|(_, n)| *n).collect();
            assert_eq!(names.len(), 1, "{mode:?} has names {names:?}");
            assert_eq!(mode_of(names[0]), Some(mode));
        }
        assert_eq!(name_of(BackboneMode::SmartboxSimGenSpikes), Some("sim-spikes"));
        assert_eq!(name_of(BackboneMode::XdaqOneRec), Some("xdaq-one-rec"));
        assert!(name_list().contains("sim-sine, sim-spikes"), "{}", name_list());
        for name in ephysd_drivers::spec::backbone_names() {
            assert!(mode_of(name).is_some(), "{name} has no BackboneMode");
        }
    }
}
