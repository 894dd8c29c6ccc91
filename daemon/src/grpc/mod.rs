//! The Allego gRPC surface: five services on five consecutive ports.
//!
//! Every port serves all five services. radiens-core dials each service on its own port, but
//! its auth step asks `AllegoLifecycle` on the core port, so answering every service
//! everywhere is both harmless and what makes the real client work unchanged. Methods this
//! version does not implement answer UNIMPLEMENTED naming the method (see [`unimplemented`]).
//!
//! One module per domain, each decoding and validating its own messages: [`status`] (status
//! and lifecycle), [`core_config`] (rate, cable delays, device mode), [`channels`] (metadata,
//! selection, groups), [`signals`] and [`signal_stream`] (primary-cache reads, sent while
//! read), [`streaming`], [`recording`],
//! [`triggers`]. [`service`] only routes each method to its
//! domain; [`errors`] is the one place engine errors become gRPC codes. Calls that can block
//! (joining threads, finalizing files, device I/O) run off the async workers
//! ([`off_workers`]).

mod access;
pub(crate) mod backbone;
mod channels;
mod core_config;
mod dsp;
pub mod errors;
mod hardware;
mod kpi;
mod recording;
pub mod security;
mod service;
mod signal_stream;
mod signals;
mod sorter;
mod status;
mod streaming;
mod triggers;
pub mod unimplemented;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use ephysd_proto::allego::allego_core_server::AllegoCoreServer;
use ephysd_proto::allego::allego_lifecycle_server::AllegoLifecycleServer;
use ephysd_proto::allego::kpi1_server::Kpi1Server;
use ephysd_proto::allego::neurons1_server::Neurons1Server;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;

use crate::config::ServerSettings;
use crate::engine::{Engine, EngineError};
use security::Credentials;
use service::{CoreService, KpiService, LifecycleService, NeuronsService};

/// Names of the five ports, in port order from `server.base_port`.
pub const PORT_ROLES: [&str; 5] = ["AllegoCore", "Pcache1", "Kpi1", "Neurons1", "AllegoLifecycle"];

/// The gRPC services could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr} ({role}): {reason}")]
    Bind { addr: SocketAddr, role: &'static str, reason: String },
}

/// The five ports on one address, and whether they are the secured ones.
pub struct PortSet {
    listeners: Vec<TcpListener>,
    /// Served with the configured TLS and token (the `server.bind` address); `false` for the
    /// plain loopback companion of a LAN bind.
    secured: bool,
}

impl PortSet {
    /// The address of the core port.
    pub fn core_address(&self) -> Option<SocketAddr> {
        self.listeners.first().and_then(|l| l.local_addr().ok())
    }
}

/// Binds every port before anything is served, so a port in use fails the start with a
/// message naming it, and READY=1 is only sent once every service can answer. The first set
/// is `server.bind`; a LAN bind may add a plain set on 127.0.0.1
/// ([`ServerSettings::serves_loopback_plain`]).
pub async fn bind(server: &ServerSettings) -> Result<Vec<PortSet>, ServeError> {
    let mut sets = vec![PortSet { listeners: bind_five(server.bind_ip(), server.base_port).await?, secured: true }];
    if server.serves_loopback_plain() {
        let loopback = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
        sets.push(PortSet { listeners: bind_five(loopback, server.base_port).await?, secured: false });
    }
    Ok(sets)
}

async fn bind_five(ip: IpAddr, base_port: u16) -> Result<Vec<TcpListener>, ServeError> {
    let mut listeners = Vec::with_capacity(5);
    for (i, role) in PORT_ROLES.iter().enumerate() {
        let addr = SocketAddr::new(ip, base_port + i as u16);
        let listener = TcpListener::bind(addr).await.map_err(|e| ServeError::Bind {
            addr,
            role,
            reason: if e.kind() == std::io::ErrorKind::AddrInUse {
                "address already in use (is another ephysd or Allego running?)".into()
            } else {
                e.to_string()
            },
        })?;
        listeners.push(listener);
    }
    Ok(listeners)
}

/// Serves every port until `stop` turns true. Secured ports use `credentials` (TLS and the
/// token, where configured); every port logs state changes with the peer's address. The
/// returned future ends when all servers have drained.
pub fn serve(
    sets: Vec<PortSet>,
    credentials: Credentials,
    engine: Arc<Engine>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> impl std::future::Future<Output = ()> {
    let core_address = sets.first().and_then(PortSet::core_address).map(|a| a.to_string()).unwrap_or_default();
    let mut tasks = Vec::new();
    for set in sets {
        let (tls, token) = match set.secured {
            true => (credentials.tls.clone(), credentials.token.clone()),
            false => (None, None),
        };
        for listener in set.listeners {
            let engine = Arc::clone(&engine);
            let core_address = core_address.clone();
            let tls = tls.clone();
            let access = access::AccessLayer { token: token.clone() };
            let mut stop = stop.clone();
            tasks.push(tokio::spawn(async move {
                let shutdown = async move {
                    while !*stop.borrow() {
                        if stop.changed().await.is_err() {
                            break;
                        }
                    }
                };
                let mut builder = tonic::transport::Server::builder();
                if let Some(tls) = tls {
                    builder = match builder.tls_config(tls) {
                        Ok(b) => b,
                        Err(e) => {
                            tracing::error!("TLS configuration failed after it was checked: {e}");
                            return;
                        }
                    };
                }
                let result = builder
                    .layer(access)
                    .layer(unimplemented::UnimplementedLayer)
                    .add_service(AllegoCoreServer::new(CoreService { engine: Arc::clone(&engine), core_address }))
                    .add_service(AllegoLifecycleServer::new(LifecycleService))
                    .add_service(signal_stream::PcacheRoutes::new(Arc::clone(&engine)))
                    .add_service(Kpi1Server::new(KpiService { engine: Arc::clone(&engine) }))
                    .add_service(Neurons1Server::new(NeuronsService { engine: Arc::clone(&engine) }))
                    .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
                    .await;
                if let Err(e) = result {
                    tracing::error!("gRPC server ended: {e}");
                }
            }));
        }
    }
    async move {
        for t in tasks {
            let _ = t.await;
        }
    }
}

/// Runs an engine call that may block (join threads, touch the disk, talk to the device) on
/// tokio's blocking pool, never on an async worker, and maps its error to a gRPC status.
async fn off_workers<T: Send + 'static>(
    engine: &Arc<Engine>,
    f: impl FnOnce(&Engine) -> Result<T, EngineError> + Send + 'static,
) -> Result<T, tonic::Status> {
    let engine = Arc::clone(engine);
    tokio::task::spawn_blocking(move || f(&engine).map_err(|e| errors::status_of(&e)))
        .await
        .map_err(|e| tonic::Status::internal(format!("engine task failed: {e}")))?
}

/// Lists enum values for error messages ("S_OFF, S_ON").
fn enum_names<E: Copy>(values: &[E], name: impl Fn(E) -> &'static str) -> String {
    values.iter().map(|v| name(*v)).collect::<Vec<_>>().join(", ")
}
