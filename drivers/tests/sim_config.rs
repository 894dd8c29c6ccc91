//! Configuration of the simulated source: defaults, names, and validation messages that name the
//! field, the offending value and what is allowed.

use std::str::FromStr;

use ephysd_drivers::sim::{SimConfig, SimConfigError, SimMode, SimulatedDevice, SimulatedSource};
use ephysd_drivers::INTAN_SAMPLE_RATES;
use ephysd_drivers::{BlockLayout, FrameBlock, LayoutError, Source, SourceError};
use proptest::prelude::*;

fn small(mode: SimMode) -> SimConfig {
    SimConfig { mode, amplifier_channels: 4, accelerated: true, ..SimConfig::default() }
}

#[test]
fn defaults_describe_a_64_channel_headstage_at_30_khz() {
    let c = SimConfig::default();
    assert_eq!(c.mode, SimMode::Spikes);
    assert_eq!(c.amplifier_channels, 64);
    assert_eq!(c.sample_rate_hz, 30000.0);
    assert_eq!(c.frames_per_block, 128);
    assert_eq!((c.analog_in_channels, c.aux_channels), (8, 3));
    assert_eq!((c.digital_in_channels, c.digital_out_channels), (16, 16));
    assert!(!c.accelerated);
    assert!(c.validate().is_ok());
    assert_eq!(
        c.layout(),
        BlockLayout { amplifier_channels: 64, aux_channels: 3, analog_in_channels: 8, frames_per_block: 128 }
    );
}

#[test]
fn mode_names_round_trip() {
    let names = ["sim-spikes", "sim-sine", "sim-lfp", "sim-broadband"];
    for (mode, name) in SimMode::ALL.into_iter().zip(names) {
        assert_eq!(mode.to_string(), name);
        assert_eq!(SimMode::from_str(name).unwrap(), mode);
        assert_eq!(name.parse::<SimMode>().unwrap(), mode);
    }
    assert_eq!(SimMode::default(), SimMode::Spikes);
}

#[test]
fn unknown_mode_lists_the_allowed_names() {
    let e = SimMode::from_str("sim-noise").unwrap_err();
    assert_eq!(e, SimConfigError::Mode("sim-noise".into()));
    let msg = e.to_string();
    for needle in ["sim-noise", "sim-spikes", "sim-sine", "sim-lfp", "sim-broadband"] {
        assert!(msg.contains(needle), "{msg}");
    }
}

#[test]
fn channel_count_is_checked() {
    for bad in [0, 1025, 5000] {
        let c = SimConfig { amplifier_channels: bad, ..SimConfig::default() };
        let e = c.validate().unwrap_err();
        assert_eq!(e, SimConfigError::Layout(LayoutError::AmplifierChannels(bad)));
        let msg = e.to_string();
        assert!(
            msg.contains("amplifier_channels") && msg.contains(&bad.to_string()) && msg.contains("1..=1024"),
            "{msg}"
        );
    }
    for good in [1, 64, 1024] {
        assert!(SimConfig { amplifier_channels: good, ..SimConfig::default() }.validate().is_ok());
    }
}

#[test]
fn sample_rate_must_be_an_intan_rate() {
    let e = SimConfig { sample_rate_hz: 31000.0, ..SimConfig::default() }.validate().unwrap_err();
    assert_eq!(e, SimConfigError::SampleRate(31000.0));
    let msg = e.to_string();
    for needle in ["sample_rate_hz", "31000", "1000, 1250", "3333.33", "30000"] {
        assert!(msg.contains(needle), "{needle:?} missing from {msg}");
    }
    assert_eq!(INTAN_SAMPLE_RATES.len(), 17);
    for r in INTAN_SAMPLE_RATES {
        assert!(SimConfig { sample_rate_hz: r, ..SimConfig::default() }.validate().is_ok(), "{r}");
    }
}

#[test]
fn rate_written_as_3333_33_selects_ten_thousand_thirds() {
    let source = SimulatedSource::new(SimConfig { sample_rate_hz: 3333.33, ..small(SimMode::Spikes) }).unwrap();
    assert_eq!(source.config().sample_rate_hz, 10000.0 / 3.0);
    let device = SimulatedDevice::new(SimConfig { sample_rate_hz: 3333.33, ..small(SimMode::Spikes) }).unwrap();
    let name = device.description().name;
    assert!(name.contains("3333.33 Hz"), "{name}");
    assert_eq!(device.description().sample_rate_hz, 10000.0 / 3.0);
}

