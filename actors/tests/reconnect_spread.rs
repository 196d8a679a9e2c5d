//! Many devices, each on a connection of its own, all on the same schedule
//! (the worst case: one `first_poll`, one interval): their server goes away,
//! every device fails and backs off in step, then the server comes back on
//! the same ports. The reconnects are spread over time by each device's own
//! share of its back-off, not sent in one burst of SYNs.

mod poller_rig;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use poller_rig::{collecting_buffer, device, listener, spawn_pollers, ScriptedServer};
use tokio::net::TcpListener;

const DEVICES: usize = 120;

fn meter(id: &str, addr: &str) -> String {
    format!(
        "id = \"{id}\"\naddress = \"{addr}\"\npoll_interval = \"250ms\"\ntimeout = \"300ms\"\nretries = 0\n\
         [[tags]]\nname = \"power\"\nregister = \"holding\"\naddress = 10\ntype = \"u16\"\n"
    )
}

/// Polls `cond` every 20 ms until it holds or `within` passed.
async fn wait_for(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while !cond() {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_after_the_server_comes_back_are_spread_not_one_burst() {
    let server = Arc::new(ScriptedServer::default());
    let mut addrs = Vec::new();
    let mut serving = Vec::new();
    for _ in 0..DEVICES {
        let (l, addr) = listener().await;
        serving.push(server.spawn(l, false));
        addrs.push(addr);
    }
    let devices: Vec<_> = addrs
        .iter()
        .enumerate()
        .map(|(i, a)| device(&meter(&format!("meter-{i:03}"), a)))
        .collect();
    let (buffer, _batches) = collecting_buffer().await;
    let t0 = tokio::time::Instant::now() + Duration::from_millis(100);
    let (_links, pollers) = spawn_pollers(
        &devices.iter().collect::<Vec<_>>(),
        &buffer,
        t0,
        Duration::from_millis(1_500),
    )
    .await;
    assert!(
        wait_for(Duration::from_secs(10), || server
            .connections
            .load(Ordering::SeqCst)
            == DEVICES)
        .await,
        "every device connected"
    );

    // The cut: listeners and connections gone, every poll fails.
    for task in serving.drain(..) {
        task.abort();
    }
    tokio::time::sleep(Duration::from_millis(3_000)).await;

    // The server comes back on the same ports.
    let back = Arc::new(ScriptedServer::default());
    for a in &addrs {
        let l = TcpListener::bind(a.as_str())
            .await
            .expect("the same port again");
        serving.push(back.spawn(l, false));
    }
    assert!(
        wait_for(Duration::from_secs(15), || back
            .connections
            .load(Ordering::SeqCst)
            >= DEVICES)
        .await,
        "every device reconnected, {} did",
        back.connections.load(Ordering::SeqCst)
    );

    let mut accepted = back.accepted.lock().unwrap().clone();
    accepted.sort();
    let first = accepted[0];
    let offsets_ms: Vec<u128> = accepted
        .iter()
        .map(|t| t.duration_since(first).as_millis())
        .collect();
    let span = offsets_ms[offsets_ms.len() - 1];
    let busiest_ms = offsets_ms
        .chunk_by(|a, b| a == b)
        .map(<[u128]>::len)
        .max()
        .unwrap_or(0);
    eprintln!("{DEVICES} reconnects over {span} ms, at most {busiest_ms} in one millisecond");
    // Without a spread every device reconnects in the same tick (one
    // schedule, one back-off); with it they share out at least the
    // interval. Generous bounds: a stall of the runtime bunches a few.
    assert!(
        span >= 100,
        "reconnects spread over {span} ms only: {offsets_ms:?}"
    );
    assert!(
        busiest_ms <= DEVICES / 4,
        "{busiest_ms} of {DEVICES} reconnects in one millisecond: {offsets_ms:?}"
    );
    for p in pollers {
        p.stop(None);
    }
}
