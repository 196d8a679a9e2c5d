//! The ingestor's runtime: actors that poll Modbus devices, buffer every
//! reading (memory ring + fjall spool) and deliver it to NATS, under supervision.
//!
//! # Layout
//! - [`batch`]: `Batch` and `Value`, the readings of one device poll.
//! - [`encoded`]: `EncodedBatch`, a batch encoded once for NATS (what the
//!   buffer keeps and the publisher sends).
//! - [`settings`]: the config file's schema (docs/reference.md §2) as serde types.
//! - [`credentials`]: what `[nats]` credentials may show (redacted URLs) and TLS warnings.
//! - [`buffer`]: BufferActor; the ring, the fjall spool, the record format.
//! - [`poller`]: DevicePoller per `[[devices]]`; poll groups, plan, decode,
//!   link (tcp/rtu), deadband/heartbeat filter.
//! - [`monitor`]: ConnectionMonitor, makes the NATS connections (a fresh client each).
//! - [`publisher`]: Publisher, buffer -> NATS, acknowledged, oldest first.
//! - [`supervisor`]: the root supervisor restarting children with back-off.
//! - [`fault`]: test-only fault injection (feature `fault-injection`).
#![deny(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

#[cfg(all(feature = "failpoints", not(debug_assertions)))]
compile_error!("the `failpoints` feature is for tests only: a release build must not have it");

pub mod backoff;
pub mod batch;
pub mod buffer;
pub mod credentials;
pub mod encoded;
pub mod fault;
pub mod metric_names;
pub mod monitor;
pub mod poller;
pub mod publisher;
pub mod settings;
pub mod supervisor;

pub use batch::{Batch, Value};
pub use encoded::EncodedBatch;
