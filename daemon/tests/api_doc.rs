//! docs/API.md lists every method of the five Allego services with its true status.

use ephysd::grpc::IMPLEMENTED;
use prost::Message;
use prost_types::FileDescriptorSet;

#[test]
fn api_doc_lists_every_method_with_its_status() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/API.md")).unwrap();
    let fds = FileDescriptorSet::decode(ephysd_proto::FILE_DESCRIPTOR_SET).unwrap();
    let mut checked = 0;
    for file in &fds.file {
        for service in &file.service {
            let full = format!("{}.{}", file.package(), service.name());
            if !ephysd_proto::SERVICES.contains(&full.as_str()) {
                continue;
            }
            for method in &service.method {
                let implemented = IMPLEMENTED.contains(&(full.as_str(), method.name()));
                let expected = format!("| `{full}/{}` | {} |", method.name(), if implemented { "implemented" } else { "unimplemented" });
                let rows = doc.lines().filter(|l| l.starts_with(&format!("| `{full}/{}` |", method.name()))).count();
                assert_eq!(rows, 1, "docs/API.md must list {full}/{} exactly once", method.name());
                assert!(doc.lines().any(|l| l.starts_with(&expected)), "docs/API.md: expected a row starting {expected}");
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 7 + 84 + 5 + 8 + 16);
    for (service, method) in IMPLEMENTED {
        assert!(doc.contains(&format!("| `{service}/{method}` | implemented |")), "{service}/{method}");
    }
}
