//! PEM files: certificate chains, CA roots, private keys, and whether a
//! key file is readable by more than its owner. Blocking reads: call from
//! a blocking thread (or a command line), never on an async worker.

use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::RootCertStore;
use thiserror::Error;

/// The one crypto provider of every TLS config here: rustls' `ring`, the
/// provider async-nats is built with.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Which of a device's (or the simulator's) TLS files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TlsFile {
    /// `tls_ca_file` (simulator: `--tls-client-ca`): CA certificates.
    Ca,
    /// `tls_cert_file` (simulator: `--tls-cert`): a certificate chain.
    Cert,
    /// `tls_key_file` (simulator: `--tls-key`): a private key.
    Key,
}

impl TlsFile {
    /// The `[[devices]]` key that names this file.
    pub fn key(self) -> &'static str {
        match self {
            TlsFile::Ca => "tls_ca_file",
            TlsFile::Cert => "tls_cert_file",
            TlsFile::Key => "tls_key_file",
        }
    }
}

impl fmt::Display for TlsFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// A TLS file that cannot be used. Never fixed by retrying: the file (or
/// its permissions) has to change.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{file} {path}: {problem}", path = .path.display())]
pub struct TlsFileError {
    /// Which file.
    pub file: TlsFile,
    /// Its path, as configured.
    pub path: PathBuf,
    /// What is wrong with it, in words.
    pub problem: String,
}

impl TlsFileError {
    fn new(file: TlsFile, path: &Path, problem: impl Into<String>) -> Self {
        TlsFileError {
            file,
            path: path.to_path_buf(),
            problem: problem.into(),
        }
    }
}

fn read(file: TlsFile, path: &Path) -> Result<Vec<u8>, TlsFileError> {
    std::fs::read(path).map_err(|e| TlsFileError::new(file, path, format!("cannot read it: {e}")))
}

fn pem_problem(e: &pem::Error) -> String {
    match e {
        pem::Error::NoItemsFound => "no PEM section in it".into(),
        other => format!("not valid PEM: {other:?}"),
    }
}

/// Every certificate of a PEM file (`-----BEGIN CERTIFICATE-----`), at
/// least one.
pub(crate) fn load_certificates(
    file: TlsFile,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsFileError> {
    let bytes = read(file, path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsFileError::new(file, path, pem_problem(&e)))?;
    if certs.is_empty() {
        return Err(TlsFileError::new(
            file,
            path,
            "no certificate in it (expected PEM: -----BEGIN CERTIFICATE-----)",
        ));
    }
    Ok(certs)
}

/// The CA certificates of a PEM file as trust anchors; each must parse.
pub(crate) fn load_roots(file: TlsFile, path: &Path) -> Result<RootCertStore, TlsFileError> {
    let mut roots = RootCertStore::empty();
    for (i, cert) in load_certificates(file, path)?.into_iter().enumerate() {
        roots.add(cert).map_err(|e| {
            TlsFileError::new(
                file,
                path,
                format!("certificate {} is not a usable CA certificate: {e}", i + 1),
            )
        })?;
    }
    Ok(roots)
}

/// The private key of a PEM file (PKCS#8, PKCS#1 RSA or SEC1 EC), one the
/// crypto provider can sign with.
pub(crate) fn load_private_key(
    file: TlsFile,
    path: &Path,
) -> Result<PrivateKeyDer<'static>, TlsFileError> {
    let bytes = read(file, path)?;
    let key = PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| match e {
        pem::Error::NoItemsFound => TlsFileError::new(
            file,
            path,
            "no private key in it (expected PEM: -----BEGIN PRIVATE KEY-----, RSA or EC PRIVATE KEY; unencrypted)",
        ),
        other => TlsFileError::new(file, path, pem_problem(&other)),
    })?;
    provider()
        .key_provider
        .load_private_key(key.clone_key())
        .map_err(|e| TlsFileError::new(file, path, format!("not a usable private key: {e}")))?;
    Ok(key)
}

/// A certificate chain and the key that belongs to it, both checked: the
/// key must be the private half of the first certificate's public key.
pub(crate) fn certified_key(
    cert: (TlsFile, &Path),
    key: (TlsFile, &Path),
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsFileError> {
    let chain = load_certificates(cert.0, cert.1)?;
    let private = load_private_key(key.0, key.1)?;
    match rustls::sign::CertifiedKey::from_der(chain.clone(), private.clone_key(), &provider()) {
        Ok(_) => Ok((chain, private)),
        Err(rustls::Error::InconsistentKeys(_)) => Err(TlsFileError::new(
            key.0,
            key.1,
            format!(
                "this key does not belong to the certificate in {} {}",
                cert.0,
                cert.1.display()
            ),
        )),
        Err(e) => Err(TlsFileError::new(
            cert.0,
            cert.1,
            format!("not usable with its key: {e}"),
        )),
    }
}

/// A warning when the secret file at `path` (a private key, NATS
/// credentials, an nkey seed) may be read by others, or by a group other
/// than root's: names the key, the file, its mode and the mode to set.
/// `None` when only its owner (and the root group) may read it, or it
/// cannot be inspected (loading reports that). Blocking (one `stat`).
pub fn key_mode_warning(key: &str, path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    let mode = meta.permissions().mode() & 0o777;
    let by_others = mode & 0o007 != 0;
    let by_group = mode & 0o070 != 0 && meta.gid() != 0;
    let who = match (by_group, by_others) {
        (true, true) => format!("group {} and others", meta.gid()),
        (true, false) => format!("group {}", meta.gid()),
        (false, true) => "others".to_owned(),
        (false, false) => return None,
    };
    Some(format!(
        "{key} {} is readable by {who} (mode {mode:04o}): a secret should be readable by the \
         service's user only; chmod 0600 {} (owned by the user the service runs as), or 0640 \
         with group root",
        path.display(),
        path.display()
    ))
}
