//! The Allego gRPC wire contract (protobuf package `allego`).
//!
//! `allego/*.proto` is generated from radiens-core's compiled descriptors by
//! `tools/descriptors_to_proto.py`, so the Rust types here speak exactly what
//! the real Python client sends. The files are proto2 (as the client's are):
//! `required` fields are plain values, `optional` ones are `Option<T>` and keep
//! presence on the wire.

/// Generated messages plus tonic clients (`*_client`) and servers (`*_server`).
///
/// Server traits have default stubs: a method left unimplemented answers
/// `Status::unimplemented("Not yet implemented")`, so a handler only writes
/// what it supports.
#[allow(clippy::all, missing_docs, non_camel_case_types)]
pub mod allego {
    include!(concat!(env!("OUT_DIR"), "/allego.rs"));
}

/// Encoded `FileDescriptorSet` of the contract, imports (well-known types)
/// included, as compiled by protox at build time.
///
/// Embedded so the daemon can serve gRPC reflection and so the conformance
/// test can compare our contract with radiens-core's without parsing `.proto`
/// text itself.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/allego_descriptor.bin"));

/// Full names of the services ephysd serves.
///
/// These are the services radiens-core's Allego client calls; listing them in
/// one place keeps the server wiring, reflection and tests in agreement.
pub const SERVICES: [&str; 5] =
    ["allego.AllegoCore", "allego.Pcache1", "allego.Kpi1", "allego.Neurons1", "allego.AllegoLifecycle"];

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;
    use prost_types::{FileDescriptorSet, ServiceDescriptorProto};

    fn descriptor_set() -> FileDescriptorSet {
        FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).expect("embedded descriptor set decodes")
    }

    /// Looks a service up by its full name (`package.Service`).
    fn find_service<'a>(fds: &'a FileDescriptorSet, full_name: &str) -> Option<&'a ServiceDescriptorProto> {
        fds.file
            .iter()
            .find_map(|file| file.service.iter().find(|svc| format!("{}.{}", file.package(), svc.name()) == full_name))
    }

    #[test]
    fn services_exist_with_expected_method_counts() {
        let fds = descriptor_set();
        let expected = [
            ("allego.AllegoLifecycle", 7),
            ("allego.AllegoCore", 84),
            ("allego.Pcache1", 5),
            ("allego.Kpi1", 8),
            ("allego.Neurons1", 16),
        ];
        for (name, methods) in expected {
            assert!(SERVICES.contains(&name), "{name} missing from SERVICES");
            let svc = find_service(&fds, name).unwrap_or_else(|| panic!("{name} not in descriptor set"));
            assert_eq!(svc.method.len(), methods, "method count of {name}");
        }
    }

    #[test]
    fn descriptor_set_is_self_contained() {
        let fds = descriptor_set();
        let names: Vec<&str> = fds.file.iter().map(|f| f.name()).collect();
        for file in &fds.file {
            for dep in &file.dependency {
                assert!(names.contains(&dep.as_str()), "{} imports missing {dep}", file.name());
            }
        }
    }

    #[test]
    fn config_recording_round_trip_keeps_presence() {
        use allego::{ConfigRecording, DataRecordingType};
        let set = ConfigRecording {
            base_file_name: "rec".into(),
            base_file_path: "/data".into(),
            data_source_idx: Some(0),
            time_stamp: Some(false),
            split_files_by_port: None,
            force_start_at_t_stamp0: None,
            recording_type: DataRecordingType::Spikes as i32,
        };
        let decoded = ConfigRecording::decode(set.encode_to_vec().as_slice()).unwrap();
        assert_eq!(decoded, set);
        // Explicit zero/false values survive as "present", unset ones stay absent.
        assert_eq!(decoded.data_source_idx, Some(0));
        assert_eq!(decoded.time_stamp, Some(false));
        assert_eq!(decoded.split_files_by_port, None);
        assert_eq!(decoded.force_start_at_t_stamp0, None);
    }

    #[test]
    fn unset_optional_fields_are_not_encoded() {
        use allego::ConfigRecording;
        let bare = ConfigRecording::default();
        let with_zero = ConfigRecording { data_source_idx: Some(0), ..Default::default() };
        // Field 3 (varint) = 0 costs two bytes only when present.
        assert_eq!(with_zero.encoded_len(), bare.encoded_len() + 2);
    }
}
