//! The sample rates the boards of the Rhythm family (and Sinaps) can run at.

/// The per-channel sample rates an Intan RHD/RHS controller can be set to (from the chip's
/// ADC clock dividers). The simulator accepts only these, so a configuration that works on
/// the simulator also works on a real board. 3333.33… Hz is exactly 10000/3.
pub const INTAN_SAMPLE_RATES: [f64; 17] = [
    1000.0,
    1250.0,
    1500.0,
    2000.0,
    2500.0,
    3000.0,
    10000.0 / 3.0,
    4000.0,
    5000.0,
    6250.0,
    8000.0,
    10000.0,
    12500.0,
    15000.0,
    20000.0,
    25000.0,
    30000.0,
];

/// How close a requested rate must be to an Intan rate to mean it (so "3333.33" in a
/// configuration file selects 10000/3).
const RATE_TOLERANCE_HZ: f64 = 0.01;

/// Returns the exact Intan rate that `hz` names, if any.
pub fn canonical_sample_rate(hz: f64) -> Option<f64> {
    INTAN_SAMPLE_RATES.iter().copied().find(|r| (r - hz).abs() < RATE_TOLERANCE_HZ)
}

/// Formats a rate without float noise (for names and messages): integers as integers, 10000/3 as "3333.33".
pub fn format_rate(hz: f64) -> String {
    if (hz - hz.round()).abs() < 1e-9 {
        format!("{}", hz.round() as u64)
    } else {
        format!("{:.2}", hz)
    }
}

/// Every Intan rate, comma-separated, as error messages list them.
pub fn rate_list() -> String {
    INTAN_SAMPLE_RATES.iter().map(|&r| format_rate(r)).collect::<Vec<_>>().join(", ")
}
