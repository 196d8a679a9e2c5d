//! `spool_reclaim_ratio: R`: allocated bytes of the spool (`du`) a while
//! after a backlog drained through the actor, divided by the peak while it
//! was there (goal ≤ 0.02). Full run: a 1 M backlog, measured 60 s after
//! the drain; smoke run: the small backlog, measured after a few seconds.

use std::path::Path;
use std::time::{Duration, Instant};

use ingestor_actors::buffer::space::allocated_bytes;
use ingestor_actors::buffer::{BufferMsg, Lease};
use ingestor_actors::settings::PersistMode;
use ractor::rpc::CallResult;

use super::{prefill, settings, spawn, GROUP};

/// What the reclaim run measured.
pub(crate) struct Reclaim {
    pub(crate) peak: u64,
    pub(crate) after: u64,
    /// Seconds from the drain until the spool was under max(8 MiB, 2 % of
    /// the peak), if it got there within the wait.
    pub(crate) under_goal_s: Option<f64>,
    pub(crate) wait: Duration,
}

fn du(dir: &Path) -> u64 {
    allocated_bytes(&dir.join("spool")).unwrap_or(0)
}

/// Prefills `n` batches, drains them with Take(1 000) + Ack through the
/// actor, then watches the spool for `wait`.
pub(crate) async fn run(dir: &Path, n: usize, wait: Duration) -> Reclaim {
    prefill(dir, n);
    let mut peak = du(dir);
    let buffer = spawn(dir, settings(GROUP, PersistMode::Overflow)).await;
    let mut done = 0;
    let mut chunks = 0u64;
    let lease = Lease::new(buffer.clone());
    while done < n {
        let got = match buffer
            .call(
                |reply| BufferMsg::Take {
                    lease: lease.id(),
                    max: GROUP,
                    reply,
                },
                None,
            )
            .await
        {
            Ok(CallResult::Success(b)) => b,
            other => panic!("take failed: {other:?}"),
        };
        done += got.len();
        if let Some(b) = got.last() {
            lease.ack(b.seq).expect("ack");
        }
        chunks += 1;
        if chunks.is_multiple_of(50) {
            peak = peak.max(du(dir));
        }
    }
    let drained = Instant::now();
    let goal = (peak / 50).max(8 << 20);
    let mut under_goal_s = None;
    while drained.elapsed() < wait {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if under_goal_s.is_none() && du(dir) <= goal {
            under_goal_s = Some(drained.elapsed().as_secs_f64());
        }
    }
    let after = du(dir);
    buffer.stop(None);
    Reclaim {
        peak,
        after,
        under_goal_s,
        wait,
    }
}

impl Reclaim {
    /// Allocated bytes after the wait over the peak.
    pub(crate) fn ratio(&self) -> f64 {
        self.after as f64 / self.peak.max(1) as f64
    }

    /// The figures behind the ratio, for the detail lines.
    pub(crate) fn detail(&self, n: usize) -> String {
        let mib = |b: u64| b as f64 / f64::from(1 << 20);
        format!(
            "spool reclaim: peak {:.1} MiB, {:.2} MiB {} s after the drain of {n} batches; \
             under max(8 MiB, 2 % of peak) after {}",
            mib(self.peak),
            mib(self.after),
            self.wait.as_secs(),
            self.under_goal_s
                .map_or("never".to_string(), |s| format!("{s:.1} s"))
        )
    }
}
