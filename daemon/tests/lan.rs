//! Serving beyond loopback: TLS and a bearer token, tested with a Rust client against the
//! real daemon on an address of a network namespace this test creates (a second machine on
//! a virtual LAN cable). Where namespaces are refused, the same checks run over loopback
//! with TLS and the token forced on by config, and the reason is printed.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::{free_base_port, signal, wait_exit, TestDaemon};
use ephysd_proto::allego::allego_core_client::AllegoCoreClient;
use ephysd_proto::allego::{SetStreamRequest, StandardRequest};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::Code;

const TOKEN: &str = "lan-test-token-6f1c2b9d8e7a";
const SERVER_NAME: &str = "rig.ephysd.test";

/// A network namespace joined to this one by a veth pair: the daemon runs inside it, on
/// `inner`; the test dials it from `outer`. Removed when dropped.
struct VirtualLan {
    name: String,
    inner: IpAddr,
    outer: IpAddr,
}

impl VirtualLan {
    fn create() -> Result<VirtualLan, String> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let id = (std::process::id() * 4 + NEXT.fetch_add(1, Ordering::Relaxed)) % 200 + 20;
        let name = format!("ephysd-lan-{}-{id}", std::process::id());
        let (host_if, ns_if) = (format!("eplh{id}"), format!("epln{id}"));
        let lan = VirtualLan {
            name: name.clone(),
            inner: format!("10.231.{id}.2").parse().unwrap(),
            outer: format!("10.231.{id}.1").parse().unwrap(),
        };
        ip(&["netns", "add", &name])?;
        let steps: [Vec<String>; 7] = [
            vec![
                "link".into(),
                "add".into(),
                host_if.clone(),
                "type".into(),
                "veth".into(),
                "peer".into(),
                "name".into(),
                ns_if.clone(),
            ],
            vec!["link".into(), "set".into(), ns_if.clone(), "netns".into(), name.clone()],
            vec!["addr".into(), "add".into(), format!("{}/24", lan.outer), "dev".into(), host_if.clone()],
            vec!["link".into(), "set".into(), host_if, "up".into()],
            vec![
                "-n".into(),
                name.clone(),
                "addr".into(),
                "add".into(),
                format!("{}/24", lan.inner),
                "dev".into(),
                ns_if.clone(),
            ],
            vec!["-n".into(), name.clone(), "link".into(), "set".into(), ns_if, "up".into()],
            vec!["-n".into(), name.clone(), "link".into(), "set".into(), "lo".into(), "up".into()],
        ];
        for step in steps {
            let args: Vec<&str> = step.iter().map(String::as_str).collect();
            ip(&args)?;
        }
        Ok(lan)
    }
}

