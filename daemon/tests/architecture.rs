//! The dependency arrows of docs/ARCHITECTURE.md, checked on the real dependency trees:
//! daemon → pipeline → drivers; daemon → hdf5-writer, proto. The compiler keeps a crate's code
//! free of what is not in its tree; this keeps each tree free of what must never be in it,
//! even through another crate.

use std::process::Command;

/// Crates (by name prefix) each workspace crate must never depend on, directly or not.
const NEVER: [(&str, &[&str]); 4] = [
    // The real-time path: no async runtime, gRPC, protobuf or file format, and nothing above it.
    ("ephysd-pipeline", &["tokio", "tonic", "prost", "h2", "hdf5", "ephysd-hdf5", "ephysd-proto", "ephysd "]),
    // Devices: nothing of the daemon, the pipeline or the file format.
    ("ephysd-drivers", &["tokio", "tonic", "prost", "h2", "hdf5", "ephysd-pipeline", "ephysd-hdf5", "ephysd-proto"]),
    // The file format: no devices, no pipeline, no network.
    ("ephysd-hdf5", &["tokio", "tonic", "prost", "h2", "ephysd-drivers", "ephysd-pipeline", "ephysd-proto"]),
    // The wire contract: no devices, no pipeline, no file format.
    ("ephysd-proto", &["hdf5", "ephysd-drivers", "ephysd-pipeline", "ephysd-hdf5"]),
];

/// Every crate (name and version) in `krate`'s normal dependency tree.
fn tree(krate: &str) -> Vec<String> {
    let out = Command::new(env!("CARGO"))
        .args(["tree", "-p", krate, "-e", "normal", "--prefix", "none", "--format", "{p}"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(out.status.success(), "cargo tree -p {krate} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(|l| l.to_string()).collect()
}

#[test]
fn no_crate_depends_on_what_it_must_never_know() {
    for (krate, never) in NEVER {
        let crates = tree(krate);
        assert!(crates.iter().any(|c| c.starts_with(&format!("{krate} "))), "unexpected tree for {krate}: {crates:?}");
        for c in crates.iter().skip(1) {
            for forbidden in never {
                assert!(!c.starts_with(forbidden), "{krate} depends on {c}; see docs/ARCHITECTURE.md");
            }
        }
    }
}

#[test]
fn the_pipeline_sits_on_the_drivers_and_the_daemon_on_everything() {
    assert!(tree("ephysd-pipeline").iter().any(|c| c.starts_with("ephysd-drivers ")));
    let daemon = tree("ephysd");
    for krate in ["ephysd-pipeline", "ephysd-drivers", "ephysd-hdf5", "ephysd-proto"] {
        assert!(daemon.iter().any(|c| c.starts_with(&format!("{krate} "))), "ephysd does not use {krate}");
    }
}
