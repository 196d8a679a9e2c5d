//! Publisher: takes the oldest batches from the buffer, publishes them to
//! NATS, and acks the buffer only for what the server confirmed.
//!
//! # Invariants
//! - A batch leaves the buffer only through `BufferMsg::Ack { lease, seq }`,
//!   and the Publisher sends that Ack only when every batch up to `seq` is known to
//!   be in the stream (JetStream: a PubAck, taken in publish order, or found
//!   there by the check below). In `core` mode "confirmed" means "flushed to
//!   the socket": best effort, as docs/reference.md §2 says.
//! - Publishing happens in a *session*: a task that lives while one
//!   connection is up and nothing failed. A session ends at its first
//!   failure (the window closes there: nothing more is sent). It takes and
//!   acks under a lease (`buffer::Lease`) the Publisher holds; when the
//!   session ends the lease is dropped and the buffer requeues (everything
//!   in flight goes out again, first, in order), and a new session, with a
//!   new lease, starts at once on a new connection, or after a back-off.
//! - Strict order: each connection has its own client, which dies with its
//!   connection together with every publish still queued in it (see
//!   `monitor::connect`). So nothing sent in an old session can reach the
//!   server after a new session started; a new session sends the oldest
//!   unconfirmed batch first, and one connection's publishes are stored in
//!   the order they were sent. When a stream leader dies, the publishes on
//!   their way to it are never answered; the fence (`window`) stops new
//!   publishes once the oldest has waited 1 s, seconds before a new leader
//!   can be elected, so none can be stored ahead of the lost ones.
//! - Failover costs the election, not a timeout (`election`): the stream
//!   lookup is asked again every 250–500 ms while unanswered, and a session
//!   whose oldest publish is past the fence ends as soon as `stream info`
//!   names a new leader; the back-off after a failure counts from the
//!   session's start.
//! - One installation per id (`conflict`): before a JetStream session
//!   takes anything from the buffer, it reads the stream's last message on
//!   `<prefix>.<service.id>.>`. Another installation's (unless
//!   `[service] replaces` names it and it has been silent for the
//!   duplicate window), or ours with a seq at or above our next one, ends
//!   the session with `IdConflict`: nothing sent, everything kept, checked
//!   again slowly. Every message carries `Ingestor-Installation`.
//! - Exactly once, however long the outage: before a session sends anything
//!   it reads what the stream already holds of ours from the oldest batch
//!   the buffer hands out on (`stream`: each message of
//!   `<prefix>.<service.id>.>` from there to the end of the stream, no cap,
//!   read from the stream leader, and its `Ingestor-Seq` header). The walk
//!   starts after the last PubAck only when that batch is older than the
//!   oldest handed out; otherwise (acks lost anywhere on their way to disk)
//!   it searches the stream for the oldest. Only this installation's
//!   messages count. Exactly those seqs are treated
//!   as confirmed and not sent again; every other batch is sent. No high-water mark is
//!   assumed: a batch counts as stored only when its own message was read
//!   back, so a batch refused while later ones were stored is still resent.
//!   `Nats-Msg-Id` de-duplication stays as a second line within the stream's
//!   `duplicate_window`; a window shorter than `ack_timeout × 20` is logged.
//! - Confirmed acks are never lost: a session holds back the acks of up to
//!   a quarter window (100 ms at most) to ack the buffer in bigger steps;
//!   the seq held back is shared with the Publisher (`window::Unsent`),
//!   which sends that `Ack` itself, before the lease ends, when it cuts a
//!   session short (a disconnect, a permissions violation) or it ends.
//! - Rejections that retrying cannot fix now (permission denied, no stream)
//!   are logged once per cause, counted in
//!   `ingestor_publish_errors_total{reason}`, and retried slowly; the data
//!   stays buffered.
//! - A batch over what NATS takes (the server's `max_payload`, the
//!   stream's `max_msg_size`: `limit`) is never retried at the head of the
//!   line and never dropped here: the buffer is told to set it aside
//!   (`BufferMsg::SetAside`, after the acks before it, before any after it)
//!   and the session goes on with the next batch.
//! - The connection comes from the ConnectionMonitor's watch
//!   ([`PublisherArgs::connection`]): read when the Publisher starts
//!   (a restarted one publishes at once on the running connection), then
//!   followed by a task of its own that turns each change into an internal
//!   message. A connection that goes down ends the session; a server
//!   rejection ends it as a permission error.
//! - Delivery has one source: the Publisher says in a [`DeliveryWatch`]
//!   whether batches are being confirmed ([`Delivery::Confirming`]: the
//!   running session had one confirmed, or opened its stream with nothing
//!   waiting) or not ([`Delivery::Stalled`]: no session, a session that
//!   has not earned it yet, one that ended, the oldest publish unanswered
//!   for the fence's 1 s, no Publisher). The buffer follows it
//!   (`persist = "disconnect"` writes through while stalled) and `/health`
//!   reads it (`delivery: stalled` once a backlog has had nothing confirmed
//!   for `ack_timeout`). The watch outlives every Publisher incarnation; a
//!   Publisher that goes leaves it stalled (see `delivery`).
//! - No global state: settings come in [`PublisherArgs`], so a `[nats]`
//!   change is applied by stopping this actor and spawning a new one.
//!
//! Metrics: `ingestor_published_total`, `ingestor_publish_ack_seconds`,
//! `ingestor_publish_errors_total{reason}`.
//!
//! # Files
//! - [`actor`]: the Publisher itself (`PublisherArgs`, `PublisherMsg`,
//!   `PublisherState`, `impl Actor`): sessions started, ended, backed off.
//! - `delivery`: [`DeliveryWatch`], whether batches are being confirmed.
//! - `session`: one publishing session, from a connect to its first failure.
//! - `core_mode`: the session's loop in `mode = "core"` (publish, flush, ack).
//! - `conflict`: before the first publish, is the id still ours to write?
//! - `stream`: the stream, and what it already holds of ours.
//! - `election`: questions asked again while a cluster elects a leader.
//! - `window`: the publishes in flight, the fence, acks taken in order.
//! - `limit`: what NATS takes, and which batches are over it.
//! - `error`: [`PublishError`] and the [`RetryPolicy`] after one.

pub mod actor;
mod conflict;
mod core_mode;
mod delivery;
mod election;
mod error;
mod limit;
mod session;
mod stream;
mod window;

pub use actor::{Publisher, PublisherArgs, PublisherMsg, PublisherStatus};
pub use delivery::{Delivery, DeliveryState, DeliveryWatch, FollowingDelivery, Stall};
pub use error::{PublishError, RetryPolicy};
