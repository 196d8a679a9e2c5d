//! Slow devices get the quiet time they ask for: `pause_after_connect`
//! before the first request on a new connection, `pause_between_requests`
//! between two requests.

mod poller_rig;

use std::sync::Arc;
use std::time::Duration;

use ingestor_actors::poller::{DeviceReader, Link, PollResult};
use poller_rig::{device, listener, ScriptedServer};

#[tokio::test]
async fn pauses_after_connect_and_between_requests_are_kept() {
    let (l, addr) = listener().await;
    let server = Arc::new(ScriptedServer::default());
    server.spawn(l, false);
    // Three reads (holes of 20 > max_gap).
    let dev = device(&format!(
        "id = \"slow\"\naddress = \"{addr}\"\npause_after_connect = \"150ms\"\npause_between_requests = \"80ms\"\n\
         [[tags]]\nname = \"a\"\nregister = \"holding\"\naddress = 0\ntype = \"u16\"\n\
         [[tags]]\nname = \"b\"\nregister = \"holding\"\naddress = 20\ntype = \"u16\"\n\
         [[tags]]\nname = \"c\"\nregister = \"holding\"\naddress = 40\ntype = \"u16\"\n"
    ));
    let mut reader = DeviceReader::new(dev.clone(), Link::open(&dev).unwrap());
    let outcome = reader.poll().await;
    assert_eq!(outcome.result, PollResult::Ok, "{outcome:?}");

    let accepted = server.accepted.lock().unwrap()[0];
    let arrivals = server.arrivals.lock().unwrap().clone();
    assert_eq!(arrivals.len(), 3);
    let after_connect = arrivals[0] - accepted;
    assert!(
        after_connect >= Duration::from_millis(150),
        "first request {after_connect:?} after connect"
    );
    for pair in arrivals.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= Duration::from_millis(80),
            "requests only {gap:?} apart"
        );
    }
}
