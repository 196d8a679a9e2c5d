//! The demo's status line, every few seconds, and its last words at Ctrl-C:
//! the final counts and what was kept on disk for next time.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ingestor_actors::buffer::{Read, Spool};

use crate::service::{Snapshot, TreeHealth};

const STATUS_EVERY: Duration = Duration::from_secs(3);

/// Unpublished batches: memory (with those waiting for their disk write),
/// disk.
pub(super) fn backlog(s: &Snapshot) -> u64 {
    s.buffer.memory_batches + s.buffer.pending + s.buffer.disk_batches
}

fn line(s: &Snapshot) -> String {
    format!(
        "polled {:>7}  published {:>7}  backlog {:>6} memory / {:>7} disk  NATS {}  devices up {}/{}",
        s.buffer.next_seq.saturating_sub(1),
        s.published,
        s.buffer.memory_batches + s.buffer.pending,
        s.buffer.disk_batches,
        if s.nats_connected { "connected" } else { "DOWN" },
        s.devices_up,
        s.devices
    )
}

/// The latest snapshot that had numbers, for the final line. Locked only to
/// read or replace it.
pub(super) type Latest = Arc<Mutex<Option<Snapshot>>>;

/// Takes a snapshot and keeps it in `latest` when the tree answered.
async fn record(health: &TreeHealth, latest: &Latest) -> Option<Snapshot> {
    let s = health.snapshot().await;
    if s.buffer.next_seq == 0 {
        // The buffer did not answer (restarting, or the tree is stopping):
        // no numbers rather than zeros.
        return None;
    }
    *latest.lock().unwrap_or_else(PoisonError::into_inner) = Some(s.clone());
    Some(s)
}

/// On SIGINT/SIGTERM (which also stop the service), one last snapshot
/// while the tree still answers: the final line's counts.
pub(super) async fn on_stop(health: TreeHealth, latest: Latest) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return;
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    let _ = record(&health, &latest).await;
}

/// Prints the status line until aborted. `hint` is printed the first time
/// NATS is seen down (and again after it was up), unless the demo's own
/// server is down on purpose (`None`).
pub(super) async fn lines(health: TreeHealth, hint: Option<String>, latest: Latest) {
    let mut every = tokio::time::interval(STATUS_EVERY);
    every.tick().await; // the first tick is immediate: give the tree a moment
    let mut warned = false;
    loop {
        every.tick().await;
        let Some(s) = record(&health, &latest).await else {
            continue;
        };
        println!("{}", line(&s));
        match &hint {
            Some(hint) if !s.nats_connected && !warned => {
                warned = true;
                println!("{hint}");
            }
            _ if s.nats_connected => warned = false,
            _ => {}
        }
    }
}

/// What the spool in `data_dir` holds once the service has stopped.
pub(super) struct Kept {
    batches: u64,
    bytes: u64,
    oldest: Option<u64>,
    newest: Option<u64>,
    /// The last seq handed out, known when the service stopped cleanly.
    last_seq: Option<u64>,
}

impl Kept {
    /// What a previous run left, for the banner; `None` when nothing.
    pub(super) fn left_by_last_run(&self) -> Option<String> {
        (self.batches > 0).then(|| {
            format!(
                "{} batches kept on disk from last time (seq {}..{}): they go out first",
                self.batches,
                self.oldest.unwrap_or(0),
                self.newest.unwrap_or(0)
            )
        })
    }
}

/// Reads the spool the stopped service left (on a blocking thread).
pub(super) async fn kept_on_disk(data_dir: PathBuf) -> Result<Kept, String> {
    tokio::task::spawn_blocking(move || -> Result<Kept, String> {
        let (mut spool, report) = Spool::open(&data_dir).map_err(|e| e.to_string())?;
        let last_seq = report
            .skipped
            .is_none()
            .then(|| report.next_seq.saturating_sub(1));
        // Only looks: a damaged record stays where it is.
        spool.set_read_only();
        let oldest = match spool.oldest().map_err(|e| e.to_string())? {
            Some(Read::Batch(b, _)) => Some(b.seq),
            Some(Read::Quarantined(seq, _) | Read::Damaged(seq, _)) => Some(seq),
            None => None,
        };
        let newest = spool.newest_seq().map_err(|e| e.to_string())?;
        Ok(Kept {
            batches: spool.live_count(),
            bytes: spool.live_bytes(),
            oldest,
            newest,
            last_seq,
        })
    })
    .await
    .map_err(|e| e.to_string())?
}

/// The last lines: the final counts (the last snapshot, taken as the stop
/// began) and what the stopped service left on disk for next time (read
/// back from the spool).
pub(super) fn print_final(last: Option<Snapshot>, kept: Result<Kept, String>, data_dir: &Path) {
    if let Some(mut s) = last {
        if let Ok(k) = &kept {
            // Pollers ran on for a moment after the snapshot: what they
            // polled then was published or is on disk now.
            let last = k.last_seq.unwrap_or(0).max(k.newest.unwrap_or(0));
            let polled_since = (last + 1).saturating_sub(s.buffer.next_seq);
            let backlog = s.buffer.memory_batches + s.buffer.pending + s.buffer.disk_batches;
            let published_since = (backlog + polled_since).saturating_sub(k.batches);
            s.buffer.next_seq = s.buffer.next_seq.max(last + 1);
            s.published += published_since;
        }
        println!(
            "final: polled {} (seq 1..{}, all runs), published {} this run",
            s.buffer.next_seq.saturating_sub(1),
            s.buffer.next_seq.saturating_sub(1),
            s.published
        );
    }
    match kept {
        Ok(k) if k.batches == 0 => {
            println!("kept on disk for next time: nothing, NATS has every batch")
        }
        Ok(k) => println!(
            "kept on disk for next time: {} batches ({} bytes), seq {}..{}, in {}: \
             they go out first, oldest first, when the demo or the service starts again",
            k.batches,
            k.bytes,
            k.oldest.map_or_else(|| "?".into(), |s| s.to_string()),
            k.newest.map_or_else(|| "?".into(), |s| s.to_string()),
            data_dir.join("spool").display()
        ),
        Err(e) => println!(
            "kept on disk for next time: cannot read the spool in {} ({e}); \
             `ingestor spool stats -c {}` shows it",
            data_dir.display(),
            super::DEMO_CONFIG
        ),
    }
}
