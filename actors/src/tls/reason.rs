//! A failed TLS connection in words a person can act on: what went wrong
//! and which key to look at.

use std::io;

use rustls::{AlertDescription, CertificateError, Error};

use super::client::TlsClient;

/// Why the TLS connection to a device failed, when `e` came from TLS (a
/// handshake, or an alert the device sent later, as a TLS 1.3 server does
/// when it wanted a client certificate). `None` for other I/O errors.
pub(crate) fn failure_reason(e: &io::Error, tls: &TlsClient) -> Option<String> {
    if let Some(inner) = e.get_ref().and_then(|i| i.downcast_ref::<Error>()) {
        return Some(describe(inner, tls));
    }
    None
}

/// A connection the device closed in the middle of the handshake.
pub(super) fn closed_during_handshake(tls: &TlsClient) -> String {
    let cert = if tls.cert_file.is_some() {
        "or it refused the client certificate"
    } else {
        "or it wants a client certificate (tls_cert_file, tls_key_file)"
    };
    format!(
        "the device closed the connection during the TLS handshake: is `address` a plain Modbus TCP port \
         (Modbus/TCP Security listens on 802)? {cert}"
    )
}

/// A fresh TLS session the device closed before answering anything: what
/// a TLS 1.3 server does when it refuses the client (or its missing
/// certificate) without an alert.
pub(crate) fn closed_after_handshake(tls: &TlsClient) -> String {
    match &tls.cert_file {
        None => {
            "the device closed the TLS session before answering: most likely it demands a client \
             certificate (set tls_cert_file and tls_key_file)"
                .into()
        }
        Some(path) => format!(
            "the device closed the TLS session before answering: most likely it refused our client \
             certificate tls_cert_file {} (not signed by a CA it trusts, or not allowed)",
            path.display()
        ),
    }
}

fn describe(e: &Error, tls: &TlsClient) -> String {
    let ca = tls.ca_file.display();
    match e {
        Error::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer => format!(
                "the device's certificate is not signed by a CA in tls_ca_file {ca} (unknown issuer)"
            ),
            CertificateError::BadSignature => format!(
                "the device's certificate has a bad signature (not signed by the CA in tls_ca_file {ca})"
            ),
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                format!("the device's certificate has expired ({c}); renew it on the device")
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => format!(
                "the device's certificate is not valid yet ({c}); check the clocks of this PC and the device"
            ),
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                format!(
                    "the device's certificate is not valid for the name {:?} ({c}); set tls_server_name to a name it carries",
                    tls.server_name
                )
            }
            CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
                format!("the device's certificate is not for a TLS server ({c})")
            }
            CertificateError::Revoked => "the device's certificate has been revoked".into(),
            other => format!("the device's certificate was refused: {other}"),
        },
        Error::AlertReceived(alert) => alert_reason(*alert, tls),
        Error::NoCertificatesPresented => "the device sent no certificate".into(),
        Error::PeerIncompatible(p) => format!(
            "the device shares no TLS version or cipher suite with us (Modbus/TCP Security needs TLS 1.2 or 1.3): {p:?}"
        ),
        Error::InvalidMessage(_) | Error::InappropriateMessage { .. } | Error::InappropriateHandshakeMessage { .. } => {
            format!("the device does not speak TLS there (a plain Modbus TCP port?): {e}")
        }
        other => format!("TLS error: {other}"),
    }
}

fn alert_reason(alert: AlertDescription, tls: &TlsClient) -> String {
    use AlertDescription as A;
    let ours = match &tls.cert_file {
        Some(path) => format!("our client certificate tls_cert_file {}", path.display()),
        None => "us".to_owned(),
    };
    match alert {
        A::CertificateRequired => {
            "the device demands a client certificate (set tls_cert_file and tls_key_file)".into()
        }
        A::HandshakeFailure if tls.cert_file.is_none() => format!(
            "the device refused the handshake ({alert:?}): it may demand a client certificate \
             (tls_cert_file, tls_key_file), or share no cipher suite with us"
        ),
        A::UnknownCA
        | A::BadCertificate
        | A::CertificateUnknown
        | A::UnsupportedCertificate
        | A::CertificateExpired
        | A::CertificateRevoked
        | A::AccessDenied => {
            format!("the device refused {ours} ({alert:?})")
        }
        A::ProtocolVersion => {
            "the device shares no TLS version with us (Modbus/TCP Security needs TLS 1.2 or 1.3)"
                .into()
        }
        other => format!("the device ended the TLS session with the alert {other:?}"),
    }
}
