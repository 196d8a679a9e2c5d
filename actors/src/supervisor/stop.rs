//! Stopping: one child, the children that depend on a failed one, and the
//! whole tree.
//!
//! # Invariants
//! - A stopped child is forgotten first (its id and ref), so its exit is
//!   not taken for a failure; it gets [`STOP_WAIT`] to go, then is left
//!   behind.
//! - The tree stops in an order that loses nothing: pollers first (no new
//!   data); what they handed over reaches the buffer (a bounded wait); the
//!   publisher and the monitor stop; the publisher's last acks land (a call
//!   queued behind them); the store requeues what was in flight and closes
//!   (memory written to disk and synced) on a blocking thread; only then
//!   does the buffer stop. Batches the pollers handed over that no buffer
//!   took before the close are counted as dropped (`storage_error`), never
//!   lost silently.

use std::time::Duration;

use ractor::ActorRef;

use super::actor::{RootSupervisorMsg, RootSupervisorState};
use super::{Child, Exit};
use crate::buffer::BufferMsg;
use crate::metric_names;

/// How long a stopping child may take before it is left behind.
pub(super) const STOP_WAIT: Duration = Duration::from_secs(3);
/// What the tree's close of the store may take (writing the ring and
/// syncing); past it the service's last close reports what was lost.
const CLOSE_BUDGET: Duration = Duration::from_secs(5);

impl RootSupervisorState {
    /// Stops (and forgets) `child`, waiting briefly for it.
    pub(super) async fn stop_child(&mut self, child: Child) {
        if let Some(cell) = self.cell(child) {
            self.ids.remove(&cell.get_id());
            self.clear(child);
            let _ = cell.stop_and_wait(None, Some(STOP_WAIT)).await;
        }
    }

    pub(super) async fn stop_dependents(&mut self, failed: Child) {
        for child in self.children() {
            if child.depends_on(failed) {
                self.stop_child(child).await;
            }
        }
    }

    /// Pollers first (no new data), then the publisher (its in-flight
    /// batches are nacked), then the buffer writes memory to disk and syncs.
    pub(super) async fn shutdown(&mut self, myself: &ActorRef<RootSupervisorMsg>, exit: Exit) {
        if self.stopping {
            return;
        }
        self.stopping = true;
        for key in self.devices.keys() {
            self.stop_child(Child::Poller(key)).await;
        }
        // What the pollers handed over reaches the buffer before it closes.
        if !self.inlet.drained(STOP_WAIT).await {
            tracing::warn!("batches still on their way into the buffer at shutdown");
        }
        self.stop_child(Child::Publisher).await;
        self.stop_child(Child::Monitor).await;
        // Acks the publisher sent before it stopped are still in the
        // buffer's mailbox: a call behind them lets them land before the
        // close (else a confirmed batch stays on disk and goes out again).
        if let Some(buffer) = &self.refs.buffer {
            let _ = ractor::call_t!(buffer, BufferMsg::Stats, STOP_WAIT.as_millis() as u64);
        }
        let closed = self.control.close(CLOSE_BUDGET).await;
        if closed.is_clean() {
            tracing::info!("{closed}");
        } else {
            tracing::error!("{closed}");
        }
        // Batches a poller handed over that no buffer took before the store
        // closed (a hung buffer) can no longer be kept: counted, not silent.
        let lost = self.inlet.unanswered();
        if lost > 0 {
            metrics::counter!(metric_names::BUFFER_DROPPED_TOTAL, "reason" => "storage_error")
                .increment(lost as u64);
            tracing::error!(
                lost,
                "batches handed over by the pollers never reached the buffer before it closed: \
                 lost (counted as storage_error)"
            );
        }
        self.stop_child(Child::Buffer).await;
        let _ = self.exit.send(Some(exit));
        myself.stop(None);
    }
}
