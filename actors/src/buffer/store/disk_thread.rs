//! The disk thread: the one owner of the `Store`.
//!
//! The `Store` (ring, spool, cursors) lives on one dedicated thread for
//! its whole life, fed by a bounded channel; nobody else holds it, and
//! nothing locks it. Every request is a job the thread runs on the store,
//! in the order sent, answering on a oneshot: the BufferActor (the async
//! front the tree talks to), the supervisor and the service all send jobs,
//! none of them ever blocks an async worker on fjall or an fsync. The
//! thread drains its queue without going back to sleep while jobs wait
//! (many requests per wake), and ends when the last handle is dropped
//! (completion by the last sender): that drop waits (bounded) until the
//! store is dropped too, so the spool's lock is free when it returns.
//!
//! - [`SharedStore`]: a handle to the thread, as it outlives BufferActor
//!   restarts. The service starts it, the supervisor keeps it and hands it
//!   to each BufferActor (`BufferArgs`). Outside `buffer` it is opaque: it
//!   can be cloned, handed on, or asked for a [`StoreControl`].
//! - [`StoreControl`]: what the supervisor and the service may do beside
//!   the BufferActor, and nothing else: [`StoreControl::close`] within a
//!   budget, the one close of every stop path. (Requeueing is the
//!   buffer's own business: leases, `buffer/lease.rs`.)
//!
//! Pushes are jobs of their own kind (`push.rs`): the actor does not wait
//! for them, the thread answers their callers itself, and after every
//! job it runs the group commit once its queue is empty (`GroupCommit`).
//!
//! Encoding a batch's spool record (`record::encode`, about 350 ns) is the
//! front's work where it can be: while the store writes every push through
//! (`persist = "always"`, `"disconnect"` during a stall), `push` encodes
//! the records on the caller's task before queueing them, so the disk
//! thread, the one that cannot be parallel, spends its time on fjall. The
//! thread keeps `encode_ahead` current after every job; a record missing
//! (the mode just changed) is encoded by the store, one not needed is
//! dropped.
//!
//! A job that panics is caught: its caller gets [`DiskThreadGone`] (the
//! actor restarts), and the thread serves the next job. Every store
//! operation leaves the store consistent between fjall calls, as the
//! mutex this replaces assumed of a poisoned lock.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::Store;
use crate::buffer::error::CloseError;
use crate::buffer::push::{Front, GroupCommit, PushJob};
use crate::buffer::record;
use crate::buffer::SpoolError;

/// Jobs waiting for the disk thread at most; a sender waits (async) for room.
const QUEUE: usize = 1024;
/// What the last handle's drop waits for the store to close.
const LAST_DROP_WAIT: Duration = Duration::from_secs(10);

/// What the disk thread runs.
enum Job {
    /// A function on the store, answered on its oneshot ([`SharedStore::run`]).
    Run(Box<dyn FnOnce(&mut Store) + Send>),
    /// Pushes, answered by the thread ([`SharedStore::push`]).
    Push(PushJob),
    /// A (re)started BufferActor ([`SharedStore::attach`]).
    Attach(Front),
}

/// The disk thread did not answer: the job panicked, or the thread is gone.
/// The BufferActor restarts on it; the store is as the last job left it.
#[derive(Debug, thiserror::Error)]
#[error("the buffer's disk thread did not answer (a spool call panicked, see the log above)")]
pub struct DiskThreadGone;

/// A handle to the disk thread that owns the store; cheap to clone.
#[derive(Clone)]
pub struct SharedStore(Arc<Thread>);

