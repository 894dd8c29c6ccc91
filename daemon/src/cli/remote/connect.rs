//! Where to dial and how: the address, TLS and the token, from the options or else from the
//! daemon's configuration, decided (and every file read) before the first packet is sent.
//!
//! The defaults follow the configuration the daemon runs with, so on the rig PC
//! `ephysd status --config /etc/ephysd/ephysd.toml` finds the daemon, trusts its certificate
//! and sends its token without more options. They are not applied to the plain loopback
//! listener a LAN bind keeps for the rig PC (`server.loopback_plain`), which speaks neither.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use super::{Remote, RemoteError, RemoteOptions};
use crate::config::{self, ConfigSource, ServerSettings};

/// Everything needed to dial the daemon.
#[derive(Debug)]
pub struct Target {
    /// Host name or IP address (an IPv6 address without brackets).
    pub host: String,
    /// The core port.
    pub port: u16,
    /// TLS, when the daemon is to be spoken to over TLS.
    pub tls: Option<TlsTarget>,
    /// The bearer token sent with every call.
    pub token: Option<Token>,
    /// For the connection and for each call.
    pub timeout: Duration,
}

/// The certificate to trust and the name it must carry.
#[derive(Debug)]
pub struct TlsTarget {
    /// Where the CA certificate came from (an option or a configuration key), for messages.
    pub origin: &'static str,
    pub ca_path: PathBuf,
    pub ca_pem: Vec<u8>,
    pub name: String,
}

/// `authorization: Bearer <token>`, ready to attach. Never printed: its `Debug` is redacted
/// and the metadata value is marked sensitive.
#[derive(Clone)]
pub struct Token(MetadataValue<Ascii>);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl Token {
    /// Reads the token: the first line of the file, trimmed (as the daemon reads its own).
    pub fn from_file(path: &Path, origin: &'static str) -> Result<Token, RemoteError> {
        let text = std::fs::read_to_string(path).map_err(|source| RemoteError::ReadFile {
            origin,
            path: path.to_path_buf(),
            source,
        })?;
        let bad = |reason| RemoteError::BadFile { origin, path: path.to_path_buf(), reason };
        let token = text.lines().next().unwrap_or_default().trim();
        if token.is_empty() {
            return Err(bad("the first line is empty; it must hold the token"));
        }
        let mut value: MetadataValue<Ascii> =
            format!("Bearer {token}").parse().map_err(|_| bad("the token may hold only printable ASCII characters"))?;
        value.set_sensitive(true);
        Ok(Token(value))
    }

    /// The `authorization` metadata value.
    pub fn header(&self) -> &MetadataValue<Ascii> {
        &self.0
    }
}

impl Target {
    /// Reads the configuration (as `run` does: defaults, `--config`, `EPHYSD_*`) and decides.
    pub fn resolve(options: &RemoteOptions) -> Result<Target, RemoteError> {
        let settings = config::load(&ConfigSource::from_process(options.config.clone()))?;
        Target::from_settings(options, &settings.server)
    }

    /// Decides from the options, falling back on the `[server]` keys.
    pub fn from_settings(options: &RemoteOptions, server: &ServerSettings) -> Result<Target, RemoteError> {
        let (host, port) = match &options.addr {
            Some(text) => parse_addr(text, server.base_port)?,
            None => (default_host(server), server.base_port),
        };
        // The plain loopback companion of a LAN bind has neither TLS nor a token.
        let plain = is_loopback(&host) && server.serves_loopback_plain();
        let configured = |path: &Path| (!plain && !path.as_os_str().is_empty()).then(|| path.to_path_buf());

        let ca = match &options.tls_ca {
            Some(path) => Some(("--tls-ca", path.clone())),
            None => configured(&server.tls_cert).map(|p| ("server.tls_cert", p)),
        };
        let tls = match ca {
            Some((origin, ca_path)) => {
                let ca_pem = std::fs::read(&ca_path).map_err(|source| RemoteError::ReadFile {
                    origin,
                    path: ca_path.clone(),
                    source,
                })?;
                if !String::from_utf8_lossy(&ca_pem).contains("-----BEGIN CERTIFICATE-----") {
                    return Err(RemoteError::BadFile {
                        origin,
                        path: ca_path,
                        reason: "no PEM certificate (-----BEGIN CERTIFICATE-----) in the file",
                    });
                }
                let name = options.tls_name.clone().unwrap_or_else(|| host.clone());
                Some(TlsTarget { origin, ca_path, ca_pem, name })
            }
            None if options.tls_name.is_some() => return Err(RemoteError::TlsNameWithoutCa),
            None => None,
        };

        let token_file = match &options.token_file {
            Some(path) => Some(("--token-file", path.clone())),
            None => configured(&server.token_file).map(|p| ("server.token_file", p)),
        };
        let token = match token_file {
            Some((origin, path)) => {
                if tls.is_none() && !is_loopback(&host) {
                    return Err(RemoteError::TokenInClear { origin, address: address(&host, port) });
                }
                Some(Token::from_file(&path, origin)?)
            }
            None => None,
        };
        Ok(Target { host, port, tls, token, timeout: options.timeout })
    }

