//! Exceptions cost only the tag that has them: an illegal address inside a
//! merged read, a bad address in a hole, a busy device.

mod poller_rig;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use ingestor_actors::poller::{DeviceReader, Link, PollResult};
use ingestor_actors::settings::RegisterKind::Holding;
use ingestor_actors::Value;
use poller_rig::{device, listener, ScriptedServer, SeenRead};

fn u16_tags(addresses: &[u16]) -> String {
    addresses
        .iter()
        .map(|a| format!("[[tags]]\nname = \"r{a}\"\nregister = \"holding\"\naddress = {a}\ntype = \"u16\"\n"))
        .collect()
}

fn read(start: u16, count: u16) -> SeenRead {
    SeenRead {
        unit: 1,
        function: 3,
        start,
        count,
    }
}

#[tokio::test]
async fn illegal_address_in_merged_read_costs_only_that_tag_and_is_read_alone_from_then_on() {
    let (l, addr) = listener().await;
    let server = Arc::new(ScriptedServer {
        bad: vec![(Holding, 3)],
        ..Default::default()
    });
    server.spawn(l, false);
    let dev = device(&format!(
        "id = \"m\"\naddress = \"{addr}\"\n{}",
        u16_tags(&[0, 1, 3, 4, 6])
    ));
    let mut reader = DeviceReader::new(dev.clone(), Link::open(&dev).unwrap());
    assert_eq!(reader.plan().len(), 1, "all five tags fit one read");

    let first = reader.poll().await;
    assert_eq!(first.result, PollResult::Partial);
    assert_eq!(
        first.errors,
        vec![(
            "r3".to_string(),
            "exception 0x02 illegal data address".to_string()
        )]
    );
    let expect: Vec<(String, Value)> = [0u16, 1, 4, 6]
        .iter()
        .map(|a| (format!("r{a}"), Value::UInt(1000 + u64::from(*a))))
        .collect();
    assert_eq!(first.values, expect);
    // the merged read, then each tag alone
    assert_eq!(
        server.seen(),
        vec![
            read(0, 7),
            read(0, 1),
            read(1, 1),
            read(3, 1),
            read(4, 1),
            read(6, 1)
        ]
    );

    server.seen.lock().unwrap().clear();
    let second = reader.poll().await;
    assert_eq!(second.values, expect);
    assert_eq!(second.errors.len(), 1);
    // re-planned: the bad address alone, its neighbours merged around it
    assert_eq!(server.seen(), vec![read(0, 2), read(3, 1), read(4, 3)]);
}

#[tokio::test]
async fn bad_address_in_a_hole_is_planned_around() {
    let (l, addr) = listener().await;
    let server = Arc::new(ScriptedServer {
        bad: vec![(Holding, 3)],
        ..Default::default()
    });
    server.spawn(l, false);
    let dev = device(&format!(
        "id = \"m\"\naddress = \"{addr}\"\n{}",
        u16_tags(&[0, 5])
    ));
    let mut reader = DeviceReader::new(dev.clone(), Link::open(&dev).unwrap());

    let first = reader.poll().await;
    assert_eq!(first.result, PollResult::Ok, "{:?}", first.errors);
    server.seen.lock().unwrap().clear();
    let second = reader.poll().await;
    assert_eq!(second.result, PollResult::Ok);
    assert_eq!(server.seen(), vec![read(0, 1), read(5, 1)]);
}

#[tokio::test]
async fn busy_device_is_asked_again_up_to_busy_retries() {
    let (l, addr) = listener().await;
    let server = Arc::new(ScriptedServer::default());
    server.busy_first.store(2, Ordering::SeqCst);
    server.spawn(l, false);
    let dev = device(&format!(
        "id = \"m\"\naddress = \"{addr}\"\nbusy_retries = 2\n{}",
        u16_tags(&[10])
    ));
    let mut reader = DeviceReader::new(dev.clone(), Link::open(&dev).unwrap());
    let outcome = reader.poll().await;
    assert_eq!(outcome.values, vec![("r10".to_string(), Value::UInt(1010))]);
    assert_eq!(outcome.requests, 3);

    server.busy_first.store(5, Ordering::SeqCst);
    let outcome = reader.poll().await;
    assert_eq!(
        outcome.errors,
        vec![(
            "r10".to_string(),
            "exception 0x06 server device busy".to_string()
        )]
    );
    assert_eq!(outcome.requests, 3, "one ask and two re-asks, then give up");
}

#[tokio::test]
async fn gateway_exception_for_every_tag_does_not_break_up_the_plan() {
    let (l, addr) = listener().await;
    let server = Arc::new(ScriptedServer::default());
    *server.fail_all.lock().unwrap() = Some(tokio_modbus::ExceptionCode::GatewayTargetDevice);
    server.spawn(l, false);
    let dev = device(&format!(
        "id = \"m\"\naddress = \"{addr}\"\n{}",
        u16_tags(&[0, 1, 2])
    ));
    let mut reader = DeviceReader::new(dev.clone(), Link::open(&dev).unwrap());
    let off = reader.poll().await;
    assert_eq!(off.result, PollResult::Error);
    assert!(!off.answered, "the gateway answered, the device did not");
    assert!(
        off.errors
            .iter()
            .all(|(_, e)| e == "exception 0x0b gateway target device failed to respond"),
        "{off:?}"
    );
    assert_eq!(
        server.seen(),
        vec![read(0, 3)],
        "not split: the exception is not about an address"
    );

    *server.fail_all.lock().unwrap() = None;
    server.seen.lock().unwrap().clear();
    let on = reader.poll().await;
    assert_eq!(on.result, PollResult::Ok);
    assert_eq!(server.seen(), vec![read(0, 3)], "still one merged read");
}

#[tokio::test]
async fn every_tag_failing_alone_leaves_the_plan_merged() {
    let (l, addr) = listener().await;
    let server = Arc::new(ScriptedServer {
        bad: vec![(Holding, 0), (Holding, 1)],
        ..Default::default()
    });
    server.spawn(l, false);
    let dev = device(&format!(
        "id = \"m\"\naddress = \"{addr}\"\n{}",
        u16_tags(&[0, 1])
    ));
    let mut reader = DeviceReader::new(dev.clone(), Link::open(&dev).unwrap());
    let first = reader.poll().await;
    assert_eq!(first.errors.len(), 2);
    assert_eq!(reader.plan().len(), 1);
}
