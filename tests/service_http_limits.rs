//! The `/metrics` + `/health` listener cannot be used to starve the
//! service: 1 100 idle connections, more than the process may open files
//! (`ulimit -n 1024`, the usual default), held while NATS restarts and the
//! spool spills, leave it publishing (the reconnect and the spool need
//! descriptors); and a flood of `/health` with the hang detector running
//! changes nothing for polling, publishing or the watchdog.

mod service_rig;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use service_rig::*;

const SMALL_RING: &str = "[buffer]\nmemory_batches = 10\npersist = \"disconnect\"\n";

/// Opens `n` connections to `addr` that never send a byte.
fn idle_connections(addr: &str, n: usize) -> Vec<TcpStream> {
    (0..n)
        .filter_map(|_| TcpStream::connect(addr).ok())
        .collect()
}

#[test]
fn eleven_hundred_idle_connections_leave_the_service_publishing_through_a_nats_restart() {
    let mut nats = NatsServer::start();
    let url = nats.url();
    let plant = Plant::new(&url, SMALL_RING);
    let mut service = plant.start_with_open_files(1024);
    wait_until(Duration::from_secs(20), "data flowing", || {
        service.metric("ingestor_published_total") >= 20.0
    });

    let idle = idle_connections(&plant.metrics, 1100);
    assert!(idle.len() >= 1000, "only {} connections opened", idle.len());
    // NATS goes away: the backlog spills to disk, then the publisher
    // needs a new socket to get rid of it.
    nats.kill();
    wait_until(Duration::from_secs(30), "the spool spilling", || {
        service.metric("ingestor_buffer_batches{tier=\"disk\"}") >= 20.0
    });
    let published = service.metric("ingestor_published_total");
    nats.restart();
    wait_until(
        Duration::from_secs(60),
        "publishing again after the restart, with the idle connections held",
        || service.metric("ingestor_published_total") >= published + 50.0,
    );
    // Held until here.
    drop(idle);
    let log = service.log_text();
    assert!(
        !log.contains("Too many open files"),
        "the service ran out of file descriptors:\n{log}"
    );
    service.wait_backlog_empty(Duration::from_secs(30));
    assert!(service.term(Duration::from_secs(10)).success(), "{log}");
    assert_stream_plus_spool_complete(&url, &plant.config);
}

/// One `GET /health` on a kept-alive connection; false when it failed.
fn get_health(conn: &mut TcpStream) -> bool {
    let request = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
    if conn.write_all(request).is_err() {
        return false;
    }
    let mut buf = [0u8; 4096];
    matches!(conn.read(&mut buf), Ok(n) if n > 0 && buf[..n].starts_with(b"HTTP/1.1 200"))
}

#[test]
fn health_flood_changes_nothing_for_polling_publishing_or_the_watchdog() {
    let nats = NatsServer::start();
    let url = nats.url();
    let plant = Plant::new(&url, "");
    let mut service = plant.start();
    wait_until(Duration::from_secs(20), "data flowing", || {
        service.metric("ingestor_published_total") >= 20.0
    });
    let polls = |s: &Service| {
        s.metric("ingestor_polls_total{device=\"press-01\",result=\"ok\"}")
            + s.metric("ingestor_polls_total{device=\"meter-07\",result=\"ok\"}")
    };
    let (published, polled) = (service.metric("ingestor_published_total"), polls(&service));

    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    let flooders: Vec<_> = (0..8)
        .map(|_| {
            let (stop, answered, addr) = (stop.clone(), answered.clone(), plant.metrics.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let Ok(mut conn) = TcpStream::connect(&addr) else {
                        continue;
                    };
                    while !stop.load(Ordering::Relaxed) && get_health(&mut conn) {
                        answered.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    // Longer than the hang detector's 3 checks of 2 s, twice over.
    let until = Instant::now() + Duration::from_secs(15);
    while Instant::now() < until {
        std::thread::sleep(Duration::from_millis(500));
    }
    let during = (service.metric("ingestor_published_total"), polls(&service));
    stop.store(true, Ordering::Relaxed);
    for f in flooders {
        f.join().unwrap();
    }
    let answered = answered.load(Ordering::Relaxed);
    eprintln!("/health answered {answered} times in 15 s");
    assert!(answered > 1000, "the flood was no flood: {answered}");
    // 2 devices every 100 ms for 15 s: ~300 polls; a stall shows as far fewer.
    assert!(
        during.1 >= polled + 200.0,
        "polling slowed: {polled} -> {}",
        during.1
    );
    assert!(
        during.0 >= published + 200.0,
        "publishing slowed: {published} -> {}",
        during.0
    );
    let log = service.log_text();
    assert!(
        !log.contains("has not answered"),
        "the watchdog saw a silent actor:\n{log}"
    );
    assert_eq!(
        service.metric("ingestor_actor_restarts_total{actor=\"publisher\"}"),
        0.0
    );
    assert!(service.term(Duration::from_secs(10)).success(), "{log}");
    assert_stream_plus_spool_complete(&url, &plant.config);
}