    /// `host:port`, IPv6 in brackets: how messages name the daemon.
    pub fn address(&self) -> String {
        address(&self.host, self.port)
    }

    /// The URI tonic dials.
    pub fn uri(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.address())
    }
}

/// Dials the daemon; a refusal, a failed handshake or no answer in time is `Unreachable` or
/// `Timeout`, naming the address.
pub async fn connect(target: &Target) -> Result<Remote, RemoteError> {
    let address = target.address();
    let bad_address = |_| RemoteError::Address { value: address.clone(), reason: "not a valid address" };
    let mut endpoint = Endpoint::from_shared(target.uri()).map_err(bad_address)?.connect_timeout(target.timeout);
    if let Some(tls) = &target.tls {
        let config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&tls.ca_pem)).domain_name(&tls.name);
        endpoint = endpoint.tls_config(config).map_err(|source| RemoteError::Tls {
            origin: tls.origin,
            path: tls.ca_path.clone(),
            source,
        })?;
    }
    let channel: Channel = match tokio::time::timeout(target.timeout, endpoint.connect()).await {
        Ok(Ok(channel)) => channel,
        Ok(Err(source)) => return Err(RemoteError::Unreachable { address, source }),
        Err(_) => return Err(RemoteError::Timeout { address, during: "connecting", after: target.timeout }),
    };
    Ok(Remote::new(channel, address, target.token.clone(), target.timeout))
}

/// The configured bind, or loopback for a wildcard bind (which loopback reaches).
fn default_host(server: &ServerSettings) -> String {
    if server.bind_ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        server.bind.clone()
    }
}

/// `HOST[:PORT]`: an IPv4 address or a name with an optional port, `[IPv6]:PORT`, or a bare
/// IPv6 address.
pub fn parse_addr(text: &str, default_port: u16) -> Result<(String, u16), RemoteError> {
    let bad = |reason| RemoteError::Address { value: text.to_string(), reason };
    let text_trimmed = text.trim();
    if text_trimmed.contains("://") {
        return Err(bad("give the address without a scheme (TLS is chosen by --tls-ca)"));
    }
    let (host, port) = if let Some(rest) = text_trimmed.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(|| bad("an IPv6 address in brackets needs its `]`"))?;
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':').ok_or_else(|| bad("expected `:PORT` after `]`"))?)),
        }
    } else if text_trimmed.parse::<std::net::Ipv6Addr>().is_ok() {
        (text_trimmed, None)
    } else {
        match text_trimmed.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text_trimmed, None),
        }
    };
    if host.is_empty() || host.contains(|c: char| c.is_whitespace() || "/?#@[]".contains(c)) {
        return Err(bad("the host is missing or not a host name or IP address"));
    }
    if host.contains(':') && host.parse::<std::net::Ipv6Addr>().is_err() {
        return Err(bad("not an IPv6 address"));
    }
    let port = match port {
        None => default_port,
        Some(p) => match p.parse::<u16>() {
            Ok(port) if port != 0 => port,
            _ => return Err(bad("the port must be a number 1..=65535")),
        },
    };
    Ok((host.to_string(), port))
}

