//! A drained spool gives its space back: within 60 s after the disk tier
//! empties it occupies at most max(8 MiB, 2 % of its peak) on disk
//! (allocated bytes, as `du` counts them), and what comes after (a new
//! batch, a clean restart, a crash, a crash in the middle of the reclaim)
//! loses nothing, brings back nothing published and reuses no seq.
mod buffer_rig;

use std::path::Path;
use std::time::{Duration, Instant};

use buffer_rig::reclaim::*;
use buffer_rig::*;
use ingestor_actors::buffer::{BufferMsg, Lease, Store};
use ingestor_actors::settings::PersistMode;
use ractor::{rpc::CallResult, ActorRef};

/// Takes and acks through the actor as the publisher does, until `n`
/// batches came out; returns their seqs.
async fn drain(buffer: &ActorRef<BufferMsg>, n: usize) -> Vec<u64> {
    let mut seqs = Vec::with_capacity(n);
    let lease = Lease::new(buffer.clone());
    while seqs.len() < n {
        let got = match buffer
            .call(
                |reply| BufferMsg::Take {
                    lease: lease.id(),
                    max: 256,
                    reply,
                },
                None,
            )
            .await
            .unwrap()
        {
            CallResult::Success(b) => b,
            other => panic!("take failed: {other:?}"),
        };
        seqs.extend(got.iter().map(|b| b.seq));
        lease.ack(seqs[seqs.len() - 1]).unwrap();
    }
    seqs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drained_spool_gives_its_space_back_and_seq_continues() {
    let dir = tempfile::tempdir().unwrap();
    let n = 50_000u64;
    let peak = fill(dir.path(), n);
    assert!(peak > 20 * MIB, "a backlog of tens of MiB (peak {peak})");
    let store = Store::open(dir.path(), settings(1_000, PersistMode::Always))
        .unwrap()
        .0
        .shared()
        .expect("disk thread");
    // No NATS here: in `persist = "always"` the connection state changes nothing.
    let buffer = spawn_buffer(store.clone()).await.0;

    let got = drain(&buffer, n as usize).await;
    assert_eq!(
        got,
        (1..=n).collect::<Vec<_>>(),
        "every seq once, ascending"
    );
    let drained = Instant::now();
    let (mut now, mut gauge) = (u64::MAX, u64::MAX);
    while now > limit(peak) || gauge > limit(peak) {
        assert!(
            drained.elapsed() < Duration::from_secs(60),
            "60 s after the drain the spool takes {now} bytes (gauge {gauge}), peak {peak}, \
             goal {}",
            limit(peak)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        now = spool_bytes(dir.path());
        gauge = ractor::call!(buffer, BufferMsg::Stats).unwrap().disk_bytes;
    }
    eprintln!(
        "reclaim: peak {:.1} MiB, after {:.2} MiB, {:.1} s after the drain",
        peak as f64 / MIB as f64,
        now as f64 / MIB as f64,
        drained.elapsed().as_secs_f64()
    );

    // After the reclaim: a new batch goes to disk (persist = "always"),
    // comes out with the next seq and is published once.
    let seq = ractor::call!(buffer, |p| BufferMsg::Push(wide(n + 1).into(), Some(p)))
        .unwrap()
        .unwrap();
    assert_eq!(seq, n + 1, "seq continues after the reclaim");
    assert_eq!(drain(&buffer, 1).await, vec![n + 1]);
    let stats = ractor::call!(buffer, BufferMsg::Stats).unwrap();
    assert_eq!((stats.disk_batches, stats.in_flight), (0, 0));

    // A clean restart after the reclaim continues seq exactly.
    let closed = store.control().close(Duration::from_secs(30)).await;
    assert!(closed.is_clean(), "{closed}");
    buffer.stop_and_wait(None, None).await.unwrap();
    drop(store);
    let mut store = open(dir.path(), settings(1_000, PersistMode::Always));
    assert_eq!(store.stats().next_seq, n + 2, "no gap after a clean stop");
    assert!(
        take_all(&mut store, 100).is_empty(),
        "nothing published comes back"
    );
}

/// Drains `store` (all on disk) through take/ack and runs the tick's
/// reclaim until the spool is back under the goal.
fn drain_and_reclaim(store: &mut Store, data_dir: &Path, n: u64, peak: u64) {
    let got = take_all(store, 256);
    assert_eq!(seqs(&got), (1..=n).collect::<Vec<_>>());
    store.ack(n).unwrap();
    let since = Instant::now();
    while spool_bytes(data_dir) > limit(peak) {
        assert!(since.elapsed() < Duration::from_secs(60), "not reclaimed");
        std::thread::sleep(Duration::from_millis(50));
        store.reclaim_if_due();
    }
}

#[test]
fn batches_written_after_the_reclaim_survive_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let n = 30_000;
    let peak = fill(dir.path(), n);
    let mut store = open(dir.path(), settings(1_000, PersistMode::Disconnect));
    let next = store.stats().next_seq;
    drain_and_reclaim(&mut store, dir.path(), n, peak);
    // Into the truncated journal (and no further: no flush before the crash).
    for i in 0..300 {
        store.push(wide(next + i)).unwrap();
    }
    store.commit().unwrap();
    drop(store); // a crash: no clean stop recorded, memtables not flushed
    let mut store = open(dir.path(), settings(1_000, PersistMode::Disconnect));
    let got = take_all(&mut store, 64);
    assert_eq!(seqs(&got), (next..next + 300).collect::<Vec<_>>());
    assert!(got.iter().zip(next..).all(|(b, i)| n_of(b) == i));
    assert!(store.stats().next_seq > next + 300, "no seq reused");
    assert_eq!(store.stats().disk_batches, 300, "counted exactly");
}

/// `persist = "always"` under steady polling: every poll is on disk until
/// its ack, so after a backlog drained the spool is never empty at a tick
/// (nor at an ack: the newest polls are always in flight). The space must
/// come back all the same, and nothing may be lost or come back.
#[test]
fn always_under_steady_polling_gives_the_space_back_after_a_drain() {
    let dir = tempfile::tempdir().unwrap();
    let n = 30_000;
    let peak = fill(dir.path(), n);
    assert!(peak > 12 * MIB, "a backlog of tens of MiB (peak {peak})");
    let mut store = open(dir.path(), settings(1_000, PersistMode::Always));
    let (mut next, mut delivered) = (n + 1, Vec::new());
    let drained = Instant::now();
    // A step is 50 ms of polling: 4 polls written (synced), everything
    // taken, acked up to the 4 newest (still in flight: their PubAcks are
    // on the way), the tick's work, as the disk thread does it.
    let mut bytes = spool_bytes(dir.path());
    while delivered.len() < n as usize || bytes > limit(peak) {
        assert!(
            drained.elapsed() < Duration::from_secs(90),
            "the spool still takes {bytes} bytes (peak {peak}, goal {}) with {} of {n} drained",
            limit(peak),
            delivered.len().min(n as usize)
        );
        for _ in 0..4 {
            store.push(wide(next)).unwrap();
            next += 1;
        }
        store.commit().unwrap();
        let got = take_all(&mut store, 256);
        delivered.extend(seqs(&got));
        store.ack(store.taken() - 4).unwrap();
        store.sync_if_dirty().unwrap();
        store.refresh_and_retry();
        store.reclaim_if_due();
        std::thread::sleep(Duration::from_millis(50));
        bytes = spool_bytes(dir.path());
    }
    eprintln!(
        "always under steady polling: peak {:.1} MiB, after {:.2} MiB, {:.1} s after the start \
         of the drain",
        peak as f64 / MIB as f64,
        bytes as f64 / MIB as f64,
        drained.elapsed().as_secs_f64()
    );
    assert!(
        store.stats().disk_batches >= 4,
        "the newest polls stayed on disk"
    );
    let fresh: Vec<u64> = (1..next).collect();
    assert_eq!(
        delivered, fresh,
        "every seq once, ascending, through the reclaim"
    );
    // The reclaim kept what was on disk: a crash now loses none of it.
    let in_flight = store.taken() - 3..next;
    drop(store);
    let mut store = open(dir.path(), settings(1_000, PersistMode::Always));
    assert_eq!(
        seqs(&take_all(&mut store, 64)),
        in_flight.collect::<Vec<_>>(),
        "what was unacknowledged at the crash, no more, no less"
    );
}
