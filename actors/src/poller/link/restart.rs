//! A link's task, restarted after a panic.
//!
//! A link serves every device at its address, so its task is not one
//! poller's: a panic in it (a bug) would end polling for all of them for
//! good (every read answered `LinkError::Closed`). Instead the task catches
//! it, logs it with the link, counts it as a poller restart
//! (`ingestor_actor_restarts_total{actor="poller"}`), and serves the queue
//! again on a fresh connection after a growing pause: the request it was
//! serving fails (`Closed`, a failed read like any other), the ones queued
//! behind it are served.

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures::FutureExt;
use tokio::sync::mpsc;

use super::{serve, Job, Target};
use crate::backoff::Backoff;
use crate::metric_names;

/// The pause before serving again after the n-th panic in a row.
const AFTER_PANIC: Backoff = Backoff {
    min: Duration::from_millis(100),
    max: Duration::from_secs(30),
};

/// Serves `jobs` until every handle is dropped, through panics.
pub(super) async fn serve_restarting(target: Target, mut jobs: mpsc::Receiver<Job>) {
    let mut panics: u32 = 0;
    loop {
        match AssertUnwindSafe(serve(&target, &mut jobs))
            .catch_unwind()
            .await
        {
            Ok(()) => return,
            Err(panic) => {
                let panicked = crate::watched::caught("poller", "link", panic.as_ref());
                metrics::counter!(metric_names::ACTOR_RESTARTS_TOTAL, "actor" => "poller")
                    .increment(1);
                let pause = AFTER_PANIC.after(panics.saturating_add(1));
                tracing::error!(link = target.name(), error = %panicked, ?pause,
                    "link task panicked: its connection is dropped and the link served again (the request it served failed)");
                panics = panics.saturating_add(1);
                tokio::time::sleep(pause).await;
            }
        }
    }
}
