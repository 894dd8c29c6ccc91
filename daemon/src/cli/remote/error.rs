//! What can go wrong between the command line and the daemon, the exit code each gets, and
//! how it is told to a person or a script.
//!
//! Three kinds, because an operator acts differently on each: the command line is wrong
//! (nothing was sent), the daemon is out of reach (it may not run, or the address or TLS is
//! wrong), or the daemon answered with an error (its gRPC code and message say why).

use std::path::PathBuf;
use std::time::Duration;

use tonic::Code;

use super::keys::KeyError;
use super::{EXIT_DAEMON_ERROR, EXIT_UNREACHABLE, EXIT_USAGE};
use crate::config::ConfigError;

/// What to check when the daemon cannot be reached, said with every such error.
const REACH_HINT: &str = "Is the daemon running (`systemctl status ephysd`), is that its core port \
                          (server.base_port; --addr HOST:PORT), and, if it serves TLS, are --tls-ca and --tls-name right?";

/// A remote command failed.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The configuration the defaults come from is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// `--addr` is not HOST[:PORT].
    #[error("--addr {value:?}: {reason}; allowed: HOST[:PORT], e.g. 192.168.10.20:50051 or [::1]:50051")]
    Address { value: String, reason: &'static str },
    /// A file an option or the configuration names cannot be read.
    #[error("{origin} = {}: cannot read the file: {source}", path.display())]
    ReadFile {
        origin: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file was read but does not hold what it should.
    #[error("{origin} = {}: {reason}", path.display())]
    BadFile { origin: &'static str, path: PathBuf, reason: &'static str },
    /// The CA certificate cannot be turned into a TLS configuration.
    #[error("{origin} = {}: not a usable TLS CA certificate: {}", path.display(), chain(source))]
    Tls {
        origin: &'static str,
        path: PathBuf,
        #[source]
        source: tonic::transport::Error,
    },
    /// `--tls-name` without a certificate to check the name against.
    #[error(
        "--tls-name needs a CA certificate to verify: give --tls-ca (or set server.tls_cert in the configuration)"
    )]
    TlsNameWithoutCa,
    /// A token would cross the network in clear text.
    #[error(
        "refusing to send the token of {origin} unencrypted to {address}: give --tls-ca \
         (the daemon serves addresses other than loopback only with TLS)"
    )]
    TokenInClear { origin: &'static str, address: String },
    /// An unknown `config` key or a bad value for one.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The connection could not be made (refused, no route, TLS handshake failed).
    #[error("cannot reach the daemon at {address}: {}. {}", chain(source), reach_hint(source))]
    Unreachable {
        address: String,
        #[source]
        source: tonic::transport::Error,
    },
    /// No answer in time.
    #[error("{during}: no answer from {address} within {} s. {REACH_HINT}", after.as_secs_f64())]
    Timeout { address: String, during: &'static str, after: Duration },
    /// The connection broke during a call: the daemon's answer, if any, is unknown.
    #[error("{method}: the connection to {address} failed: {}. {REACH_HINT}", status_cause(status))]
    ConnectionLost {
        address: String,
        method: &'static str,
        #[source]
        status: tonic::Status,
    },
    /// The daemon answered with an error.
    #[error("{method}: {}: {}", code_name(status.code()), status.message())]
    Daemon {
        method: &'static str,
        #[source]
        status: tonic::Status,
    },
    /// The client's own async runtime could not start.
    #[error("cannot start the client: {0}")]
    Runtime(#[source] std::io::Error),
}

impl RemoteError {
    /// A failed call: the daemon's answer, or a connection that broke under it (transport
    /// failures carry their cause; answers the daemon sent do not).
    pub fn from_status(method: &'static str, address: &str, status: tonic::Status) -> RemoteError {
        if std::error::Error::source(&status).is_some() {
            RemoteError::ConnectionLost { address: address.to_string(), method, status }
        } else {
            RemoteError::Daemon { method, status }
        }
    }

    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            RemoteError::Daemon { .. } => EXIT_DAEMON_ERROR,
            RemoteError::Unreachable { .. }
            | RemoteError::Timeout { .. }
            | RemoteError::ConnectionLost { .. }
            | RemoteError::Runtime(_) => EXIT_UNREACHABLE,
            RemoteError::Config(_)
            | RemoteError::Address { .. }
            | RemoteError::ReadFile { .. }
            | RemoteError::BadFile { .. }
            | RemoteError::Tls { .. }
            | RemoteError::TlsNameWithoutCa
            | RemoteError::TokenInClear { .. }
            | RemoteError::Key(_) => EXIT_USAGE,
        }
    }

    /// A stable code for scripts: the gRPC code when the daemon answered, else `USAGE`,
    /// `UNREACHABLE` or `TIMEOUT`.
    pub fn code(&self) -> &'static str {
        match self {
            RemoteError::Daemon { status, .. } => code_name(status.code()),
            RemoteError::Timeout { .. } => "TIMEOUT",
            _ if self.exit_code() == EXIT_UNREACHABLE => "UNREACHABLE",
            _ => "USAGE",
        }
    }

    /// `{"error": {"code": ..., "message": ...}}`; the daemon's own message when it answered.
    pub fn to_json(&self) -> serde_json::Value {
        let message = match self {
            RemoteError::Daemon { status, .. } => status.message().to_string(),
            other => other.to_string(),
        };
        let mut error = serde_json::json!({ "code": self.code(), "message": message });
        if let RemoteError::Daemon { method, .. } | RemoteError::ConnectionLost { method, .. } = self {
            error["method"] = serde_json::Value::from(*method);
        }
        serde_json::json!({ "error": error })
    }
}

