//! The filter module as a command-line tool, so that its designs and its output can be compared
//! with scipy.signal (tests/interop/test_dsp_scipy.py does).
//!
//! ```text
//! dsp_reference design  <kind> <family> <order> <f1> [f2] <fs> [ripple]
//! dsp_reference filter  <kind> <family> <order> <f1> [f2] <fs> [ripple]  < f64 in > f64 out
//! dsp_reference sosfilt <kind> <family> <order> <f1> [f2] <fs> [ripple]  < f64 in > f64 out
//! ```
//!
//! - `kind`: `lowpass`, `highpass` (f1 = cutoff), `bandpass`, `bandstop` (f1, f2 = edges) or
//!   `notch` (f1 = centre, f2 = bandwidth; family and order are ignored but still given).
//! - `family`: `butter`, or `cheby1` followed at the end by the passband ripple in dB.
//! - `design` prints one section per line: `b0 b1 b2 a0 a1 a2`, full precision.
//! - `filter` reads little-endian f64 samples from stdin and writes the filtered samples as
//!   little-endian f64 to stdout, through the real-time path: one channel, in f32, through
//!   [`FilterStage`] in a [`StageChain`], in blocks of [`BLOCK`] frames.
//! - `sosfilt` does the same with the f64 reference filter ([`sosfilt`]), from zero state.
//!
//! Errors go to stderr with exit code 2.

use std::io::{Read, Write};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use ephysd_drivers::{BlockLayout, FrameBlock};
use ephysd_pipeline::dsp::{design, sosfilt, FilterFamily, FilterKind, FilterPlan, FilterSpec, FilterStage};
use ephysd_pipeline::{Stage, StageBlock, StageChain};

/// Frames per block in `filter` mode: not a power of two, so that blocks straddle the
/// channel tiles and the input length in uneven ways.
const BLOCK: usize = 100;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dsp_reference: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &[String]) -> Result<(), String> {
    let (mode, spec) = args.split_first().ok_or("usage: dsp_reference design|filter|sosfilt <spec>")?;
    let (spec, fs) = parse_spec(spec)?;
    let sos = design(&spec, fs).map_err(|e| e.to_string())?;
    match mode.as_str() {
        "design" => {
            for s in sos.sections() {
                let row: Vec<String> = s.iter().map(|c| format!("{c:.17e}")).collect();
                println!("{}", row.join(" "));
            }
        }
        "sosfilt" => {
            let mut x = read_samples()?;
            sosfilt(&sos, &mut x);
            write_samples(&x)?;
        }
        "filter" => {
            let x = read_samples()?;
            let mut plan = FilterPlan::new(1);
            plan.filter(&[0], &sos).map_err(|e| e.to_string())?;
            write_samples(&run_stage(plan, &x))?;
        }
        other => return Err(format!("unknown mode {other:?}: design, filter or sosfilt")),
    }
    Ok(())
}

/// `<kind> <family> <order> <f1> [f2] <fs> [ripple]`.
fn parse_spec(args: &[String]) -> Result<(FilterSpec, f64), String> {
    let mut it = args.iter();
    let mut next = |what: &str| it.next().ok_or(format!("missing {what}"));
    let number = |s: &String| s.parse::<f64>().map_err(|e| format!("{s:?}: {e}"));
    let kind = next("kind")?.clone();
    let family = next("family")?.clone();
    let order = next("order")?.parse::<u32>().map_err(|e| format!("order: {e}"))?;
    let f1 = number(next("f1")?)?;
    let kind = match kind.as_str() {
        "lowpass" => FilterKind::Lowpass { cutoff_hz: f1 },
        "highpass" => FilterKind::Highpass { cutoff_hz: f1 },
        "bandpass" => FilterKind::Bandpass { low_hz: f1, high_hz: number(next("f2")?)? },
        "bandstop" => FilterKind::Bandstop { low_hz: f1, high_hz: number(next("f2")?)? },
        "notch" => FilterKind::Notch { centre_hz: f1, bandwidth_hz: number(next("bandwidth")?)? },
        other => return Err(format!("unknown kind {other:?}")),
    };
    let fs = number(next("fs")?)?;
    let family = match family.as_str() {
        "butter" => FilterFamily::Butterworth,
        "cheby1" => FilterFamily::ChebyshevI { ripple_db: number(next("ripple")?)? },
        other => return Err(format!("unknown family {other:?}")),
    };
    if let Some(extra) = it.next() {
        return Err(format!("unexpected argument {extra:?}"));
    }
    Ok((FilterSpec { kind, family, order }, fs))
}

/// Runs `x` through a filter stage in a stage chain, as on the acquisition thread: a first
/// stage replaces the chain's signal (converted from 16-bit device samples) with `x` in f32.
fn run_stage(plan: FilterPlan, x: &[f64]) -> Vec<f64> {
    let layout = BlockLayout { amplifier_channels: 1, aux_channels: 0, analog_in_channels: 0, frames_per_block: BLOCK };
    let input: Vec<f32> = x.iter().map(|&v| v as f32).collect();
    let output = Arc::new(Mutex::new(Vec::with_capacity(x.len())));
    let (filter, _control) = FilterStage::new("filter", plan);
    let stages: Vec<Box<dyn Stage>> =
        vec![Box::new(Feed { input, at: 0 }), Box::new(filter), Box::new(Collect(Arc::clone(&output)))];
    let mut chain = StageChain::new(layout, stages);
    let mut raw = FrameBlock::new(layout);
    for start in (0..x.len()).step_by(BLOCK) {
        raw.frames = BLOCK.min(x.len() - start);
        chain.run(&raw);
    }
    let out = output.lock().unwrap().iter().map(|&v| f64::from(v)).collect();
    out
}

/// Replaces each block's signal with the next samples of `input`.
struct Feed {
    input: Vec<f32>,
    at: usize,
}

impl Stage for Feed {
    fn name(&self) -> &str {
        "feed"
    }
    fn process(&mut self, block: &mut StageBlock<'_>) {
        let samples = block.signal.samples_mut();
        samples.copy_from_slice(&self.input[self.at..self.at + samples.len()]);
        self.at += samples.len();
    }
}

/// Appends each block's signal to a shared vector.
struct Collect(Arc<Mutex<Vec<f32>>>);

impl Stage for Collect {
    fn name(&self) -> &str {
        "collect"
    }
    fn process(&mut self, block: &mut StageBlock<'_>) {
        self.0.lock().unwrap().extend_from_slice(block.signal.samples());
    }
}

fn read_samples() -> Result<Vec<f64>, String> {
    let mut bytes = Vec::new();
    std::io::stdin().read_to_end(&mut bytes).map_err(|e| format!("reading stdin: {e}"))?;
    if bytes.len() % 8 != 0 {
        return Err(format!("stdin holds {} bytes, not a whole number of f64", bytes.len()));
    }
    Ok(bytes.chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().unwrap())).collect())
}

fn write_samples(x: &[f64]) -> Result<(), String> {
    let bytes: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::io::stdout().write_all(&bytes).map_err(|e| format!("writing stdout: {e}"))
}