impl Drop for VirtualLan {
    fn drop(&mut self) {
        // Deleting the namespace deletes the veth pair with it.
        let _ = ip(&["netns", "del", &self.name]);
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip").args(args).output().map_err(|e| format!("cannot run `ip`: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("`ip {}` failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// A self-signed certificate for `SERVER_NAME`, a key, and a token file, all as the daemon
/// reads them.
struct Secrets {
    cert_pem: String,
}

fn write_secrets(dir: &Path) -> Secrets {
    let generated = rcgen::generate_simple_self_signed(vec![SERVER_NAME.to_string()]).unwrap();
    let cert_pem = generated.cert.pem();
    std::fs::write(dir.join("cert.pem"), &cert_pem).unwrap();
    std::fs::write(dir.join("key.pem"), generated.signing_key.serialize_pem()).unwrap();
    let token = dir.join("token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    Secrets { cert_pem }
}

fn secured(d: &mut TestDaemon, bind: IpAddr) -> Command {
    let dir = d.dir.path().to_path_buf();
    let mut cmd = d.command();
    cmd.env("EPHYSD_SERVER__BIND", bind.to_string())
        .env("EPHYSD_SERVER__TLS_CERT", dir.join("cert.pem"))
        .env("EPHYSD_SERVER__TLS_KEY", dir.join("key.pem"))
        .env("EPHYSD_SERVER__TOKEN_FILE", dir.join("token"));
    cmd
}

/// Runs `cmd` inside the namespace: `ip netns exec NAME <program> <args>`, same environment,
/// logging into the daemon's log file.
fn inside(lan: &VirtualLan, d: &TestDaemon, cmd: Command) -> Command {
    let mut wrapped = Command::new("ip");
    wrapped.args(["netns", "exec", &lan.name]).arg(cmd.get_program()).args(cmd.get_args());
    wrapped.stdout(Stdio::null()).stderr(std::fs::File::options().append(true).open(&d.log).unwrap());
    wrapped.env_clear();
    for (key, value) in cmd.get_envs() {
        if let Some(value) = value {
            wrapped.env(key, value);
        }
    }
    wrapped
}

fn wait_for(addr: SocketAddr, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("ephysd exited early with {status}");
        }
        assert!(Instant::now() < deadline, "{addr} did not open");
        std::thread::sleep(Duration::from_millis(20));
    }
}

async fn tls_channel(addr: SocketAddr, cert_pem: &str) -> Result<Channel, tonic::transport::Error> {
    let tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(cert_pem)).domain_name(SERVER_NAME);
    Endpoint::from_shared(format!("https://{addr}"))?
        .tls_config(tls)?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
}

fn with_token<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

/// Everything a LAN client can observe: the token admits, its absence or a wrong one is
/// UNAUTHENTICATED, plain gRPC gets nowhere, state changes are logged with the peer's
/// address, and the token never reaches the log.
async fn check_secured_daemon(d: &TestDaemon, addr: SocketAddr, client_ip: IpAddr, secrets: &Secrets) {
    let channel = tls_channel(addr, &secrets.cert_pem).await.expect("TLS handshake with the daemon's certificate");
    let mut core = AllegoCoreClient::new(channel);

    let status =
        core.get_status(with_token(StandardRequest::default(), TOKEN)).await.expect("a valid token is admitted");
    assert!(!status.into_inner().ports.is_empty());

    let refused = core.get_status(StandardRequest::default()).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    assert!(refused.message().contains("Bearer"), "{}", refused.message());
    let wrong =
        core.get_status(with_token(StandardRequest::default(), "lan-test-token-6f1c2b9d8e7b")).await.unwrap_err();
    assert_eq!(wrong.code(), Code::Unauthenticated);
    let wrong_scheme = {
        let mut request = tonic::Request::new(StandardRequest::default());
        request.metadata_mut().insert("authorization", format!("deviceUUID {TOKEN}").parse().unwrap());
        core.get_status(request).await.unwrap_err()
    };
    assert_eq!(wrong_scheme.code(), Code::Unauthenticated);
    // A refused state change changes nothing.
    let refused_start = core.set_stream_state(SetStreamRequest { mode: 1 }).await.unwrap_err();
    assert_eq!(refused_start.code(), Code::Unauthenticated);
    let status = core.get_status(with_token(StandardRequest::default(), TOKEN)).await.unwrap().into_inner();
    assert_eq!(status.streaming.stream_mode, 0, "a refused request must not start streaming");

    core.set_stream_state(with_token(SetStreamRequest { mode: 1 }, TOKEN)).await.expect("admitted state change");
    core.set_stream_state(with_token(SetStreamRequest { mode: 0 }, TOKEN)).await.unwrap();

    // Plain gRPC (no TLS) to the secured port gets no answer.
    let plain = async {
        let mut client = AllegoCoreClient::connect(format!("http://{addr}")).await?;
        client
            .get_status(with_token(StandardRequest::default(), TOKEN))
            .await
            .map_err(Box::<dyn std::error::Error>::from)?;
        Ok::<_, Box<dyn std::error::Error>>(())
    };
    let plain = tokio::time::timeout(Duration::from_secs(10), plain).await.expect("plain attempt ends");
    assert!(plain.is_err(), "plain gRPC must not be served on a secured port");

    // The journal: who changed what, who was refused, never the token.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = d.log_text();
    let changes: Vec<&str> =
        log.lines().filter(|l| l.contains("state-changing request") && l.contains("SetStreamState")).collect();
    assert_eq!(changes.len(), 2, "each admitted state change is logged once:\n{log}");
    assert!(changes.iter().all(|l| l.contains(&client_ip.to_string())), "peer address logged:\n{log}");
    assert!(log.contains("request refused") && log.contains(&client_ip.to_string()), "{log}");
    assert!(!log.contains(TOKEN), "the token must never be logged:\n{log}");
}

#[test]
fn lan_clients_need_tls_and_the_token_and_state_changes_are_logged_with_their_peer() {
    let mut d = TestDaemon::new();
    let secrets = write_secrets(d.dir.path());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    match VirtualLan::create() {
        Ok(lan) => {
            let secured = secured(&mut d, lan.inner);
            let mut cmd = inside(&lan, &d, secured);
            let mut child = cmd.spawn().unwrap();
            let addr = SocketAddr::new(lan.inner, d.base_port);
            wait_for(addr, &mut child);
            runtime.block_on(check_secured_daemon(&d, addr, lan.outer, &secrets));
            signal(&child, libc::SIGTERM);
            let (status, _) = wait_exit(&mut child, Duration::from_secs(20));
            assert!(status.success(), "{}", d.log_text());
        }
        Err(reason) => {
            println!("network namespaces are not available here ({reason}); testing over loopback with TLS and the token forced on");
            let loopback: IpAddr = "127.0.0.1".parse().unwrap();
            let mut child = secured(&mut d, loopback).spawn().unwrap();
            let addr = SocketAddr::new(loopback, d.base_port);
            wait_for(addr, &mut child);
            runtime.block_on(check_secured_daemon(&d, addr, loopback, &secrets));
            signal(&child, libc::SIGTERM);
            let (status, _) = wait_exit(&mut child, Duration::from_secs(20));
            assert!(status.success(), "{}", d.log_text());
        }
    }
}

/// A LAN bind keeps a plain loopback listener for clients on the rig PC itself (radiens-core
/// cannot do TLS): it answers without a token, and its state changes are logged too.
#[test]
fn a_lan_bind_keeps_plain_loopback_for_the_rig_pc() {
    let mut d = TestDaemon::new();
    write_secrets(d.dir.path());
    let lan = match VirtualLan::create() {
        Ok(lan) => lan,
        Err(reason) => {
            println!("skipped: network namespaces are not available here ({reason}); a LAN address is needed");
            return;
        }
    };
    // Inside the namespace, only a process in it can reach its loopback: run the client
    // there too, as `ephysd status` would be run on the rig PC.
    let secured = secured(&mut d, lan.inner);
    let mut child = inside(&lan, &d, secured).spawn().unwrap();
    wait_for(SocketAddr::new(lan.inner, d.base_port), &mut child);
    let probe = Command::new("ip")
        .args(["netns", "exec", &lan.name, "bash", "-c"])
        .arg(format!("exec 3<>/dev/tcp/127.0.0.1/{} && echo open", d.base_port))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&probe.stdout).trim(), "open", "{:?}", probe);
    signal(&child, libc::SIGTERM);
    let (status, _) = wait_exit(&mut child, Duration::from_secs(20));
    assert!(status.success(), "{}", d.log_text());
    assert!(d.log_text().contains("loopback_plain=true"), "{}", d.log_text());
}

#[test]
fn check_config_refuses_a_lan_bind_without_tls_and_token_naming_what_is_missing() {
    let out = common::ephysd()
        .arg("check-config")
        .env("EPHYSD_SERVER__BIND", "0.0.0.0")
        .env("EPHYSD_SERVER__BASE_PORT", free_base_port().to_string())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("server.bind") && err.contains("server.tls_cert, server.tls_key, server.token_file"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    write_secrets(dir.path());
    std::fs::set_permissions(dir.path().join("token"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = common::ephysd()
        .arg("check-config")
        .env("EPHYSD_SERVER__BIND", "0.0.0.0")
        .env("EPHYSD_SERVER__TLS_CERT", dir.path().join("cert.pem"))
        .env("EPHYSD_SERVER__TLS_KEY", dir.path().join("key.pem"))
        .env("EPHYSD_SERVER__TOKEN_FILE", dir.path().join("token"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("server.token_file") && err.contains("chmod 600"), "{err}");
}
