//! Two poll groups on one device (100 ms and 1 s) sharing its connection,
//! next to a device that never answers: each group's batches come at its
//! own rate and carry only its tags, the slow group's requests are never
//! interleaved with a fast request, and the dead device holds up nobody.

mod poller_rig;

use std::sync::Arc;
use std::time::Duration;

use ingestor_actors::Batch;
use poller_rig::{collecting_buffer, device, listener, spawn_pollers, ScriptedServer};

/// Fast group: `v1`, `v2` (input 0..4, one read). Slow group: three holding
/// tags 20 registers apart (more than `max_gap`): three reads per poll.
fn meter(id: &str, addr: &str) -> String {
    format!(
        "id = \"{id}\"\naddress = \"{addr}\"\npoll_interval = \"1s\"\ntimeout = \"300ms\"\nretries = 0\n\
         [[tags]]\nname = \"e1\"\nregister = \"holding\"\naddress = 200\ntype = \"u16\"\n\
         [[tags]]\nname = \"v1\"\nregister = \"input\"\naddress = 0\ntype = \"u16\"\npoll_interval = \"100ms\"\n\
         [[tags]]\nname = \"e2\"\nregister = \"holding\"\naddress = 220\ntype = \"u16\"\n\
         [[tags]]\nname = \"v2\"\nregister = \"input\"\naddress = 2\ntype = \"u16\"\npoll_interval = \"100ms\"\n\
         [[tags]]\nname = \"e3\"\nregister = \"holding\"\naddress = 240\ntype = \"u16\"\n"
    )
}

fn names(b: &Batch) -> Vec<&str> {
    b.values
        .iter()
        .map(|(n, _)| n.as_str())
        .chain(b.errors.iter().map(|(n, _)| n.as_str()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_groups_keep_their_own_rate_and_never_interleave_on_the_connection() {
    let (l, addr) = listener().await;
    let server = Arc::new(ScriptedServer::default());
    server.spawn(l, false);
    let (silent, silent_addr) = listener().await;
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let healthy = device(&meter("meter", &addr));
    let dead = device(&meter("dead", &silent_addr));

    let (buffer, mut batches) = collecting_buffer().await;
    let t0 = tokio::time::Instant::now() + Duration::from_millis(100);
    let (_links, pollers) =
        spawn_pollers(&[&healthy, &dead], &buffer, t0, Duration::from_secs(1)).await;

    let (mut fast, mut slow, mut dead_batches) = (Vec::new(), Vec::new(), 0);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while slow.len() < 5 {
        let batch = tokio::time::timeout_at(deadline, batches.recv())
            .await
            .expect("slow batches in time")
            .unwrap();
        if batch.device == "dead" {
            dead_batches += 1;
            continue;
        }
        match names(&batch).as_slice() {
            ["v1", "v2"] => fast.push(batch),
            ["e1", "e2", "e3"] => slow.push(batch),
            other => panic!("a batch mixing groups or missing tags: {other:?}"),
        }
    }
    let elapsed = tokio::time::Instant::now().saturating_duration_since(t0);
    for p in &pollers {
        p.stop(None);
    }
    for b in fast.iter().chain(&slow) {
        assert!(b.errors.is_empty(), "{b:?}");
    }
    // 5 slow polls span 4 s: about 40 fast ones. Wide tolerance, no timing.
    eprintln!(
        "fast {} slow {} dead {dead_batches}",
        fast.len(),
        slow.len()
    );
    assert!(
        fast.len() >= 20,
        "only {} fast batches while 5 slow ones came: the fast group is held up",
        fast.len()
    );
    // A slot is polled at most once: never more polls than slots so far.
    let slots = elapsed.as_millis() as usize / 100 + 1;
    assert!(
        fast.len() <= slots,
        "{} fast batches in {elapsed:?}: polled faster than every 100 ms",
        fast.len()
    );
    assert!(dead_batches >= 1, "the dead device reports its trouble too");

    // On the connection, the slow group's three reads always come together.
    let seen = server.seen();
    let mut run = 0;
    let mut runs = Vec::new();
    for read in &seen {
        if read.function == 3 {
            run += 1;
        } else {
            assert_eq!((read.function, read.start, read.count), (4, 0, 3));
            if run > 0 {
                runs.push(run);
            }
            run = 0;
        }
    }
    assert!(runs.len() >= 4, "{runs:?}");
    assert!(
        runs.iter().all(|&r| r == 3),
        "a fast request came between the slow group's reads: runs {runs:?}"
    );
}
