//! Writes the embedded Allego `FileDescriptorSet` (binary protobuf) to stdout.
//!
//! The interop conformance test (`tests/interop/test_proto_conformance.py`)
//! reads it to compare our contract with radiens-core's descriptors.

use std::io::Write;

fn main() -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(ephysd_proto::FILE_DESCRIPTOR_SET)?;
    stdout.flush()
}
