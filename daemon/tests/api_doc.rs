//! docs/API.md lists every method of the five Allego services with its true status, as a
//! running daemon answers it: a method is "unimplemented" exactly when it answers
//! UNIMPLEMENTED naming itself. Nothing is listed by hand, so a method cannot be implemented
//! and still be documented (or answer) as unimplemented.

mod common;

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use common::{signal, wait_exit, TestDaemon};
use prost::Message;
use prost_types::FileDescriptorSet;
use tonic::transport::Channel;

/// Methods with effects on the whole daemon are asked last, so the others see it as it was.
const ASK_LAST: [&str; 2] = ["Restart", "Close"];

struct Method {
    service: String,
    name: String,
    server_streaming: bool,
}

fn methods() -> Vec<Method> {
    let fds = FileDescriptorSet::decode(ephysd_proto::FILE_DESCRIPTOR_SET).unwrap();
    let mut all = Vec::new();
    for file in &fds.file {
        for service in &file.service {
            let full = format!("{}.{}", file.package(), service.name());
            if ephysd_proto::SERVICES.contains(&full.as_str()) {
                for m in &service.method {
                    all.push(Method {
                        service: full.clone(),
                        name: m.name().to_string(),
                        server_streaming: m.server_streaming(),
                    });
                }
            }
        }
    }
    all.sort_by_key(|m| ASK_LAST.contains(&m.name.as_str()));
    all
}

/// Asks `method` with an empty request and says whether it answered UNIMPLEMENTED (checking
/// that such an answer names the method).
async fn answers_unimplemented(channel: Channel, method: &Method) -> bool {
    let full = format!("{}/{}", method.service, method.name);
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let path = http::uri::PathAndQuery::from_str(&format!("/{full}")).unwrap();
    let codec = tonic_prost::ProstCodec::<(), ()>::default();
    let call = async {
        if method.server_streaming {
            grpc.server_streaming(tonic::Request::new(()), path, codec).await.map(drop)
        } else {
            grpc.unary(tonic::Request::new(()), path, codec).await.map(drop)
        }
    };
    match tokio::time::timeout(Duration::from_secs(10), call).await {
        Ok(Err(status)) if status.code() == tonic::Code::Unimplemented => {
            assert!(
                status.message().starts_with(&format!("{full} is not implemented by ephysd")),
                "{full}: {}",
                status.message()
            );
            true
        }
        _ => false,
    }
}

#[test]
fn api_doc_lists_every_method_with_the_status_a_running_daemon_answers() {
    let mut d = TestDaemon::new();
    let mut child = d.spawn();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let answers: Vec<(Method, bool)> = rt.block_on(async {
        let channel = Channel::from_shared(d.endpoint(0)).unwrap().connect().await.unwrap();
        let mut answers = Vec::new();
        for method in methods() {
            let unimplemented = answers_unimplemented(channel.clone(), &method).await;
            answers.push((method, unimplemented));
        }
        answers
    });
    signal(&child, libc::SIGTERM);
    let _ = wait_exit(&mut child, Duration::from_secs(10));
    assert_eq!(answers.len(), 7 + 84 + 5 + 8 + 16);

    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/API.md")).unwrap();
    let mut per_service: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for (m, unimplemented) in &answers {
        let full = format!("{}/{}", m.service, m.name);
        let expected = format!("| `{full}` | {} |", if *unimplemented { "unimplemented" } else { "implemented" });
        let rows = doc.lines().filter(|l| l.starts_with(&format!("| `{full}` |"))).count();
        assert_eq!(rows, 1, "docs/API.md must list {full} exactly once");
        assert!(doc.lines().any(|l| l.starts_with(&expected)), "docs/API.md: expected a row starting {expected}");
        let counts = per_service.entry(&m.service).or_default();
        counts.0 += usize::from(!unimplemented);
        counts.1 += 1;
    }
    for (service, (implemented, total)) in per_service {
        let heading = format!("## {service} ");
        let line = doc
            .lines()
            .find(|l| l.starts_with(&heading))
            .unwrap_or_else(|| panic!("docs/API.md has no section for {service}"));
        assert!(
            line.ends_with(&format!(": {implemented} of {total} implemented")),
            "docs/API.md: {line:?} should say {implemented} of {total}"
        );
    }
}
