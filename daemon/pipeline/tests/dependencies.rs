//! The real-time crate never depends on an async runtime, gRPC, protobuf or a file format,
//! not even through another crate. The compiler keeps them out of its code only as long as
//! they are out of its dependency tree; this keeps them out of the tree.

use std::process::Command;

/// Crates (by name prefix) that must never be in the real-time path.
const FORBIDDEN: [&str; 5] = ["tokio", "tonic", "prost", "hdf5", "h2"];

#[test]
fn the_pipeline_depends_on_no_async_runtime_grpc_protobuf_or_file_format() {
    let out = Command::new(env!("CARGO"))
        .args(["tree", "-p", "ephysd-pipeline", "-e", "normal", "--prefix", "none", "--format", "{p}"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(out.status.success(), "cargo tree failed: {}", String::from_utf8_lossy(&out.stderr));
    let tree = String::from_utf8_lossy(&out.stdout);
    let crates: Vec<&str> = tree.lines().filter_map(|l| l.split_whitespace().next()).collect();
    assert!(crates.contains(&"ephysd-pipeline") && crates.contains(&"ephysd-drivers"), "unexpected tree:\n{tree}");
    for name in &crates {
        for forbidden in FORBIDDEN {
            assert!(!name.starts_with(forbidden), "ephysd-pipeline depends on {name}:\n{tree}");
        }
    }
}
