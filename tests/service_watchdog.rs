//! systemd notify protocol against a NOTIFY_SOCKET the test binds itself:
//! READY=1 once the tree is up, WATCHDOG=1 while every actor answers, and
//! no more pings once an actor hangs (so systemd would restart the process).
#![cfg(feature = "fault-injection")]
mod service_support;

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use service_support::*;

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
fn watchdog_pings_stop_when_an_actor_hangs() {
    let nats = NatsServer::start();
    let plant = Plant::new(&nats.url(), "");
    let path = plant.dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    let service = plant.start_with_env(&[
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
    // A ping already under way may still arrive; after that, silence.
    let _ = receive_for(&socket, Duration::from_secs(3));
    let hung = receive_for(&socket, Duration::from_secs(4));
    let pings = hung.iter().filter(|m| m.contains("WATCHDOG=1")).count();
    assert_eq!(
        pings, 0,
        "watchdog kept pinging with the buffer hung: {hung:?}"
    );
}
