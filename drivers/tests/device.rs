//! The device layer end to end: open a spec, stream, and see every control action in the
//! frames the stream delivers.

use ephysd_drivers::sim::{SimConfig, SimMode, ARTIFACT_UV_PER_UA, MEDIAN_IMPEDANCE_OHMS};
use ephysd_drivers::{
    open, ControlError, DeviceKeys, DeviceSpec, FrameBlock, Source, StimPhase, StimPulse, AMPLIFIER_UV_PER_UNIT,
};

fn spec(mode: SimMode, channels: usize) -> DeviceSpec {
    DeviceSpec::Simulated(SimConfig {
        mode,
        amplifier_channels: channels,
        accelerated: true,
        seed: 5,
        ..SimConfig::default()
    })
}

fn next_block(source: &mut dyn Source) -> FrameBlock {
    let mut block = FrameBlock::new(source.layout());
    source.read_block(&mut block).unwrap();
    block
}

#[test]
fn open_builds_what_the_keys_name_and_describes_it() {
    let keys = DeviceKeys {
        backbone: "sim-sine".into(),
        channels: 200,
        sample_rate_hz: 20000.0,
        seed: 3,
        accelerated: false,
        frames_per_block: 64,
        ..DeviceKeys::default()
    };
    let device = open(&DeviceSpec::from_keys(&keys).unwrap()).unwrap();
    let d = device.description();
    assert_eq!(d.backbone, "sim-sine");
    assert_eq!((d.amplifier_channels(), d.sample_rate_hz, d.layout.frames_per_block), (200, 20000.0, 64));
    assert_eq!(d.ports.iter().map(|p| p.channels).sum::<usize>(), 200);
    assert!(!d.free_running, "a paced simulation runs at its own rate");
    assert_eq!(device.spec().backbone(), "sim-sine");
}

#[test]
fn each_stream_starts_at_frame_zero_with_the_described_layout() {
    let mut device = open(&spec(SimMode::Spikes, 16)).unwrap();
    for _ in 0..2 {
        let mut source = device.start_stream().unwrap();
        assert_eq!(source.layout(), device.description().layout);
        let block = next_block(source.as_mut());
        assert_eq!(block.frame_index[0], 0);
        assert_eq!(block.frames, 128);
    }
}

#[test]
fn digital_out_shows_in_the_stream_from_the_next_block() {
    let mut device = open(&spec(SimMode::Sine, 4)).unwrap();
    let mut source = device.start_stream().unwrap();
    assert!(next_block(source.as_mut()).digital_out.iter().all(|&w| w == 0));
    device.control().set_digital_out(0b1010_0001).unwrap();
    assert!(next_block(source.as_mut()).digital_out.iter().all(|&w| w == 0b1010_0001));
    device.control().set_digital_out(0).unwrap();
    assert!(next_block(source.as_mut()).digital_out.iter().all(|&w| w == 0));
}

#[test]
fn analog_outputs_loop_back_to_the_analog_inputs() {
    let mut device = open(&spec(SimMode::Sine, 4)).unwrap();
    let mut source = device.start_stream().unwrap();
    let adc = device.description().layout.analog_in_channels;
    device.control().set_analog_out(2, 1.024).unwrap();
    let block = next_block(source.as_mut());
    for frame in block.analog_in.chunks_exact(adc) {
        // +1.024 V on ±10.24 V full scale over 16 bits: mid-scale + 3277 codes.
        assert_eq!(frame[2], 32768 + 3277);
        assert_eq!(frame[3], 32768, "undriven inputs keep their own signal");
    }
    let e = device.control().set_analog_out(8, 0.0).unwrap_err();
    assert!(e.to_string().contains("analog_out = 8") && e.to_string().contains("0..=7"), "{e}");
    let e = device.control().set_analog_out(0, 11.0).unwrap_err();
    assert!(matches!(e, ControlError::OutOfRange { field: "volts", .. }), "{e}");
    let e = device.control().set_analog_out(0, f64::NAN).unwrap_err();
    assert!(e.to_string().contains("finite"), "{e}");
}