/// The one sender of jobs and the thread; dropped with the last handle.
struct Thread {
    jobs: Option<mpsc::Sender<Job>>,
    /// The store writes pushes through: the front encodes their records.
    encode_ahead: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SharedStore {
    /// Starts the disk thread with `store`.
    pub(super) fn start(store: Store) -> std::io::Result<SharedStore> {
        let (jobs, queue) = mpsc::channel(QUEUE);
        let encode_ahead = Arc::new(AtomicBool::new(store.writes_through()));
        let flag = encode_ahead.clone();
        let thread = std::thread::Builder::new()
            .name("ingestor-disk".into())
            .spawn(move || serve(store, queue, &flag))?;
        Ok(SharedStore(Arc::new(Thread {
            jobs: Some(jobs),
            encode_ahead,
            thread: Some(thread),
        })))
    }

    /// The handle for the supervisor and the service (close).
    pub fn control(&self) -> StoreControl {
        StoreControl(self.clone())
    }

    /// Runs `f` on the store on the disk thread, after every job sent
    /// before it, and returns what it returned.
    pub(in crate::buffer) async fn run<T, F>(&self, f: F) -> Result<T, DiskThreadGone>
    where
        T: Send + 'static,
        F: FnOnce(&mut Store) -> T + Send + 'static,
    {
        let (answer, answered) = oneshot::channel();
        self.send(Job::Run(Box::new(move |store| {
            let _ = answer.send(f(store));
        })))
        .await?;
        answered.await.map_err(|_| DiskThreadGone)
    }

    /// Queues pushes behind every job sent before; waits only for room in
    /// the queue. The thread answers the job's caller. Encodes the records
    /// here while the store writes pushes through (see the module doc).
    pub(in crate::buffer) async fn push(&self, mut job: PushJob) -> Result<(), DiskThreadGone> {
        if self.0.encode_ahead.load(Ordering::Relaxed) {
            for item in &mut job.items {
                item.record = Some(record::encode(&item.batch));
            }
        }
        self.send(Job::Push(job)).await
    }

    /// Makes `front` the BufferActor the thread tells about parked Takes.
    pub(in crate::buffer) async fn attach(&self, front: Front) -> Result<(), DiskThreadGone> {
        self.send(Job::Attach(front)).await
    }

    async fn send(&self, job: Job) -> Result<(), DiskThreadGone> {
        let jobs = self.0.jobs.as_ref().ok_or(DiskThreadGone)?;
        jobs.send(job).await.map_err(|_| DiskThreadGone)
    }
}

impl Drop for Thread {
    /// The queue closes; the thread runs what is queued, drops the store
    /// and ends. Waited for (bounded: a hung spool call is left behind,
    /// said in the log), so whoever reopens the spool next finds it free.
    fn drop(&mut self) {
        drop(self.jobs.take());
        let Some(thread) = self.thread.take() else {
            return;
        };
        let deadline = Instant::now() + LAST_DROP_WAIT;
        while !thread.is_finished() {
            if Instant::now() >= deadline {
                tracing::error!(waited = ?LAST_DROP_WAIT,
                    "the buffer's disk thread is still in a spool call; left behind");
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let _ = thread.join();
    }
}

/// The disk thread's loop: one job after another, in the order sent, then
/// the group commit when nothing else waits, until every handle is gone;
/// then the store is dropped here (fjall closes).
fn serve(mut store: Store, mut queue: mpsc::Receiver<Job>, encode_ahead: &AtomicBool) {
    let mut group = GroupCommit::default();
    while let Some(job) = queue.blocking_recv() {
        let ran = catch_unwind(AssertUnwindSafe(|| match job {
            Job::Run(f) => f(&mut store),
            Job::Push(job) => group.push(&mut store, job),
            Job::Attach(front) => group.attach(front),
        }));
        if ran.is_err() {
            // A caller waiting on its answer restarts; a push's caller
            // gets no answer (the inlet resends, its tickets keep one seq).
            tracing::error!("a buffer store operation panicked; its caller gets no answer");
        }
        let committed = catch_unwind(AssertUnwindSafe(|| {
            group.after_job(&mut store, queue.is_empty())
        }));
        if committed.is_err() {
            tracing::error!("the buffer's group commit panicked; its callers get no answer");
        }
        encode_ahead.store(store.writes_through(), Ordering::Relaxed);
    }
}

/// How a close ended: [`StoreControl::close`].
#[derive(Debug)]
pub enum CloseReport {
    /// Ring and pending on disk, synced, clean stop recorded.
    Closed,
    /// Closed, but not everything was kept: what was lost and why
    /// (counted as `dropped{reason="storage_error"}`).
    Incomplete(CloseError),
    /// The close itself failed before anything was written.
    Failed(SpoolError),
    /// The disk thread did not answer within the budget (a spool call that
    /// does not return): what was only in memory could not be written.
    Hung(Duration),
    /// The disk thread is gone (the close panicked).
    Gone,
}

impl CloseReport {
    /// Whether everything was kept.
    pub fn is_clean(&self) -> bool {
        matches!(self, CloseReport::Closed)
    }
}

impl std::fmt::Display for CloseReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CloseReport::Closed => f.write_str("buffer closed: memory written to disk and synced"),
            CloseReport::Incomplete(why) => write!(f, "closing the buffer failed: {why}"),
            CloseReport::Failed(e) => write!(f, "closing the buffer failed: {e}"),
            CloseReport::Hung(budget) => write!(
                f,
                "the buffer's store is held by a call that has not returned for {budget:?} \
                 (a hung spool call): memory could not be written to disk and is lost"
            ),
            CloseReport::Gone => f.write_str("closing the buffer panicked (see the log above)"),
        }
    }
}

/// What the supervisor and the service may do with the store; everything
/// else goes through the BufferActor. A close is a job for the disk
/// thread, queued behind what the BufferActor sent before.
#[derive(Clone)]
pub struct StoreControl(SharedStore);

impl StoreControl {
    /// The one close, for every stop path: nothing in flight will be
    /// confirmed any more, so it is requeued; then ring and pending go to
    /// disk, oldest first as far as they fit, synced, clean stop recorded,
    /// and pushes are refused from here on. A second close repeats the
    /// first one's verdict. Waits at most `budget` for the disk thread.
    pub async fn close(&self, budget: Duration) -> CloseReport {
        let closing = self.0.run(|store| {
            store.nack();
            store.close()
        });
        match tokio::time::timeout(budget, closing).await {
            Ok(Ok(Ok(()))) => CloseReport::Closed,
            Ok(Ok(Err(SpoolError::CloseFailed(why)))) => CloseReport::Incomplete(why),
            Ok(Ok(Err(e))) => CloseReport::Failed(e),
            Ok(Err(DiskThreadGone)) => CloseReport::Gone,
            Err(_) => CloseReport::Hung(budget),
        }
    }
}
