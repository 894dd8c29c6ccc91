//! Opens an emulated board through the device layer, measures its electrodes' impedance,
//! streams it for a few seconds and says how long each step took:
//! `cargo run --release -p ephysd-drivers --example emulated_board -- "ports=A:2164+2164 pace=realtime" 3`.

use std::time::Instant;

use ephysd_drivers::{open, DeviceKeys, DeviceSpec, FrameBlock};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let emulator = args.get(1).cloned().unwrap_or_default();
    let seconds: f64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(2.0);
    let keys = DeviceKeys {
        backbone: "intan-recording-controller-1024".into(),
        frontpanel: "emulated".into(),
        emulator,
        ..DeviceKeys::default()
    };
    let spec = DeviceSpec::from_keys(&keys).unwrap_or_else(|e| panic!("{e}"));
    let t = Instant::now();
    let mut device = open(&spec).unwrap_or_else(|e| panic!("{e}"));
    println!("open + bring-up: {:?}, {} channels", t.elapsed(), device.description().amplifier_channels());
    let t = Instant::now();
    let measured = device.control().measure_impedance().unwrap_or_else(|e| panic!("{e}"));
    println!("impedance of {} electrodes: {:?}", measured.len(), t.elapsed());
    let t = Instant::now();
    let mut source = device.start_stream().unwrap_or_else(|e| panic!("{e}"));
    println!("start stream: {:?}", t.elapsed());
    let mut block = FrameBlock::new(source.layout());
    let t = Instant::now();
    let mut frames = 0u64;
    while t.elapsed().as_secs_f64() < seconds {
        source.read_block(&mut block).unwrap_or_else(|e| panic!("{e}"));
        frames += block.frames as u64;
    }
    let secs = t.elapsed().as_secs_f64();
    println!("{frames} frames in {secs:.2} s: {:.2}x real time", frames as f64 / secs / 30000.0);
}