#[test]
fn a_stimulation_pulse_leaves_its_artifact_at_the_start_of_the_next_block() {
    let mut device = open(&spec(SimMode::Sine, 8)).unwrap();
    // The same stream without the pulse, for the difference.
    let mut quiet = open(&spec(SimMode::Sine, 8)).unwrap().start_stream().unwrap();
    let mut source = device.start_stream().unwrap();
    let (a, b) = (next_block(source.as_mut()), next_block(quiet.as_mut()));
    assert_eq!(a.amplifier, b.amplifier);
    // 200 µs at -10 µA, then 200 µs at +10 µA: 6 frames each at 30 kHz.
    let pulse = StimPulse::new(
        5,
        &[StimPhase { duration_us: 200, current_ua: -10.0 }, StimPhase { duration_us: 200, current_ua: 10.0 }],
    )
    .unwrap();
    device.control().stimulate(&pulse).unwrap();
    let (a, b) = (next_block(source.as_mut()), next_block(quiet.as_mut()));
    let step = (10.0 * ARTIFACT_UV_PER_UA / AMPLIFIER_UV_PER_UNIT).round() as i32;
    for frame in 0..a.frames {
        for channel in 0..8 {
            let diff = a.amplifier_frame(frame)[channel] as i32 - b.amplifier_frame(frame)[channel] as i32;
            let expected = match (channel, frame) {
                (5, 0..6) => -step,
                (5, 6..12) => step,
                _ => 0,
            };
            assert!((diff - expected).abs() <= 1, "frame {frame} channel {channel}: {diff} vs {expected}");
        }
    }
}

#[test]
fn stimulation_is_refused_with_a_reason() {
    let mut device = open(&spec(SimMode::Sine, 8)).unwrap();
    let pulse = StimPulse::new(1, &[StimPhase { duration_us: 100, current_ua: -5.0 }]).unwrap();
    let e = device.control().stimulate(&pulse).unwrap_err();
    assert!(matches!(e, ControlError::NotStreaming { .. }), "{e}");
    let _source = device.start_stream().unwrap();
    let far = StimPulse::new(8, &[StimPhase { duration_us: 100, current_ua: -5.0 }]).unwrap();
    let e = device.control().stimulate(&far).unwrap_err();
    assert!(e.to_string().contains("channel = 8") && e.to_string().contains("0..=7"), "{e}");
    let mut queued = 0;
    let full = loop {
        match device.control().stimulate(&pulse) {
            Ok(()) => queued += 1,
            Err(e) => break e,
        }
    };
    assert_eq!(queued, ephysd_drivers::sim::STIM_QUEUE_CAPACITY);
    assert!(matches!(full, ControlError::QueueFull { .. }), "{full}");
}

#[test]
fn digital_out_refuses_lines_the_device_lacks() {
    let spec = DeviceSpec::Simulated(SimConfig { digital_out_channels: 4, accelerated: true, ..SimConfig::default() });
    let mut device = open(&spec).unwrap();
    device.control().set_digital_out(0b1111).unwrap();
    let e = device.control().set_digital_out(0b1_0000).unwrap_err();
    assert!(e.to_string().contains("digital_out") && e.to_string().contains("lines 0..4"), "{e}");
}

#[test]
fn impedance_is_a_stable_plausible_electrode_per_channel() {
    let mut device = open(&spec(SimMode::Spikes, 64)).unwrap();
    let first = device.control().measure_impedance().unwrap();
    let again = device.control().measure_impedance().unwrap();
    assert_eq!(first, again);
    assert_eq!(first.len(), 64);
    assert!(first.iter().enumerate().all(|(i, z)| z.channel == i));
    let mut magnitudes: Vec<f64> = first.iter().map(|z| z.magnitude_ohms).collect();
    magnitudes.sort_by(f64::total_cmp);
    let median = magnitudes[32];
    assert!((0.7..1.4).contains(&(median / MEDIAN_IMPEDANCE_OHMS)), "median {median}");
    assert!(first.iter().all(|z| (-95.0..-55.0).contains(&z.phase_degrees)));
    let other = open(&DeviceSpec::Simulated(SimConfig { seed: 6, amplifier_channels: 64, ..SimConfig::default() }))
        .unwrap()
        .control()
        .measure_impedance()
        .unwrap();
    assert_ne!(first, other, "another seed is another probe");
}

#[test]
fn the_simulated_device_knows_the_spikes_its_stream_embeds() {
    let mut device = open(&spec(SimMode::Spikes, 32)).unwrap();
    assert!(device.ground_truth().is_none(), "no stream, no truth");
    let mut source = device.start_stream().unwrap();
    let truth = device.ground_truth().expect("a simulated stream knows its spikes");
    let spikes = truth.spikes(0..60_000);
    assert!(spikes.len() > 20, "{} spikes in two seconds of 32 channels", spikes.len());
    assert!(spikes.windows(2).all(|w| w[0].frame <= w[1].frame));
    // Each is in the stream: at its frame its peak channel dips well below the noise.
    let mut frames = Vec::new();
    while frames.len() < 60_000 * 32 {
        frames.extend_from_slice(next_block(source.as_mut()).amplifier_filled());
    }
    let strong: Vec<_> = spikes.iter().filter(|s| s.amplitude_uv > 60.0).collect();
    assert!(!strong.is_empty());
    for s in strong {
        let uv = frames[s.frame as usize * 32 + s.channel] as f64 * AMPLIFIER_UV_PER_UNIT;
        assert!(uv < -25.0, "spike of unit {} at frame {}: {uv} µV on channel {}", s.unit, s.frame, s.channel);
    }
}