/// A gRPC code as the protocol spells it (`FAILED_PRECONDITION`), which is what the daemon's
/// documentation and other clients use.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// What to check for a connection that failed: the usual list, or the one fix a self-signed
/// certificate marked as a CA needs (`openssl req -x509` marks it so unless told otherwise, and
/// TLS refuses a CA certificate as the server's own).
fn reach_hint(error: &tonic::transport::Error) -> String {
    if chain(error).contains("CaUsedAsEndEntity") {
        "The daemon's certificate is marked as a CA certificate, which TLS does not accept as a server's own: \
         make it with `-addext basicConstraints=critical,CA:FALSE` (see \"Command line\" in docs/OPERATIONS.md)."
            .to_string()
    } else {
        REACH_HINT.to_string()
    }
}

/// A transport failure under a call: its message and causes (a status's own text repeats its
/// code and source in debug form).
fn status_cause(status: &tonic::Status) -> String {
    with_causes(status.message().to_string(), std::error::Error::source(status))
}

/// An error and its causes on one line, skipping a cause its parent already quoted (transport
/// errors often repeat their source in their own text).
fn chain(error: &dyn std::error::Error) -> String {
    with_causes(error.to_string(), error.source())
}

/// `text` followed by each cause it does not already quote.
fn with_causes(mut text: String, mut cause: Option<&dyn std::error::Error>) -> String {
    while let Some(c) = cause {
        let next = c.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        cause = c.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_daemon_answer_exits_1_with_its_code_and_message() {
        let e =
            RemoteError::from_status("SetStreamState", "127.0.0.1:50051", tonic::Status::failed_precondition("busy"));
        assert_eq!(e.exit_code(), EXIT_DAEMON_ERROR);
        assert_eq!(e.to_string(), "SetStreamState: FAILED_PRECONDITION: busy");
        assert_eq!(
            e.to_json(),
            serde_json::json!({"error": {"code": "FAILED_PRECONDITION", "message": "busy", "method": "SetStreamState"}})
        );
    }

    #[test]
    fn a_broken_connection_is_not_mistaken_for_an_answer() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "connection reset");
        let status = tonic::Status::from_error(Box::new(io));
        let e = RemoteError::from_status("GetStatus", "10.0.0.2:50051", status);
        assert_eq!(e.exit_code(), EXIT_UNREACHABLE);
        assert_eq!(e.code(), "UNREACHABLE");
        let text = e.to_string();
        assert!(text.starts_with("GetStatus: the connection to 10.0.0.2:50051 failed: "), "{text}");
        assert!(text.contains("connection reset") && text.contains("systemctl status ephysd"), "{text}");
        assert!(!text.contains("source:"), "no debug output: {text}");
    }

    #[test]
    fn timeouts_and_usage_errors_have_their_codes() {
        let t = RemoteError::Timeout {
            address: "127.0.0.1:1".into(),
            during: "connecting",
            after: Duration::from_millis(2500),
        };
        assert_eq!((t.exit_code(), t.code()), (EXIT_UNREACHABLE, "TIMEOUT"));
        assert!(t.to_string().starts_with("connecting: no answer from 127.0.0.1:1 within 2.5 s."), "{t}");
        let u = RemoteError::TlsNameWithoutCa;
        assert_eq!((u.exit_code(), u.code()), (EXIT_USAGE, "USAGE"));
    }

    #[test]
    fn every_code_has_its_protocol_name() {
        for (value, name) in [(0, "OK"), (9, "FAILED_PRECONDITION"), (12, "UNIMPLEMENTED"), (16, "UNAUTHENTICATED")] {
            assert_eq!(code_name(Code::from_i32(value)), name);
        }
    }
}
