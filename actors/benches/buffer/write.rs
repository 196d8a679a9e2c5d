//! Our write measurements: groups in lock-step (`ours_write`, the ratio's
//! side), and writes as a plant makes them (`ours_write_streaming`): pushes
//! keep coming, each waiting for its own synced reply, `window` outstanding
//! at any time (a sliding window, not groups in lock-step), where a
//! pipelined group commit would show.

use std::collections::VecDeque;
use std::path::Path;
use std::time::Instant;

use ingestor_actors::buffer::{BufferMsg, PushError, INLET_WINDOW};
use ingestor_actors::settings::{BufferSettings, PersistMode};
use ingestor_actors::EncodedBatch;
use ractor::concurrency::OneshotReceiver;
use ractor::ActorRef;

use super::{bare, batch, records, settings, spawn, tmp, GROUP};

/// The ratio's two sides, one after the other on fresh spools: ours
/// (`ours_write`, `persist = "always"`, chunks as the inlet sends) and bare
/// fjall writing the same records; batches/s each.
pub fn ours_and_bare(rt: &tokio::runtime::Runtime, n: usize) -> (f64, f64) {
    let (a, b) = (tmp("ours-write"), tmp("bare-write"));
    let ours = rt.block_on(ours_write(
        a.path(),
        n,
        settings(10_000, PersistMode::Always),
        Pushes::Chunks,
    ));
    let bare = bare::bare_write(b.path(), n, &records());
    (ours, bare)
}

/// `ours_write_streaming` of `n` batches on a fresh spool (`always`),
/// `GROUP` outstanding.
pub fn streamed(rt: &tokio::runtime::Runtime, n: usize) -> f64 {
    let a = tmp("ours-stream");
    rt.block_on(async {
        let buffer = spawn(a.path(), settings(10_000, PersistMode::Always)).await;
        let batches = (1..=n as u64).map(batch).collect();
        let rate = ours_write_streaming(&buffer, batches, GROUP).await;
        buffer.stop(None);
        rate
    })
}

/// Batches/s from the first push to the last synced reply.
pub async fn ours_write_streaming(
    buffer: &ActorRef<BufferMsg>,
    batches: Vec<EncodedBatch>,
    window: usize,
) -> f64 {
    let n = batches.len();
    let mut outstanding: VecDeque<OneshotReceiver<Result<u64, PushError>>> = VecDeque::new();
    let start = Instant::now();
    for b in batches {
        if outstanding.len() >= window {
            if let Some(rx) = outstanding.pop_front() {
                rx.await.expect("reply").expect("accepted");
            }
        }
        let (tx, rx) = ractor::concurrency::oneshot();
        buffer
            .cast(BufferMsg::Push(b, Some(tx.into())))
            .expect("cast");
        outstanding.push_back(rx);
    }
    for rx in outstanding {
        rx.await.expect("reply").expect("accepted");
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// How pushes reach the actor.
#[derive(Clone, Copy)]
pub enum Pushes {
    /// `PushMany` of `INLET_WINDOW` batches, as the inlet sends under load.
    Chunks,
    /// One `Push` message per batch.
    Single,
}

/// Batches/s pushing `n` through the actor, `GROUP` outstanding at a time.
/// (With `s` = a ring that holds everything in `overflow`: the pushes alone,
/// no disk, to show what the actor's push path costs.)
pub async fn ours_write(dir: &Path, n: usize, s: BufferSettings, how: Pushes) -> f64 {
    let buffer = spawn(dir, s).await;
    let chunk = match how {
        Pushes::Chunks => INLET_WINDOW,
        Pushes::Single => 1,
    };
    // Making batches is the pollers' work: only push-to-accepted is timed.
    let mut timed = std::time::Duration::ZERO;
    let mut sent = 0u64;
    while (sent as usize) < n {
        let group: Vec<EncodedBatch> = (0..GROUP.min(n - sent as usize))
            .map(|i| batch(sent + i as u64 + 1))
            .collect();
        sent += group.len() as u64;
        let start = Instant::now();
        // Pollers push without waiting; the group's last push asks for its
        // reply, which comes once it (and so every push before it: commits
        // are in order) is synced to disk.
        let mut group = group.into_iter().peekable();
        loop {
            let part: Vec<EncodedBatch> = group.by_ref().take(chunk).collect();
            if group.peek().is_some() {
                let msg = match how {
                    Pushes::Chunks => BufferMsg::PushMany(part, None),
                    Pushes::Single => BufferMsg::Push(part.into_iter().next().expect("one"), None),
                };
                buffer.cast(msg).expect("cast");
                continue;
            }
            let results = match how {
                Pushes::Chunks => ractor::call!(buffer, |p| BufferMsg::PushMany(part, Some(p))),
                Pushes::Single => ractor::call!(buffer, |p| BufferMsg::Push(
                    part.into_iter().next().expect("one"),
                    Some(p)
                ))
                .map(|r| vec![r]),
            };
            for r in results.expect("reply") {
                r.expect("accepted");
            }
            break;
        }
        timed += start.elapsed();
    }
    let rate = n as f64 / timed.as_secs_f64();
    buffer.stop(None);
    rate
}
