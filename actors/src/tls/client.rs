//! The poller's side: a device's TLS settings, the rustls client config
//! built from its files, and the handshake over an open TCP stream.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::files::{certified_key, load_roots, provider, TlsFile, TlsFileError};
use super::reason::{closed_during_handshake, failure_reason};
use crate::settings::DeviceSettings;

/// A TLS session to a device, as tokio-modbus runs Modbus TCP over it.
pub(crate) type TlsClientStream = tokio_rustls::client::TlsStream<TcpStream>;

/// What a link needs to open TLS to a device. Devices whose settings are
/// equal (and whose address is the same) share one session.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TlsClient {
    /// `tls_ca_file`.
    pub ca_file: PathBuf,
    /// `tls_cert_file`, with `key_file`.
    pub cert_file: Option<PathBuf>,
    /// `tls_key_file`, with `cert_file`.
    pub key_file: Option<PathBuf>,
    /// The name the device's certificate must carry.
    pub server_name: String,
}

impl TlsClient {
    /// The TLS settings of `device`; `None` when it does not use TLS (or
    /// has no CA file, which the config's validation refuses).
    pub fn of(device: &DeviceSettings) -> Option<Self> {
        if !device.tls {
            return None;
        }
        Some(TlsClient {
            ca_file: device.tls_ca_file.clone()?,
            cert_file: device.tls_cert_file.clone(),
            key_file: device.tls_key_file.clone(),
            server_name: device.tls_server_name()?,
        })
    }

    /// The client config from the files as they are now. Blocking reads:
    /// call on a blocking thread.
    pub(crate) fn config(&self) -> Result<ClientConfig, TlsFileError> {
        let roots = load_roots(TlsFile::Ca, &self.ca_file)?;
        let builder = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| TlsFileError {
                file: TlsFile::Ca,
                path: self.ca_file.clone(),
                problem: format!("no TLS configuration possible: {e}"),
            })?
            .with_root_certificates(roots);
        match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(key)) => {
                let (chain, private) = certified_key((TlsFile::Cert, cert), (TlsFile::Key, key))?;
                builder
                    .with_client_auth_cert(chain, private)
                    .map_err(|e| TlsFileError {
                        file: TlsFile::Key,
                        path: key.clone(),
                        problem: format!("not usable as a client certificate key: {e}"),
                    })
            }
            _ => Ok(builder.with_no_client_auth()),
        }
    }

    /// A warning when the client key file is readable by group or others.
    /// Blocking (one `stat`).
    pub fn key_mode_warning(&self) -> Option<String> {
        let key = self.key_file.as_deref()?;
        super::files::key_mode_warning(TlsFile::Key.key(), key)
    }

    /// The handshake over `stream`, with the device's certificate verified;
    /// the error is the reason in words.
    pub(crate) async fn handshake(
        &self,
        config: Arc<ClientConfig>,
        stream: TcpStream,
    ) -> Result<TlsClientStream, String> {
        let name = ServerName::try_from(self.server_name.clone()).map_err(|e| {
            format!(
                "tls_server_name {:?} is not a DNS name or IP address: {e}",
                self.server_name
            )
        })?;
        TlsConnector::from(config)
            .connect(name, stream)
            .await
            .map_err(|e| match failure_reason(&e, self) {
                Some(reason) => reason,
                None if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    closed_during_handshake(self)
                }
                None => format!("TLS handshake failed: {e}"),
            })
    }
}
