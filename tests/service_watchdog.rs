//! systemd notify protocol against a NOTIFY_SOCKET the test binds itself:
//! READY=1 once the tree is up, WATCHDOG=1 while every actor answers, no
//! more pings once an actor hangs, and then, before systemd's watchdog
//! would fire, STOPPING=1 and exit 1: the service stops itself (memory to
//! disk) and systemd's `Restart=on-failure` starts it again.
#![cfg(feature = "fault-injection")]
mod service_rig;

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use service_rig::*;

/// Datagrams received within `window`.
fn receive_for(socket: &UnixDatagram, window: Duration) -> Vec<String> {
    let deadline = Instant::now() + window;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        if let Ok(n) = socket.recv(&mut buf) {
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    got
}

#[test]
fn watchdog_pings_stop_and_the_service_stops_itself_when_an_actor_hangs() {
    let nats = NatsServer::start();
    let plant = Plant::new(&nats.url(), "");
    let path = plant.dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    let mut service = plant.start_with_env(&[
        ("NOTIFY_SOCKET", path.to_str().unwrap()),
        ("WATCHDOG_USEC", "1000000"),
    ]);
    let healthy = receive_for(&socket, Duration::from_secs(3));
    assert!(
        healthy.iter().any(|m| m.contains("READY=1")),
        "no READY=1: {healthy:?}"
    );
    let pings = healthy.iter().filter(|m| m.contains("WATCHDOG=1")).count();
    assert!(
        pings >= 3,
        "expected a ping every 0.5 s while healthy, got {pings}"
    );

    service.fault("buffer", "hang");
    // Everything that arrives until the process exits, with its time.
    let started = Instant::now();
    let mut seen: Vec<(Duration, String)> = Vec::new();
    let mut buf = [0u8; 4096];
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    while started.elapsed() < Duration::from_secs(45) {
        if let Ok(n) = socket.recv(&mut buf) {
            seen.push((
                started.elapsed(),
                String::from_utf8_lossy(&buf[..n]).into_owned(),
            ));
        }
        if seen.iter().any(|(_, m)| m.contains("STOPPING=1")) {
            break;
        }
    }
    let status = service.wait(Duration::from_secs(30));
    assert_eq!(status.code(), Some(1), "{}", service.log_text());
    let stopping = seen
        .iter()
        .find(|(_, m)| m.contains("STOPPING=1"))
        .map(|(t, _)| *t)
        .unwrap_or_else(|| panic!("no STOPPING=1: {seen:?}"));
    let last_ping = seen
        .iter()
        .filter(|(_, m)| m.contains("WATCHDOG=1"))
        .map(|(t, _)| *t)
        .max()
        .unwrap_or_default();
    // Pings stop while the checks go unanswered (3 of them, 2 s each at least).
    assert!(
        stopping > last_ping + Duration::from_secs(4),
        "pings went on with the buffer hung: last ping {last_ping:?}, STOPPING=1 at {stopping:?}"
    );
    assert!(
        stopping < Duration::from_secs(20),
        "the service took {stopping:?} to act: systemd's WatchdogSec=30s would have killed it"
    );
}