/// Whether `host` is this machine's loopback (where a token may travel without TLS).
fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn address(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn options() -> RemoteOptions {
        RemoteOptions {
            addr: None,
            config: None,
            tls_ca: None,
            tls_name: None,
            token_file: None,
            timeout: Duration::from_secs(10),
            json: false,
        }
    }

    fn server() -> ServerSettings {
        crate::config::Settings::defaults().server
    }

    fn secret_files(dir: &Path) -> (PathBuf, PathBuf) {
        let cert = dir.join("cert.pem");
        std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n").unwrap();
        let token = dir.join("token");
        std::fs::write(&token, "  token-0123456789abcdef  \nsecond line\n").unwrap();
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
        (cert, token)
    }

    #[test]
    fn addresses_take_a_host_and_an_optional_port() {
        let ok = |text| parse_addr(text, 50051).unwrap();
        assert_eq!(ok("192.168.10.20"), ("192.168.10.20".into(), 50051));
        assert_eq!(ok("rig-3:6000"), ("rig-3".into(), 6000));
        assert_eq!(ok("[::1]:6000"), ("::1".into(), 6000));
        assert_eq!(ok("[fe80::1]"), ("fe80::1".into(), 50051));
        assert_eq!(ok("::1"), ("::1".into(), 50051));
        for bad in ["", ":50051", "rig:0", "rig:http", "http://rig:50051", "[::1", "[::1]x", "a b", "1:2:3:x"] {
            let e = parse_addr(bad, 50051).unwrap_err();
            assert!(e.to_string().contains("--addr") && e.to_string().contains("HOST[:PORT]"), "{bad}: {e}");
        }
    }

    #[test]
    fn the_default_address_is_the_configured_bind_and_loopback_for_a_wildcard() {
        let mut s = server();
        s.base_port = 6000;
        let t = Target::from_settings(&options(), &s).unwrap();
        assert_eq!((t.address(), t.uri()), ("127.0.0.1:6000".to_string(), "http://127.0.0.1:6000".to_string()));
        s.bind = "0.0.0.0".into();
        assert_eq!(Target::from_settings(&options(), &s).unwrap().address(), "127.0.0.1:6000");
        s.bind = "192.168.10.20".into();
        assert_eq!(Target::from_settings(&options(), &s).unwrap().address(), "192.168.10.20:6000");
        let o = RemoteOptions { addr: Some("[::1]".into()), ..options() };
        assert_eq!(Target::from_settings(&o, &s).unwrap().address(), "[::1]:6000");
    }

    #[test]
    fn tls_and_token_default_to_the_configuration_except_on_plain_loopback() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, token) = secret_files(dir.path());
        let mut s = server();
        s.bind = "192.168.10.20".into();
        s.tls_cert = cert.clone();
        s.tls_key = dir.path().join("key.pem");
        s.token_file = token;
        let t = Target::from_settings(&options(), &s).unwrap();
        let tls = t.tls.as_ref().expect("TLS from server.tls_cert");
        assert_eq!(
            (tls.origin, tls.name.as_str(), tls.ca_path.as_path()),
            ("server.tls_cert", "192.168.10.20", &*cert)
        );
        assert_eq!(t.token.as_ref().unwrap().header().to_str().unwrap(), "Bearer token-0123456789abcdef");
        assert!(t.uri().starts_with("https://"));
        assert!(!format!("{t:?}").contains("0123456789abcdef"), "the token must not show in debug output");

        // The plain loopback companion of the LAN bind.
        let o = RemoteOptions { addr: Some("127.0.0.1".into()), ..options() };
        let t = Target::from_settings(&o, &s).unwrap();
        assert!(t.tls.is_none() && t.token.is_none());
        // A loopback bind with TLS on: loopback is secured.
        s.bind = "127.0.0.1".into();
        assert!(Target::from_settings(&o, &s).unwrap().tls.is_some());
    }

    #[test]
    fn explicit_options_win_and_mistakes_are_refused_before_dialing() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, token) = secret_files(dir.path());
        let o = RemoteOptions { tls_ca: Some(cert), tls_name: Some("rig-3".into()), ..options() };
        assert_eq!(Target::from_settings(&o, &server()).unwrap().tls.unwrap().name, "rig-3");

        let o = RemoteOptions { tls_name: Some("rig-3".into()), ..options() };
        assert!(matches!(Target::from_settings(&o, &server()), Err(RemoteError::TlsNameWithoutCa)));

        let o = RemoteOptions { addr: Some("10.0.0.2".into()), token_file: Some(token.clone()), ..options() };
        let e = Target::from_settings(&o, &server()).unwrap_err();
        assert!(e.to_string().contains("unencrypted to 10.0.0.2:50051"), "{e}");

        let o = RemoteOptions { tls_ca: Some(token.clone()), ..options() };
        let e = Target::from_settings(&o, &server()).unwrap_err();
        assert!(e.to_string().starts_with("--tls-ca = ") && e.to_string().contains("no PEM certificate"), "{e}");
        assert!(!e.to_string().contains("0123456789abcdef"));

        let o = RemoteOptions { token_file: Some(dir.path().join("missing")), ..options() };
        let e = Target::from_settings(&o, &server()).unwrap_err();
        assert!(e.to_string().starts_with("--token-file = ") && e.to_string().contains("cannot read"), "{e}");

        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        let o = RemoteOptions { token_file: Some(empty), ..options() };
        assert!(Target::from_settings(&o, &server()).unwrap_err().to_string().contains("first line is empty"));
    }
}
