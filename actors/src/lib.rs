//! The ingestor's runtime: actors that poll Modbus devices, buffer every
//! reading (memory ring + fjall spool) and deliver it to NATS, under supervision.
//!
//! # Layout
//! One line per module, in file order (`actors/src/`):
//! - [`backoff`] (`backoff.rs`): `Backoff { min, max }`, the doubling wait every retry uses; `spread`, a deterministic share of a wait for users that back off in step (the pollers).
//! - [`batch`] (`batch.rs`): `Batch` and `Value`, the readings of one device poll.
//! - [`buffer`] (`buffer/`): BufferActor; the memory ring, the fjall spool, the record format.
//! - [`credentials`] (`credentials.rs`): what `[nats]` credentials may show; TLS warnings.
//! - [`encoded`] (`encoded.rs`): `EncodedBatch`, a batch encoded once for NATS.
//! - [`fault`] (`fault.rs`): test-only fault injection (feature `fault-injection`).
//! - [`installation`] (`installation.rs`): the installation id in `<data_dir>/installation`.
//! - [`metric_names`] (`metric_names.rs`): every exported metric name (docs/reference.md §4).
//! - [`monitor`] (`monitor/`): ConnectionMonitor, a fresh NATS client per connection; its state as a watch.
//! - [`nats`] (`nats/`): `[nats]` for a client: its rules checked in one place, the connect options.
//! - [`poller`] (`poller/`): DevicePoller per `[[devices]]`: groups, plan, decode, link (tcp/rtu/tls), deadband,
//!   setpoints (writes through NATS request/reply, read back, audited).
//! - [`publisher`] (`publisher/`): Publisher, buffer -> NATS, acknowledged, oldest first.
//! - [`settings`] (`settings/`): the config file's schema (docs/reference.md §2) as serde types.
//! - [`simulator`] (`simulator.rs`): a Modbus slave serving a config's devices (`ingestor simulate`).
//! - [`supervisor`] (`supervisor/`): the root supervisor, restarting children with back-off.
//! - [`tls`] (`tls/`): Modbus/TCP Security: TLS to devices (always verified), the simulator's TLS.
//! - [`watched`] (`watched.rs`): spawning an actor's tasks so a panic in one fails the actor, logged.
//!
//! Every actor has one shape, in one file, `<name>/actor.rs`: its unit
//! struct, `XArgs`, `XMsg`, `XState` and `impl Actor` side by side (X is the
//! actor's name without an `Actor` suffix: `BufferArgs`, `PublisherMsg`,
//! `RootSupervisorState`). `XMsg`'s variants are what others send it; what
//! the actor's own tasks and timers send it rides in `XMsg::Internal`, opaque
//! outside that file. The module's `mod.rs` keeps its design doc (the
//! invariants), its `mod` lines and re-exports.
#![deny(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

// `build.rs` refuses the feature with the release profile; this catches a
// build without that script.
#[cfg(all(feature = "failpoints", not(ingestor_test_build)))]
compile_error!("the `failpoints` feature is for tests only: a release build must not have it");

pub mod backoff;
pub mod batch;
pub mod buffer;
pub mod credentials;
pub mod encoded;
pub mod fault;
pub mod installation;
pub mod metric_names;
pub mod monitor;
pub mod nats;
pub mod poller;
pub mod publisher;
pub mod settings;
pub mod simulator;
pub mod supervisor;
pub mod tls;
pub mod watched;

pub use batch::{Batch, Value};
pub use encoded::EncodedBatch;
