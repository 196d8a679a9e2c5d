//! A dead device (one that never answers, one whose port is closed) among
//! twenty healthy ones: the healthy ones keep their schedule.

mod poller_rig;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use ingestor_actors::simulator::Simulator;
use ingestor_actors::Batch;
use poller_rig::{collecting_buffer, device, listener, spawn_pollers};

const INTERVAL_MS: i64 = 400;

fn meter(id: &str, addr: &str, timeout: &str) -> String {
    format!(
        "id = \"{id}\"\naddress = \"{addr}\"\npoll_interval = \"{INTERVAL_MS}ms\"\ntimeout = \"{timeout}\"\nretries = 1\n\
         [[tags]]\nname = \"power\"\nregister = \"input\"\naddress = 10\ntype = \"f32\"\norder = \"CDAB\"\n\
         [[tags]]\nname = \"energy\"\nregister = \"input\"\naddress = 20\ntype = \"u32\"\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_devices_do_not_delay_twenty_healthy_ones() {
    // Twenty healthy slaves, each on its own address.
    let mut healthy = Vec::new();
    let sim_config = device(&meter("sim", "127.0.0.1:1", "1s"));
    let sim = Arc::new(Simulator::new(&[sim_config]));
    for i in 0..20 {
        let (l, addr) = listener().await;
        tokio::spawn(Arc::clone(&sim).serve_tcp(l));
        healthy.push(device(&meter(&format!("ok{i:02}"), &addr, "300ms")));
    }
    // One that accepts and never answers; one whose port is closed.
    let (silent, silent_addr) = listener().await;
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let closed_addr = listener().await.1; // dropped at once: nothing listens there
    let dead = [
        device(&meter("silent", &silent_addr, "1s")),
        device(&meter("closed", &closed_addr, "1s")),
    ];

    let (buffer, mut batches) = collecting_buffer().await;
    let (t0, wall0) = (
        tokio::time::Instant::now() + Duration::from_millis(200),
        Utc::now(),
    );
    let wall0_micros = wall0.timestamp_micros() + 200_000;
    let (_links, pollers) = spawn_pollers(
        &healthy.iter().chain(dead.iter()).collect::<Vec<_>>(),
        &buffer,
        t0,
        Duration::from_secs(2),
    )
    .await;

    let mut seen: HashMap<String, Vec<Batch>> = HashMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let done = |seen: &HashMap<String, Vec<Batch>>| {
        healthy
            .iter()
            .all(|d| seen.get(&d.id).is_some_and(|b| b.len() >= 12))
            && dead
                .iter()
                .all(|d| seen.get(&d.id).is_some_and(|b| b.len() >= 2))
    };
    while !done(&seen) {
        let batch = tokio::time::timeout_at(deadline, batches.recv())
            .await
            .expect("batches in time")
            .unwrap();
        seen.entry(batch.device.clone()).or_default().push(batch);
    }
    for p in pollers {
        p.stop(None);
    }

    // Poll k of a healthy device is due at t0 + k·interval; measure how late it started.
    let mut worst_ms = 0i64;
    for dev in &healthy {
        for (k, batch) in seen[&dev.id].iter().enumerate() {
            assert!(batch.errors.is_empty(), "{batch:?}");
            let lag_ms = (batch.ts_micros - wall0_micros - k as i64 * INTERVAL_MS * 1000) / 1000;
            worst_ms = worst_ms.max(lag_ms);
            assert!(
                lag_ms < 300,
                "{} poll {k} started {lag_ms} ms late: it waited on a dead device",
                dev.id
            );
        }
    }
    eprintln!("worst healthy poll lag: {worst_ms} ms");
    for dev in &dead {
        let batch = &seen[&dev.id][0];
        assert!(batch.values.is_empty());
        assert_eq!(batch.errors.len(), 2, "{batch:?}");
    }
    assert!(
        seen["silent"][0].errors[0]
            .1
            .starts_with("no answer within 1s"),
        "{:?}",
        seen["silent"][0]
    );
    assert!(
        seen["closed"][0].errors[0].1.starts_with("cannot connect"),
        "{:?}",
        seen["closed"][0]
    );
}
