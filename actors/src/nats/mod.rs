//! `[nats]` for a client: the rules the settings must follow, checked in
//! one place ([`check`]), and the client options built from them
//! ([`connect_options`], [`server_addrs`]), what a stream's replicas
//! mean for an acknowledged batch ([`durability`]), and the last message
//! on a subject filter ([`last`]).
//!
//! # Invariants
//! - The config file's validation and the client setup use the same
//!   [`check`]: a `[nats]` that `ingestor check` accepts is one the
//!   ConnectionMonitor accepts, and the reverse.
//! - What only fails at runtime (a creds or nkey file that cannot be read
//!   now) is not a [`NatsProblem`] but a [`NatsSetupError`] of its own.
//! - Connection policy (one client per connection, reconnects) is not here:
//!   it is the ConnectionMonitor's (`monitor::connect`).

mod check;
pub mod durability;
pub mod last;
mod options;

use thiserror::Error;

pub use check::{check, is_subject, NatsProblem, NatsProblemKind};
pub use options::{connect_options, server_addrs};

/// Why a NATS client could not be set up. None of these heal by retrying
/// the same thing: [`Invalid`](Self::Invalid) needs a config change, the
/// file errors a readable file.
#[derive(Debug, Error)]
pub enum NatsSetupError {
    /// The settings fail [`check`] (every problem listed).
    #[error("[nats] is not valid: {}", list(.0))]
    Invalid(Vec<NatsProblem>),
    /// `creds_file` could not be read or parsed.
    #[error("[nats] creds_file {path}: {source}")]
    CredsFile {
        /// The configured path.
        path: String,
        /// The I/O or parse error.
        source: std::io::Error,
    },
    /// `nkey_seed_file` could not be read.
    #[error("[nats] nkey_seed_file {path}: {source}")]
    NkeySeedFile {
        /// The configured path.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The client refused the options, or a local resource it needs could
    /// not be had (it does not connect yet, so this is a setup error).
    #[error("cannot set up the NATS client: {0}")]
    Client(String),
}

fn list(problems: &[NatsProblem]) -> String {
    let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
    shown.join("; ")
}
