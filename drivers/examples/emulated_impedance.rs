//! Prints the true impedance of every electrode of an emulated board at a frequency, one line
//! per channel (`channel magnitude_ohms phase_degrees`), so a measurement made through the
//! daemon can be checked from another language: `emulated_impedance "<emulator spec>" <hz>`.

use ephysd_drivers::emulator::chip::electrode_impedances;
use ephysd_drivers::emulator::EmulatorSpec;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 3 {
        eprintln!("usage: emulated_impedance \"<emulator spec>\" <frequency hz>");
        std::process::exit(2);
    }
    let spec: EmulatorSpec = args[1].parse().unwrap_or_else(|e| panic!("{e}"));
    let hz: f64 = args[2].parse().expect("frequency");
    for (channel, z) in electrode_impedances(&spec, hz).iter().enumerate() {
        println!("{channel} {} {}", z.magnitude_ohms(), z.phase_degrees());
    }
}
