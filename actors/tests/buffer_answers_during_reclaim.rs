//! The front always answers (issue 19, path 10): while the drained spool's
//! compaction is slow (a slow flash card, failpoint `spool::compaction`),
//! the BufferActor keeps answering, so the watchdog's probe never goes
//! unanswered and the service is not stopped as hung. Before, the tick
//! waited on the reclaim's flush and joined the compaction.
#![cfg(feature = "failpoints")]
mod buffer_rig;

use std::time::{Duration, Instant};

use buffer_rig::*;
use ingestor_actors::buffer::{BufferMsg, Lease};
use ingestor_actors::settings::PersistMode;
use ractor::rpc::CallResult;

/// The compaction takes this long here.
const SLOW: Duration = Duration::from_secs(6);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_compaction_never_keeps_the_buffer_from_answering() {
    let scenario = fail::FailScenario::setup();
    let dir = tempfile::tempdir().unwrap();
    let n = 12_000u64; // past the 10 000 deletes that start a reclaim
    {
        let mut store = open(dir.path(), settings(100, PersistMode::Overflow));
        for i in 1..=n {
            store.push(batch(i)).unwrap();
        }
        store.close().unwrap();
    }
    let store = open(dir.path(), settings(100, PersistMode::Overflow))
        .shared()
        .expect("disk thread");
    let (buffer, _) = spawn_buffer(store).await;
    fail::cfg("spool::compaction", &format!("sleep({})", SLOW.as_millis())).unwrap();

    let lease = Lease::new(buffer.clone());
    let mut drained = 0u64;
    while drained < n {
        let got = match buffer
            .call(
                |reply| BufferMsg::Take {
                    lease: lease.id(),
                    max: 1000,
                    reply,
                },
                Some(Duration::from_secs(30)),
            )
            .await
            .unwrap()
        {
            CallResult::Success(b) => b,
            other => panic!("take failed: {other:?}"),
        };
        drained += got.len() as u64;
        lease.ack(got.last().expect("a batch").seq).unwrap();
    }
    // The last ack emptied the spool: the compaction now sleeps on its own
    // thread, and the ticks step through the reclaim around it.
    let started = Instant::now();
    let mut answered = 0;
    while started.elapsed() < SLOW + Duration::from_secs(2) {
        let asked = Instant::now();
        let stats = buffer
            .call(BufferMsg::Stats, Some(Duration::from_secs(2)))
            .await
            .unwrap();
        match stats {
            CallResult::Success(stats) => assert_eq!(stats.disk_batches, 0),
            other => panic!(
                "the buffer did not answer within 2 s during the reclaim \
                 ({:?} into it): {other:?}",
                started.elapsed()
            ),
        }
        answered += 1;
        let left = Duration::from_millis(250).saturating_sub(asked.elapsed());
        tokio::time::sleep(left).await;
    }
    assert!(answered >= 10, "asked {answered} times");
    fail::remove("spool::compaction");
    scenario.teardown();
}
