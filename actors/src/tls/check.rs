//! The rules a device's TLS keys follow, for `ingestor check` (the
//! config's validation turns each [`DeviceTlsProblem`] into a problem at
//! `devices[N].<key>`). Reads the files (blocking): readable, PEM,
//! certificates that parse, a key that belongs to its certificate.

use rustls::pki_types::ServerName;

use super::files::{
    certified_key, load_certificates, load_private_key, load_roots, TlsFile, TlsFileError,
};
use crate::settings::{DeviceSettings, Framing};

/// One thing wrong with a device's TLS settings. Never fixed by retrying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceTlsProblem {
    /// The `[[devices]]` key it is about (`tls`, `tls_ca_file`, ...).
    pub key: &'static str,
    /// What is wrong.
    pub kind: DeviceTlsProblemKind,
}

/// What is wrong at a device's TLS key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceTlsProblemKind {
    /// The value breaks a rule.
    Invalid {
        /// The value as written (strings quoted).
        value: String,
        /// What the rule allows.
        allowed: String,
    },
    /// A key that another one needs is absent (the text says which).
    Missing(String),
    /// The file the key names cannot be used.
    File(TlsFileError),
}

impl DeviceTlsProblem {
    fn invalid(key: &'static str, value: impl Into<String>, allowed: impl Into<String>) -> Self {
        DeviceTlsProblem {
            key,
            kind: DeviceTlsProblemKind::Invalid {
                value: value.into(),
                allowed: allowed.into(),
            },
        }
    }

    fn missing(key: &'static str, text: impl Into<String>) -> Self {
        DeviceTlsProblem {
            key,
            kind: DeviceTlsProblemKind::Missing(text.into()),
        }
    }

    fn file(e: TlsFileError) -> Self {
        DeviceTlsProblem {
            key: e.file.key(),
            kind: DeviceTlsProblemKind::File(e),
        }
    }
}

/// Every problem of `device`'s TLS keys; empty when they are usable (or
/// the device does not use TLS and sets none of them).
pub fn check(device: &DeviceSettings) -> Vec<DeviceTlsProblem> {
    let mut out = Vec::new();
    if !device.tls {
        for (key, set) in [
            ("tls_ca_file", device.tls_ca_file.is_some()),
            ("tls_cert_file", device.tls_cert_file.is_some()),
            ("tls_key_file", device.tls_key_file.is_some()),
            ("tls_server_name", device.tls_server_name.is_some()),
        ] {
            if set {
                out.push(DeviceTlsProblem::invalid(
                    key,
                    format!("`{key}` without `tls = true`"),
                    "TLS keys only with `tls = true` (else the connection would be plain Modbus TCP)",
                ));
            }
        }
        return out;
    }
    if device.address.is_none() {
        out.push(DeviceTlsProblem::invalid(
            "tls",
            "true",
            "Modbus/TCP Security needs `address` (a serial line has no TLS)",
        ));
    }
    if device.framing == Framing::Rtu {
        out.push(DeviceTlsProblem::invalid(
            "framing",
            "\"rtu\"",
            "Modbus/TCP Security carries MBAP frames: framing = \"tcp\" with `tls = true`",
        ));
    }
    match &device.tls_ca_file {
        None => out.push(DeviceTlsProblem::missing(
            "tls_ca_file",
            "`tls = true` needs `tls_ca_file`, the CA certificate(s) (PEM) the device's certificate is checked against",
        )),
        Some(path) => {
            if let Err(e) = load_roots(TlsFile::Ca, path) {
                out.push(DeviceTlsProblem::file(e));
            }
        }
    }
    match (&device.tls_cert_file, &device.tls_key_file) {
        (Some(cert), Some(key)) => {
            if let Err(e) = certified_key((TlsFile::Cert, cert), (TlsFile::Key, key)) {
                out.push(DeviceTlsProblem::file(e));
            }
        }
        (Some(cert), None) => {
            if let Err(e) = load_certificates(TlsFile::Cert, cert) {
                out.push(DeviceTlsProblem::file(e));
            }
            out.push(DeviceTlsProblem::missing(
                "tls_key_file",
                "`tls_cert_file` needs `tls_key_file` (the client certificate's private key)",
            ));
        }
        (None, Some(key)) => {
            if let Err(e) = load_private_key(TlsFile::Key, key) {
                out.push(DeviceTlsProblem::file(e));
            }
            out.push(DeviceTlsProblem::missing(
                "tls_cert_file",
                "`tls_key_file` needs `tls_cert_file` (the client certificate)",
            ));
        }
        (None, None) => {}
    }
    if let Some(name) = device.tls_server_name() {
        if ServerName::try_from(name.as_str()).is_err() {
            let key = if device.tls_server_name.is_some() {
                "tls_server_name"
            } else {
                "address"
            };
            out.push(DeviceTlsProblem::invalid(
                key,
                format!("{name:?}"),
                "a DNS name or IP address the device's certificate carries (set `tls_server_name`)",
            ));
        }
    }
    out
}
