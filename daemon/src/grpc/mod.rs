//! The Allego gRPC surface: five services on five consecutive ports.
//!
//! Every port serves all five services. radiens-core dials each service on its own port, but
//! its auth step asks `AllegoLifecycle` on the core port, so answering every service
//! everywhere is both harmless and what makes the real client work unchanged. Methods this
//! version does not implement answer UNIMPLEMENTED naming the method (see [`unimplemented`]).
//!
//! One module per domain, each decoding and validating its own messages: [`status`] (status
//! and lifecycle), [`streaming`], [`recording`], [`triggers`]. [`service`] only routes each method to its
//! domain; [`errors`] is the one place engine errors become gRPC codes. Calls that can block
//! (joining threads, finalizing files, device I/O) run off the async workers
//! ([`off_workers`]).

mod backbone;
pub mod errors;
mod recording;
mod service;
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
use ephysd_proto::allego::pcache1_server::Pcache1Server;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;

use crate::config::ServerSettings;
use crate::engine::{Engine, EngineError};
use service::{CoreService, KpiService, LifecycleService, NeuronsService, PcacheService};

/// Names of the five ports, in port order from `server.base_port`.
pub const PORT_ROLES: [&str; 5] = ["AllegoCore", "Pcache1", "Kpi1", "Neurons1", "AllegoLifecycle"];

/// The gRPC services could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr} ({role}): {reason}")]
    Bind { addr: SocketAddr, role: &'static str, reason: String },
}

/// Binds all five ports before anything is served, so a port in use fails the start with a
/// message naming it, and READY=1 is only sent once every service can answer.
pub async fn bind(server: &ServerSettings) -> Result<Vec<TcpListener>, ServeError> {
    let ip: IpAddr = server.bind.parse().expect("validated by config");
    let mut listeners = Vec::with_capacity(5);
    for (i, role) in PORT_ROLES.iter().enumerate() {
        let addr = SocketAddr::new(ip, server.base_port + i as u16);
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

/// Serves every listener until `stop` turns true. The returned future ends when all servers
/// have drained.
pub fn serve(
    listeners: Vec<TcpListener>,
    engine: Arc<Engine>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> impl std::future::Future<Output = ()> {
    let core_address = listeners[0].local_addr().map(|a| a.to_string()).unwrap_or_default();
    let tasks: Vec<_> = listeners
        .into_iter()
        .map(|listener| {
            let engine = Arc::clone(&engine);
            let core_address = core_address.clone();
            let mut stop = stop.clone();
            tokio::spawn(async move {
                let shutdown = async move {
                    while !*stop.borrow() {
                        if stop.changed().await.is_err() {
                            break;
                        }
                    }
                };
                let result = tonic::transport::Server::builder()
                    .layer(unimplemented::UnimplementedLayer)
                    .add_service(AllegoCoreServer::new(CoreService { engine: Arc::clone(&engine), core_address }))
                    .add_service(AllegoLifecycleServer::new(LifecycleService))
                    .add_service(Pcache1Server::new(PcacheService))
                    .add_service(Kpi1Server::new(KpiService))
                    .add_service(Neurons1Server::new(NeuronsService))
                    .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
                    .await;
                if let Err(e) = result {
                    tracing::error!("gRPC server ended: {e}");
                }
            })
        })
        .collect();
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