#[test]
fn other_dimensions_are_checked() {
    let base = SimConfig::default();
    let cases: Vec<(SimConfig, SimConfigError, &str, &str)> = vec![
        (
            SimConfig { frames_per_block: 0, ..base.clone() },
            SimConfigError::Layout(LayoutError::FramesPerBlock(0)),
            "frames_per_block",
            "1..=65536",
        ),
        (
            SimConfig { frames_per_block: 70000, ..base.clone() },
            SimConfigError::Layout(LayoutError::FramesPerBlock(70000)),
            "frames_per_block",
            "1..=65536",
        ),
        (
            SimConfig { analog_in_channels: 17, ..base.clone() },
            SimConfigError::Layout(LayoutError::AnalogInChannels(17)),
            "analog_in_channels",
            "0..=16",
        ),
        (
            SimConfig { aux_channels: 97, ..base.clone() },
            SimConfigError::Layout(LayoutError::AuxChannels(97)),
            "aux_channels",
            "0..=96",
        ),
        (
            SimConfig { digital_in_channels: 17, ..base.clone() },
            SimConfigError::DigitalInChannels(17),
            "digital_in_channels",
            "0..=16",
        ),
        (
            SimConfig { digital_out_channels: 32, ..base.clone() },
            SimConfigError::DigitalOutChannels(32),
            "digital_out_channels",
            "0..=16",
        ),
    ];
    for (config, expected, field, allowed) in cases {
        let e = config.validate().unwrap_err();
        assert_eq!(e, expected);
        let msg = e.to_string();
        assert!(msg.contains(field) && msg.contains(allowed), "{msg}");
        // The source refuses the same configuration with the same error.
        assert_eq!(SimulatedSource::new(config).unwrap_err(), expected);
    }
}

#[test]
fn the_description_says_what_the_device_is_and_can_do() {
    let d = SimulatedDevice::new(SimConfig { accelerated: true, ..SimConfig::default() }).unwrap().description();
    assert_eq!(d.name, "simulated device (sim-spikes, 64 ch @ 30000 Hz)");
    assert_eq!(d.backbone, "sim-spikes");
    assert_eq!(d.sample_rate_hz, 30000.0);
    assert_eq!(d.sample_rates_hz, &INTAN_SAMPLE_RATES);
    assert_eq!(d.layout, SimConfig::default().layout());
    assert_eq!((d.digital_in_channels, d.digital_out_channels, d.analog_out_channels), (16, 16, 8));
    assert!(d.can_stimulate && d.can_measure_impedance && d.free_running);
    assert_eq!(d.ports.len(), 1);
    assert_eq!((d.ports[0].letter(), d.ports[0].first_channel, d.ports[0].channels), ('A', 0, 64));

    let d = SimulatedDevice::new(SimConfig {
        amplifier_channels: 300,
        sample_rate_hz: 1000.0,
        ..small(SimMode::Broadband)
    })
    .unwrap()
    .description();
    assert_eq!(d.name, "simulated device (sim-broadband, 300 ch @ 1000 Hz)");
    let ports: Vec<_> = d.ports.iter().map(|p| (p.letter(), p.first_channel, p.channels)).collect();
    assert_eq!(ports, [('A', 0, 128), ('B', 128, 128), ('C', 256, 44)]);
}

#[test]
fn a_block_of_another_shape_is_refused() {
    let mut source = SimulatedSource::new(small(SimMode::Sine)).unwrap();
    let mut wrong = FrameBlock::new(BlockLayout { amplifier_channels: 5, ..source.layout() });
    assert!(matches!(source.read_block(&mut wrong), Err(SourceError::LayoutMismatch { .. })));
    assert_eq!(source.frames_produced(), 0);
}

#[test]
fn every_mode_and_an_odd_shape_stream() {
    for mode in SimMode::ALL {
        let config = SimConfig {
            amplifier_channels: 3,
            frames_per_block: 17,
            analog_in_channels: 0,
            aux_channels: 0,
            digital_in_channels: 0,
            digital_out_channels: 0,
            sample_rate_hz: 1250.0,
            ..small(mode)
        };
        let mut source = SimulatedSource::new(config).unwrap();
        let mut block = FrameBlock::new(source.layout());
        for _ in 0..100 {
            source.read_block(&mut block).unwrap();
            assert_eq!(block.frames, 17);
            assert!(block.digital_in.iter().all(|&w| w == 0), "no digital lines configured");
        }
        assert_eq!(source.frames_produced(), 1700);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn validation_accepts_exactly_the_documented_ranges(
        ch in 0usize..1100, fpb in 0usize..70000, adc in 0usize..20, aux in 0usize..100,
        din in 0usize..20, dout in 0usize..20, rate_i in 0usize..18,
    ) {
        let rate = INTAN_SAMPLE_RATES.get(rate_i).copied().unwrap_or(44100.0);
        let c = SimConfig {
            amplifier_channels: ch, frames_per_block: fpb, analog_in_channels: adc, aux_channels: aux,
            digital_in_channels: din, digital_out_channels: dout, sample_rate_hz: rate, ..SimConfig::default()
        };
        let ok = (1..=1024).contains(&ch) && (1..=65536).contains(&fpb) && adc <= 16 && aux <= 96
            && din <= 16 && dout <= 16 && rate_i < 17;
        prop_assert_eq!(c.validate().is_ok(), ok);
        if ok {
            // A valid simulator configuration is always a valid block layout.
            prop_assert!(c.layout().validate().is_ok());
        }
    }
}
