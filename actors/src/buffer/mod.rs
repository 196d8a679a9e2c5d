//! The store-and-forward buffer: every batch waits here until NATS confirmed it.
//!
//! # Design note (keep in step with the code)
//!
//! **Tiers.** A memory *ring* (`store/ring.rs`, `Ring`: the ring, the
//! batches waiting for their group commit, the drop policy) holds the
//! newest batches (up to `memory_batches`); a fjall *spool* under
//! `<data_dir>/spool` holds the oldest. Invariant: every batch on disk has a smaller `seq` than every batch
//! in the ring, so replay is disk first, then ring, strictly ascending. The
//! ring only ever moves its *oldest* batches to disk, and write-through modes
//! only write while the ring is empty, which keeps the invariant (in
//! `disconnect` a stall first moves the whole ring to disk).
//!
//! **On disk.** Keyspace `batches`: key = seq as 8 bytes big-endian, value =
//! a versioned, checksummed record (`record`): format 3 (written) holds
//! the batch's payload body compactly (its skeleton, binary numbers, the
//! ts as a mark: `record/compact.rs`), read back to the exact body the
//! poller encoded; format 2 (the body as encoded for NATS, handed out as
//! read) and format 1 (rkyv, encoded on the way out) are still read. All
//! three are frozen. Keyspace
//! `meta`: `seq_reserved`, `seq_next_clean`, `acked`, `live_count`,
//! `live_bytes` (the counters change in the same write batch as the records
//! they count). Keyspace `quarantine`: records that failed their checksum or
//! validation, moved there on read, counted in `ingestor_buffer_corrupt_total`,
//! and batches set aside as too big (below), counted in
//! `ingestor_buffer_set_aside_total`; never deleted and never published. `<data_dir>/ingestor.lock` is held
//! (OS file lock) while a process has the spool open: a second one fails.
//!
//! **Cursors** (`store/delivery/`, `Delivery`). `taken`: highest seq handed to the publisher; `acked`:
//! highest seq NATS confirmed. In flight = (acked, taken]. *Take* reads from
//! `taken + 1` (a range seek, so tombstones of published batches below are
//! never walked — fjall issue #115), and hands out ring batches only once
//! every disk record up to the newest was handed out or set aside (so
//! `taken` never steps over unread disk records); *Ack(S)* deletes
//! everything ≤ S in one write batch and moves `acked`, persisted with it;
//! *Nack* (the buffer's own, never a message: **leases**, `lease.rs`)
//! sets `taken` back to `acked`: a Take under a newer lease than the
//! holder's, or the holder dropping its lease, requeues; a Take under an
//! older or ended lease gets nothing; an Ack names its lease and is applied
//! whichever session got it (a confirmation is true), never beyond `taken`. A record is deleted **only** by an
//! Ack (NATS confirmed it) or moved to quarantine (counted). A Take whose
//! read is cut short by an error steps `taken` only over what it read (the
//! cursor moves to `disk_newest` only when no record is left above it).
//! An Ack's deletes and `acked` are written to OS buffers and synced by the
//! next tick: a power cut costs at most the last second of acks, whose
//! batches are handed out again and found in the stream by the
//! publisher's read-back (`publisher::stream`), never stored twice.
//!
//! **Set aside, never stuck** (`store/set_aside.rs`). One operation,
//! `Store::set_aside(seq, reason)`, takes a batch out of delivery for good:
//! kept, never handed out again (also after a Nack), counted in
//! `ingestor_buffer_set_aside_total{reason}` and logged with seq, size and
//! the limit. `too_big`: the Publisher says so (`BufferMsg::SetAside`,
//! sent before any Ack of a higher seq); the batch moves to `quarantine`
//! (from the ring it is written there, synced; if that fails it is held in
//! memory and written by a later tick or the close). `unreadable`: a read
//! at the cursor that fails with an I/O error (not damage) 3 times over at
//! least 1 s (the tick retries a stuck Take every second) sets aside the
//! records up to the next readable one; a record that cannot be read stays
//! in place in `batches`, the cursor steps over it and an ack does not
//! delete it. A spool that is being reopened or is in `Error` is not a bad
//! record: only retried. `ingestor_buffer_oldest_age_seconds` keeps
//! counting while the oldest record cannot be read.
//!
//! **Space given back** (`spool/reclaim.rs`, `store/reclaim.rs`). A
//! delete is a tombstone; the bytes stay in tables and in fjall's journal.
//! When an ack drains the spool after enough deletes (10 000, or any with
//! more than 4 MiB allocated, or any after it was full), `batches` is
//! flushed and major-compacted on a thread of its own (never a second one
//! while the first one's reclaim is still due); the ticks after it
//! then write `meta` and rotate every keyspace's memtable without waiting
//! (fjall drops the replaced tables), one step per tick until a step finds
//! those flushes done; that step flushes what came in since, waiting (at
//! most 1 MiB), and only then closes the database, truncates the journal
//! (everything in it is in tables by then) and reopens. *Drained* means
//! at most 1 024 records left on disk: in `persist = "always"` every poll
//! is on disk until its ack, so under steady polling the spool is never
//! empty; records written meanwhile are in tables before the truncation,
//! kept like any other. No tick waits on the compaction thread or on more
//! than that last small flush, so the actor answers the watchdog's probe
//! throughout; a backlog on disk again (more than 1 024 records) calls the
//! reclaim off. Goal: within 60 s of the drain at most max(8 MiB, 2 % of
//! the peak). Crash-safe at every step: before the truncation the journal
//! replays onto tables that already hold it, after it the tables hold
//! everything; `meta` and `quarantine` are flushed, never rewritten, so
//! `acked`, the counters, the seq reservation and quarantined records
//! survive as they were. A failure after the close
//! leaves the spool `Error` until the tick's reopen succeeds.
//!
//! **Write first, forget second.** A batch leaves the ring or `pending`
//! only after the write holding it succeeded; nothing on disk is deleted to
//! make room. A failed write leaves every batch where it was. A write not
//! synced yet is also kept in memory until the tick's fdatasync succeeds
//! (`store/unsynced.rs`, at most 16 MiB: past that the store syncs): after
//! a failed sync the reopen writes those records again, synced, before
//! the cursor hands out anything from disk, so the cursor never steps over
//! a record a failed sync lost (acknowledged and quarantined ones are
//! never brought back).
//!
//! **Full and failed spool** (`store/spill.rs`). A write that would make
//! the spool occupy more than `disk_max` (allocated bytes of all its files:
//! `space`), leave less than `disk_min_free` on its filesystem, or that
//! fails with ENOSPC puts the store in `SpoolState::Full`; any other write
//! error in `Error` (fjall may be poisoned: the database is closed and
//! reopened before the next write). The transitions are one enum,
//! `store/health.rs` (`DiskHealth`: `Ok`, `Full { reopen }`,
//! `Failed { reopen }`). In either state batches stay in memory:
//! the ring keeps the newest `memory_batches` not in flight and
//! `when_disk_full` drops the rest (`drop_oldest`: the oldest not in flight;
//! `drop_newest`: the incoming), counted in
//! `ingestor_buffer_dropped_total{reason}`. The buffer's one-second tick
//! measures again and goes back to writing when there is room; the actor is
//! never restarted for it. One log line on entering, one on leaving.
//!
//! **Damage.** A record failing our checksum or format is moved to
//! `quarantine` (one record). A block fjall cannot read (checksum mismatch)
//! is stepped over: a binary search of range seeks finds the first readable
//! key after it; the seqs in between are logged as a range, counted in
//! `ingestor_buffer_corrupt_total` (one per seq of the range), left in
//! place and deleted (tombstoned) with the Ack that passes them; the live
//! counters are reset once everything on disk is acknowledged.
//!
//! **Journal** (`spool/journal.rs`). A journal fjall refuses to replay is
//! set aside (`*.jnl.damaged`); a torn or garbled tail fjall cuts off
//! itself. A clean close flushes every memtable (and a start flushes the
//! removal of the clean mark), so after a clean stop the journal holds
//! nothing the tables lack: losing it loses no batch, no ack and no clean
//! mark (0 counted, exactly). After a crash what the journal held cannot
//! be known (it is mixed with the ring the crash lost and seqs never handed
//! out): the range up to the reservation is logged, not counted as
//! corrupt; the set-aside counts in `ingestor_spool_errors_total{op="open"}`.
//!
//! **Into the buffer** (`inlet`). Pollers push through a bounded
//! `BufferInlet`: a queue plus a pump that hands the buffer what waits in
//! the queue as `PushTicketed` chunks (`push`: one message, one job on the
//! disk thread and one reply per chunk, a seq and a result per batch, in
//! order; the actor does not wait for the job, the disk thread answers it
//! and runs the group commit once its queue is empty), holds
//! the batches while the buffer restarts and resends what a dying actor
//! left unanswered; what finds no room within a second is counted as
//! `dropped{reason="storage_error"}`.
//!
//! **One poll, one seq** (`store/tickets.rs`). The inlet numbers every
//! batch (a ticket, per inlet); the store, which outlives the actor,
//! remembers per inlet the next ticket it expects and the last answers, so
//! a batch resent after an actor restart is answered with the seq it got
//! the first time and is not accepted twice.
//!
//! **One owner** (`store/disk_thread.rs`). The service opens the `Store`
//! and hands it to its disk thread, a dedicated thread that owns it for
//! its whole life and runs the jobs sent on a bounded channel one after
//! another, in order, many per wake; nothing else holds the store and
//! nothing locks it. The handle (`SharedStore`, opaque outside) goes to
//! the supervisor, which gives it to each BufferActor it starts: a
//! restarted actor finds the ring as it was. The BufferActor is the thin
//! async front: it turns messages into jobs and never blocks an async
//! worker. The supervisor and the service hold a `StoreControl` with the
//! one thing they may do: `close(budget) -> CloseReport`, the one close
//! of every stop path (the tree's stop, then the service's last
//! word, which repeats the tree's verdict or closes what the tree could
//! not). A job that panics costs its caller the answer (the actor
//! restarts), not the store.
//!
//! **Deliverable** (`persist = "disconnect"`). Whether to write through is
//! decided by whether batches are being *confirmed*, not by the TCP link:
//! a server that answers but cannot store keeps the link up. The one source
//! is the Publisher's delivery watch (`crate::publisher::DeliveryWatch`),
//! which the BufferActor follows (`Store::set_deliverable`): confirming
//! once the running session had a batch confirmed (or opened its stream
//! with the buffer empty); stalled from the start, at every session's end
//! (no stream, no leader, a refusal, an ack timeout, the connection lost),
//! when a session begins, when the Publisher is gone, and as soon as the
//! oldest publish in flight has waited 1 s unanswered (a paused server, a
//! socket that died silently). A stall moves the ring to disk at once. After
//! the first confirmation new batches are still written through while the
//! ring is empty and the spool holds a backlog (`Store::writes_through`):
//! a drain can take long (a slow uplink), and polls made meanwhile must
//! not wait in memory behind it, where a crash or a power cut would take
//! them all. Once an ack empties the spool the next push commits what waits
//! and new batches stay in memory again. Without a Publisher (tests,
//! offline tools) the buffer counts as stalled.
//!
//! **Replies.** A push is answered with its seq or a `PushError` (closed;
//! no seq could be reserved; dropped by its group commit, per batch a
//! `Committed`); errors are typed and `Clone` (`error.rs`).
//!
//! **seq.** Assigned on acceptance, from 1, +1 per batch, never reused. A
//! reservation is synced ahead (65 536 at a time) before any seq beyond it
//! is handed out: first in place into `<data_dir>/seq_reserved` (a file of
//! fixed length laid out at the start, so the write needs no new block and
//! a full disk cannot refuse it), then into `meta` (`seq_reserved`); a
//! start takes the larger. The next block is reserved while half of the
//! current one is left; a reservation that fails is retried after the
//! tick while reserved seqs last, so a failing or full disk costs no
//! reading for at least 32 768 batches (the store turns full or failed as
//! for any write, and `when_disk_full` applies). Only a batch no
//! reservation covers is refused (`storage_error`). A clean close stores `seq_next_clean` and the
//! next start continues exactly there (no gap). After a crash the next start
//! continues past the whole reservation, because any seq up to it may have
//! left the process (JetStream de-duplication would swallow a reused one),
//! and logs the skipped range.
//!
//! **Disk cap.** `disk_max` bounds what the spool occupies on disk (see
//! above); `ingestor_buffer_disk_bytes` shows the same measure. The
//! directory walk runs on the tick's blocking thread, once a second; between
//! walks the bytes written are added to the last measurement.
//!
//! # What each `persist` mode survives
//!
//! - `overflow` — disk only when the ring is full (spills of many batches per
//!   write, flushed to OS buffers). A clean stop (SIGTERM) writes and syncs
//!   the ring: nothing lost. A process crash (`kill -9`, panic abort) loses
//!   the ring (up to `memory_batches` batches); spilled batches survive. Power
//!   loss may also lose spills of the last second.
//! - `disconnect` — as `overflow` while batches are being confirmed; while
//!   they are not (NATS unreachable, no stream or no leader, a refusal,
//!   acks overdue: see *Deliverable* below) every batch is written through
//!   to disk (flushed to OS buffers on write) and the ring is moved to disk
//!   the moment delivery stalls; after it, batches are written through
//!   until the backlog has drained. A process crash while delivery is
//!   stalled or a backlog drains loses nothing accepted; while batches are
//!   confirmed and the spool is empty it loses the ring, which then holds
//!   at most about a second of polls (what was sent and is not yet
//!   confirmed, and what waits to be sent). Power loss loses at most the
//!   last second (the spool is fsynced every second while dirty), measured
//!   by `tests/service_power_cut.rs`.
//! - `always` — every batch is written and fdatasync'ed before it counts as
//!   accepted (group commit: batches arriving together share one sync;
//!   `ingestor_batches_total` counts it after the sync).
//!   Survives process crash and power loss; costs an fsync per group.
//!
//! A hung actor is not a crash: the service notices it (no answer for 3
//! checks, `src/service/watchdog.rs`), stops the tree and closes the store
//! (ring written and synced) itself, and exits 1; only a spool call that
//! never returns, keeping the disk thread busy, still loses the ring.
//!
//! In every mode a full or failed spool keeps batches in memory only (see
//! above): a crash then loses the ring. A stop writes the ring oldest
//! first, as much of it as fits under `disk_max` and `disk_min_free`
//! (halving the write until one fits, `store/spill.rs`), and exits 1 saying
//! how many batches it could not keep.
//!
//! Acknowledgements (deletes, `acked`) are synced by the tick in every mode:
//! after a power cut at most the last second of them is lost, and those
//! batches, already in the stream, are found there and not sent again.
//!
//! fjall calls block: they run on the disk thread, never on the async
//! workers.
//!
//! # Files
//! - [`actor`]: the BufferActor, the async front (`BufferArgs`,
//!   `BufferMsg`, `impl Actor`): messages in, jobs for the disk thread out.
//! - `inlet`: the pollers' way in (a bounded queue, tickets, resends).
//! - `push`: a chunk of pushes, answered once; the group commit, run by
//!   the disk thread after its queue empties (`GroupCommit`).
//! - `lease`: [`Lease`], a publishing session's right to take and ack.
//! - `store/`: the [`Store`], one synchronous object on its disk thread,
//!   made of one type per concept:
//!   - `disk_thread`: the one owner; [`SharedStore`], [`StoreControl`],
//!     `close(budget) -> CloseReport`.
//!   - `mod`: the `Store` itself: push, close, stats, write-through.
//!   - `ring`: the memory tier, `Ring`: the ring, `pending` (waiting for
//!     the group commit), the drop policy (`memory_batches`,
//!     `when_disk_full`) and its counters.
//!   - `delivery/`: `Delivery`, the cursors (`taken`, `acked`), the
//!     in-flight records on disk and the leases; `cursor` (Take, Ack),
//!     `leases` (who holds what is in flight).
//!   - `health`: disk health, one enum (`DiskHealth`).
//!   - `lifecycle`: open or closed, one enum (`Lifecycle`: the seq
//!     reservation's retry while open, the close's verdict once closed);
//!     `seqs`: the seq reservation ahead.
//!   - `spill`: writing to disk, full/failed and the way back.
//!   - `unsynced`, `tickets`, `set_aside`, `reclaim`, `gaps`: the records
//!     of a failed sync, one poll one seq, set aside never stuck, space
//!     given back, gap events.
//! - `spool/`: the fjall database ([`Spool`]: its opening and tuning,
//!   keyspaces, reads, the seq reservation, the journal, the reclaim's
//!   compaction).
//! - `record`: the frozen record formats (`record/compact*`: format 3's body); `space`: bytes on disk and free.
//! - `error`: [`SpoolError`], [`PushError`], [`CloseError`], [`SpoolState`].

pub mod actor;
mod error;
mod inlet;
mod lease;
mod push;
pub mod record;
pub mod space;
pub mod spool;
mod store;

pub use actor::{BufferActor, BufferArgs, BufferMsg};
pub use error::{CloseError, CommitError, PushError, SpoolState};
pub use inlet::{BufferInlet, InletTarget, INLET_WINDOW};
pub use lease::{Lease, LeaseId};
pub use push::PushResult;
pub use spool::{OpenReport, Read, Spool, SpoolError};
pub use store::{
    BufferStats, CloseReport, Committed, DiskThreadGone, SetAsideReason, SharedStore, Store,
    StoreControl,
};
