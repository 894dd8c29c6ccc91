//! What the services need to be safe beyond loopback: a TLS identity and a bearer token,
//! read from the files `[server]` names.
//!
//! Everything is read and checked before a port is bound, so a bad certificate, an
//! unreadable key or a token file anyone can read fails `run` and `check-config` with the
//! key and the file named, instead of the first client finding out.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use subtle::ConstantTimeEq;
use tonic::transport::{Identity, ServerTlsConfig};

use crate::config::ServerSettings;

/// The shortest token accepted: anything shorter is guessable over a LAN.
pub const MIN_TOKEN_LEN: usize = 16;
/// The longest token accepted (it travels in every request's headers).
pub const MAX_TOKEN_LEN: usize = 4096;

/// The credentials could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("config key `server.{key}` = {path}: cannot read the file: {source}")]
    Read {
        key: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config keys `server.tls_cert` = {cert} and `server.tls_key` = {key}: not a usable PEM certificate and key: {reason}")]
    Tls { cert: PathBuf, key: PathBuf, reason: String },
    #[error(
        "config key `server.token_file` = {path}: the file is readable by other users (mode {mode:03o}); \
         allowed: readable by its owner only (chmod 600)"
    )]
    TokenExposed { path: PathBuf, mode: u32 },
    #[error("config key `server.token_file` = {path}: {reason}")]
    TokenShape { path: PathBuf, reason: String },
}

/// A bearer token. It never appears in logs or debug output, and it is compared in constant
/// time so the answer's timing says nothing about how much of a guess was right.
#[derive(Clone)]
pub struct BearerToken(Arc<[u8]>);

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerToken(<redacted>)")
    }
}

impl BearerToken {
    /// Reads the token: the file's first line, trimmed.
    pub fn from_file(path: &Path) -> Result<BearerToken, CredentialError> {
        let read = |source| CredentialError::Read { key: "token_file", path: path.to_path_buf(), source };
        let mode = std::fs::metadata(path).map_err(read)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(CredentialError::TokenExposed { path: path.to_path_buf(), mode });
        }
        let text = std::fs::read_to_string(path).map_err(read)?;
        let token = text.lines().next().unwrap_or("").trim();
        let shape = |reason: String| CredentialError::TokenShape { path: path.to_path_buf(), reason };
        if !(MIN_TOKEN_LEN..=MAX_TOKEN_LEN).contains(&token.len()) {
            return Err(shape(format!(
                "the token has {} characters; allowed {MIN_TOKEN_LEN}..={MAX_TOKEN_LEN}",
                token.len()
            )));
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(shape("the token may hold only printable ASCII characters without spaces".into()));
        }
        Ok(BearerToken(token.as_bytes().into()))
    }

    /// Whether an `authorization` header value is `Bearer <this token>`.
    pub fn admits(&self, header: Option<&[u8]>) -> bool {
        let Some(presented) = header.and_then(|h| h.strip_prefix(b"Bearer ")) else {
            return false;
        };
        bool::from(presented.ct_eq(&self.0))
    }
}

/// TLS and token, as far as `[server]` asks for them.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    /// The TLS configuration every secured port uses.
    pub tls: Option<ServerTlsConfig>,
    /// The token every request on a secured port must carry.
    pub token: Option<BearerToken>,
}

impl Credentials {
    /// Reads and checks the files `[server]` names; empty keys load nothing.
    pub fn load(server: &ServerSettings) -> Result<Credentials, CredentialError> {
        let tls = if server.tls_enabled() { Some(load_tls(&server.tls_cert, &server.tls_key)?) } else { None };
        let token = if server.token_enabled() { Some(BearerToken::from_file(&server.token_file)?) } else { None };
        Ok(Credentials { tls, token })
    }
}

fn load_tls(cert: &Path, key: &Path) -> Result<ServerTlsConfig, CredentialError> {
    let read = |key_name: &'static str, path: &Path| {
        std::fs::read(path).map_err(|source| CredentialError::Read { key: key_name, path: path.to_path_buf(), source })
    };
    let identity = Identity::from_pem(read("tls_cert", cert)?, read("tls_key", key)?);
    let config = ServerTlsConfig::new().identity(identity);
    // Building a server with it parses the PEM now, so a bad file fails the start.
    tonic::transport::Server::builder().tls_config(config.clone()).map_err(|e| CredentialError::Tls {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        reason: describe(&e),
    })?;
    Ok(config)
}

/// The error and its causes on one line.
fn describe(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(&format!(": {c}"));
        cause = c.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token_file(dir: &Path, text: &str, mode: u32) -> PathBuf {
        let path = dir.join("token");
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn a_token_is_admitted_only_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let token =
            BearerToken::from_file(&token_file(dir.path(), "s3cret-token-0123456789\nignored\n", 0o600)).unwrap();
        assert!(token.admits(Some(b"Bearer s3cret-token-0123456789")));
        assert!(!token.admits(Some(b"Bearer s3cret-token-012345678")));
        assert!(!token.admits(Some(b"Bearer s3cret-token-0123456789x")));
        assert!(!token.admits(Some(b"bearer s3cret-token-0123456789")));
        assert!(!token.admits(Some(b"s3cret-token-0123456789")));
        assert!(!token.admits(None));
        assert_eq!(format!("{token:?}"), "BearerToken(<redacted>)");
    }

    #[test]
    fn an_exposed_short_or_unreadable_token_file_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let e = BearerToken::from_file(&token_file(dir.path(), "s3cret-token-0123456789", 0o644)).unwrap_err();
        assert!(e.to_string().contains("mode 644") && e.to_string().contains("chmod 600"), "{e}");
        let e = BearerToken::from_file(&token_file(dir.path(), "short", 0o600)).unwrap_err();
        assert!(e.to_string().contains("5 characters") && e.to_string().contains("16..=4096"), "{e}");
        let e = BearerToken::from_file(&token_file(dir.path(), "with a space in the token", 0o600)).unwrap_err();
        assert!(e.to_string().contains("printable"), "{e}");
        let e = BearerToken::from_file(Path::new("/nonexistent/token")).unwrap_err();
        assert!(e.to_string().contains("server.token_file") && e.to_string().contains("/nonexistent/token"), "{e}");
    }

    #[test]
    fn a_certificate_that_is_not_pem_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        std::fs::write(&cert, "not a certificate").unwrap();
        std::fs::write(&key, "not a key").unwrap();
        let e = load_tls(&cert, &key).unwrap_err().to_string();
        assert!(e.contains("server.tls_cert") && e.contains("cert.pem") && e.contains("PEM"), "{e}");
        let e = load_tls(&dir.path().join("absent.pem"), &key).unwrap_err().to_string();
        assert!(e.contains("server.tls_cert") && e.contains("absent.pem"), "{e}");
    }
}
