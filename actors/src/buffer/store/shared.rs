//! Who may touch the `Store`, and how.
//!
//! - [`SharedStore`]: the store as it outlives BufferActor restarts. The
//!   service opens it, the supervisor keeps it and hands it to each
//!   BufferActor (`BufferArgs`). Outside `buffer` it is opaque: it can be
//!   cloned, handed on, or asked for a [`StoreControl`]; only the
//!   BufferActor reads and writes the ring and spool through it.
//! - [`StoreControl`]: what the supervisor and the service may do beside
//!   the BufferActor, and nothing else: requeue the in-flight batches (a
//!   Publisher or BufferActor restarted) and close the store at the end
//!   (ring and pending written to disk and synced, clean stop recorded).
//!
//! Both take the store's lock; a panic in an earlier holder does not make
//! the data unreachable (every operation leaves the store consistent
//! between fjall calls).

use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::{Duration, Instant};

use tokio::task::JoinError;

use super::Store;
use crate::buffer::SpoolError;

/// The store as the supervisor keeps it and hands it to each BufferActor.
#[derive(Clone)]
pub struct SharedStore(Arc<Mutex<Store>>);

impl SharedStore {
    pub(super) fn new(store: Store) -> SharedStore {
        SharedStore(Arc::new(Mutex::new(store)))
    }

    /// The handle for the supervisor and the service (requeue, close).
    pub fn control(&self) -> StoreControl {
        StoreControl(self.clone())
    }

    /// Locks the store (the BufferActor's way in).
    pub(in crate::buffer) fn lock(&self) -> MutexGuard<'_, Store> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the locked store on tokio's blocking pool (fjall calls
    /// block; they never run on the async workers).
    pub(in crate::buffer) async fn blocking<T, F>(&self, f: F) -> Result<T, JoinError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Store) -> T + Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || f(&mut store.lock())).await
    }
}

/// What the supervisor and the service may do with the store; everything
/// else goes through the BufferActor.
///
/// Each call takes the store's lock: it waits for a spool call the
/// BufferActor is running. `requeue` only touches memory; the closes
/// write and fsync, so they run on a blocking thread.
#[derive(Clone)]
pub struct StoreControl(SharedStore);

impl StoreControl {
    fn lock(&self) -> MutexGuard<'_, Store> {
        self.0.lock()
    }

    /// Every in-flight batch goes out again, first, in order (`Nack`): for
    /// a restarted Publisher or BufferActor, whose session's batches no
    /// one will confirm any more.
    pub fn requeue(&self) {
        self.lock().nack();
    }

    /// The tree's stop (blocking: call it on a blocking thread): nothing
    /// in flight will be confirmed any more, so it is requeued; then ring
    /// and pending go to disk, synced, clean stop recorded, and pushes are
    /// refused from here on. An error names what could not be saved; a
    /// second close repeats the first one's verdict.
    pub fn requeue_and_close(&self) -> Result<(), SpoolError> {
        let mut store = self.lock();
        store.nack();
        store.close()
    }

    /// The service's last close, after the tree is gone (blocking): the
    /// store's close as it stands (a repeat of the tree's verdict when the
    /// tree closed it). `None` when a call that never returns (a hung spool
    /// call) holds the store for all of `budget`: then nothing can be
    /// written, and the caller exits rather than waits.
    pub fn close_within(&self, budget: Duration) -> Option<Result<(), SpoolError>> {
        let SharedStore(store) = &self.0;
        let deadline = Instant::now() + budget;
        loop {
            match store.try_lock() {
                Ok(mut store) => return Some(store.close()),
                Err(TryLockError::Poisoned(p)) => return Some(p.into_inner().close()),
                Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(TryLockError::WouldBlock) => return None,
            }
        }
    }
}
