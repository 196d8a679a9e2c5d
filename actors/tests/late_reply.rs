//! A slave that answers after the timeout: its late reply must never be
//! taken for the next request's answer. RTU framing has no transaction id,
//! so only dropping the connection keeps the values right.

mod poller_rig;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use ingestor_actors::poller::{DeviceReader, Link, PollResult};
use ingestor_actors::Value;
use poller_rig::{device, listener, ScriptedServer};

async fn late_first_reply(framing: &str) {
    let (l, addr) = listener().await;
    let server = Arc::new(ScriptedServer {
        slow_delay: Duration::from_millis(600),
        ..Default::default()
    });
    server.slow_first.store(1, Ordering::SeqCst);
    server.spawn(l, framing == "rtu");
    // Two reads of one register each (the gap is too wide to merge): same
    // function and length, so a late reply would fit the second request.
    let dev = device(&format!(
        "id = \"late\"\naddress = \"{addr}\"\nframing = \"{framing}\"\ntimeout = \"200ms\"\nretries = 0\n\
         [[tags]]\nname = \"a\"\nregister = \"holding\"\naddress = 0\ntype = \"u16\"\n\
         [[tags]]\nname = \"b\"\nregister = \"holding\"\naddress = 50\ntype = \"u16\"\n"
    ));
    let mut reader = DeviceReader::new(dev.clone(), Link::open(&dev).unwrap());

    let first = reader.poll().await;
    // The timeout abandons the cycle: "b" is not asked on a suspect line.
    assert_eq!(first.result, PollResult::Timeout, "{first:?}");
    assert!(
        first
            .errors
            .iter()
            .all(|(_, e)| e == "no answer within 200ms"),
        "{first:?}"
    );

    // The late reply (for address 0) is on its way while we poll again.
    let second = reader.poll().await;
    assert_eq!(
        second.values,
        vec![
            ("a".to_string(), Value::UInt(1000)),
            ("b".to_string(), Value::UInt(1050))
        ],
        "{second:?}"
    );
    // Wait until the late reply has surely been sent, then poll once more.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let third = reader.poll().await;
    assert_eq!(third.values, second.values);
    assert_eq!(
        server.connections.load(Ordering::SeqCst),
        2,
        "the timed-out connection was replaced once"
    );
}

#[tokio::test]
async fn poller_timeout_then_late_reply_is_discarded_over_rtu_framing() {
    late_first_reply("rtu").await;
}

#[tokio::test]
async fn poller_timeout_then_late_reply_is_discarded_over_modbus_tcp() {
    late_first_reply("tcp").await;
}
