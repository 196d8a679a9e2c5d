//! The simulator's side (`ingestor simulate --tls-cert … --tls-key …
//! [--tls-client-ca …]`): a server certificate, and client certificates
//! demanded and verified when a client CA is given.

use std::path::Path;
use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;
use rustls::ServerConfig;

use super::files::{certified_key, load_roots, provider, TlsFile, TlsFileError};

/// A simulator's TLS side: its certificate, and the client CAs it demands
/// certificates from, if any. Cheap to clone.
#[derive(Debug, Clone)]
pub struct TlsServer(pub(crate) Arc<ServerConfig>);

impl TlsServer {
    /// The certificate chain at `cert`, its key at `key` and, when given,
    /// the CAs at `client_ca` that every client's certificate must chain to
    /// (a client without one is refused). Blocking reads.
    pub fn from_files(
        cert: &Path,
        key: &Path,
        client_ca: Option<&Path>,
    ) -> Result<TlsServer, TlsFileError> {
        server_config(cert, key, client_ca).map(|c| TlsServer(Arc::new(c)))
    }
}

fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> Result<ServerConfig, TlsFileError> {
    let (chain, private) = certified_key((TlsFile::Cert, cert), (TlsFile::Key, key))?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsFileError {
            file: TlsFile::Cert,
            path: cert.to_path_buf(),
            problem: format!("no TLS configuration possible: {e}"),
        })?;
    let builder = match client_ca {
        Some(ca) => {
            let roots = load_roots(TlsFile::Ca, ca)?;
            let verifier = WebPkiClientVerifier::builder_with_provider(roots.into(), provider())
                .build()
                .map_err(|e| TlsFileError {
                    file: TlsFile::Ca,
                    path: ca.to_path_buf(),
                    problem: format!("not usable to verify clients: {e}"),
                })?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    builder
        .with_single_cert(chain, private)
        .map_err(|e| TlsFileError {
            file: TlsFile::Cert,
            path: cert.to_path_buf(),
            problem: format!("not usable as a server certificate: {e}"),
        })
}
