//! Modbus/TCP Security: TLS between the poller and a device (`tls = true`
//! on a `[[devices]]` entry), and the simulator's TLS mode.
//!
//! Invariants:
//! - the device's certificate is always verified, against the CAs of
//!   `tls_ca_file` only (no system roots, no switch to turn it off), for
//!   the name `tls_server_name` (default: the host of `address`);
//!   TLS 1.2 or 1.3, the versions the Modbus/TCP Security spec allows;
//! - one TLS stack: rustls with its `ring` provider, the one async-nats
//!   already brings, named explicitly (`files::provider`) so that no process
//!   default decides it;
//! - the files are read at every connect, off the async workers, so a
//!   renewed certificate takes effect at the next reconnect; a file that
//!   cannot be used fails that device's connect only;
//! - a failed handshake is a device error whose text says what to fix
//!   (`reason.rs`): unknown issuer, expired, wrong name, a client
//!   certificate demanded or refused; the device backs off like any
//!   unreachable one;
//! - a private key file readable by group or others is warned about
//!   ([`key_mode_warning`]), by `ingestor check` and once per link.
//!
//! Files: `files.rs` (PEM files: certificates, CA roots, private keys,
//! their modes), `check.rs` (a device's TLS keys, for `ingestor check`),
//! `client.rs` (the poller's side), `reason.rs` (rustls errors in words),
//! `server.rs` (the simulator's side).

mod check;
mod client;
mod files;
mod reason;
mod server;

pub use check::{check, DeviceTlsProblem, DeviceTlsProblemKind};
pub use client::TlsClient;
pub use files::{key_mode_warning, TlsFile, TlsFileError};
pub(crate) use reason::{closed_after_handshake, failure_reason};
pub use server::TlsServer;
