//! Compiles the Allego contract (`allego/*.proto`) without a system `protoc`.
//!
//! protox parses the files into a `FileDescriptorSet`; that set is both
//! embedded verbatim (`OUT_DIR/allego_descriptor.bin`, for reflection and the
//! conformance test) and handed to tonic-prost-build for message, client and
//! server code generation.

use std::path::{Path, PathBuf};

use prost::Message;

/// Directory holding the generated `.proto` files (see `tools/descriptors_to_proto.py`).
const PROTO_DIR: &str = "allego";
/// Package whose Rust code we generate; imports such as `google/protobuf/*`
/// are only embedded in the descriptor set, prost-types already covers them.
const PACKAGE: &str = "allego";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let proto_dir = manifest_dir.join(PROTO_DIR);
    println!("cargo:rerun-if-changed={}", proto_dir.display());

    let protos = proto_files(&proto_dir)?;
    for proto in &protos {
        println!("cargo:rerun-if-changed={}", proto.display());
    }

    let fds = compile(&protos, &proto_dir)?;
    std::fs::write(out_dir.join("allego_descriptor.bin"), fds.encode_to_vec())?;
    generate(fds)?;
    Ok(())
}

/// All `.proto` files in `dir`, sorted so the build is deterministic.
fn proto_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(dir)?.map(|entry| entry.map(|e| e.path())).collect::<Result<_, _>>()?;
    files.retain(|p| p.extension().is_some_and(|ext| ext == "proto"));
    files.sort();
    Ok(files)
}

/// Parses the files with protox. Imports (the well-known types) are included
/// so the embedded set is self-contained; source info is dropped because the
/// generated files carry no per-element comments worth its size.
fn compile(protos: &[PathBuf], include: &Path) -> Result<prost_types::FileDescriptorSet, protox::Error> {
    let mut compiler = protox::Compiler::new([include])?;
    compiler.include_imports(true).include_source_info(false);
    compiler.open_files(protos)?;
    Ok(compiler.file_descriptor_set())
}

/// Generates messages plus tonic client and server code for the `allego` files.
///
/// Default stubs are on so a server implementation only writes the methods it
/// supports; every other method answers `UNIMPLEMENTED`.
fn generate(fds: prost_types::FileDescriptorSet) -> std::io::Result<()> {
    let own_files =
        prost_types::FileDescriptorSet { file: fds.file.into_iter().filter(|f| f.package() == PACKAGE).collect() };
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .generate_default_stubs(true)
        // Signal matrices are the one large field: as `Bytes`, a reply can hand the server a
        // buffer it takes back once sent, instead of a fresh allocation per reply.
        .bytes(".allego.RadixMatrixBytes.data")
        .compile_fds(own_files)
}
