//! Ten unit ids behind one gateway address: one connection, and never two
//! requests on it at once. The gateway here is a raw Modbus TCP server that
//! checks, before answering each request, that no other request has arrived.

mod poller_rig;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ingestor_actors::poller::spread_start;
use ingestor_actors::poller::{DevicePoller, DevicePollerArgs, Links};
use ingestor_actors::Value;
use poller_rig::{collecting_buffer, device, listener};
use ractor::Actor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Default)]
struct GatewayStats {
    connections: AtomicUsize,
    requests: AtomicUsize,
    overlaps: AtomicUsize,
}

/// Answers function 3 with `unit * 1000 + address`, 1 ms after the request.
async fn serve_gateway(listener: TcpListener, stats: Arc<GatewayStats>) {
    while let Ok((stream, _)) = listener.accept().await {
        stats.connections.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(serve_connection(stream, Arc::clone(&stats)));
    }
}

async fn serve_connection(mut s: TcpStream, stats: Arc<GatewayStats>) {
    loop {
        let mut mbap = [0u8; 7];
        if s.read_exact(&mut mbap).await.is_err() {
            return;
        }
        let len = usize::from(u16::from_be_bytes([mbap[4], mbap[5]]));
        let mut pdu = vec![0u8; len.saturating_sub(1)];
        if s.read_exact(&mut pdu).await.is_err() {
            return;
        }
        stats.requests.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(1)).await;
        let mut probe = [0u8; 1];
        match s.try_read(&mut probe) {
            Ok(0) => return,
            Ok(_) => {
                stats.overlaps.fetch_add(1, Ordering::SeqCst);
                return;
            }
            Err(_) => {} // nothing else sent while this request was open: good
        }
        let unit = u16::from(mbap[6]);
        let start = u16::from_be_bytes([pdu[1], pdu[2]]);
        let count = u16::from_be_bytes([pdu[3], pdu[4]]);
        let mut body = vec![pdu[0], (count * 2) as u8];
        for a in start..start + count {
            body.extend_from_slice(&(unit * 1000 + a).to_be_bytes());
        }
        let mut reply = vec![mbap[0], mbap[1], 0, 0];
        reply.extend_from_slice(&(body.len() as u16 + 1).to_be_bytes());
        reply.push(mbap[6]);
        reply.extend_from_slice(&body);
        if s.write_all(&reply).await.is_err() {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_ten_units_share_one_connection_and_never_overlap() {
    let (l, addr) = listener().await;
    let stats = Arc::new(GatewayStats::default());
    tokio::spawn(serve_gateway(l, Arc::clone(&stats)));
    let (buffer, mut batches) = collecting_buffer().await;

    let mut links = Links::new();
    let mut pollers = Vec::new();
    for unit in 1..=10u16 {
        let dev = device(&format!(
            "id = \"unit{unit}\"\naddress = \"{addr}\"\nunit = {unit}\npoll_interval = \"50ms\"\n\
             [[tags]]\nname = \"a\"\nregister = \"holding\"\naddress = 0\ntype = \"u16\"\n\
             [[tags]]\nname = \"b\"\nregister = \"holding\"\naddress = 100\ntype = \"u16\"\n"
        ));
        let args = DevicePollerArgs {
            status: Default::default(),
            writes: None,
            link: links.link_for(&dev).unwrap(),
            first_poll: spread_start(&dev.id, Duration::from_millis(5)),
            device: dev.into(),
            buffer: buffer.clone().into(),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(1),
        };
        pollers.push(Actor::spawn(None, DevicePoller, args).await.unwrap().0);
    }

    let mut per_unit: HashMap<String, usize> = HashMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while per_unit.len() < 10 || per_unit.values().any(|&n| n < 5) {
        let batch = tokio::time::timeout_at(deadline, batches.recv())
            .await
            .expect("batches in time")
            .unwrap();
        let unit: u64 = batch.device.trim_start_matches("unit").parse().unwrap();
        assert!(batch.errors.is_empty(), "{batch:?}");
        assert_eq!(
            batch.values,
            vec![
                ("a".to_string(), Value::UInt(unit * 1000)),
                ("b".to_string(), Value::UInt(unit * 1000 + 100))
            ],
            "each unit's answer reaches that unit's batch"
        );
        *per_unit.entry(batch.device).or_default() += 1;
    }
    for p in pollers {
        p.stop(None);
    }
    assert_eq!(
        stats.connections.load(Ordering::SeqCst),
        1,
        "one connection for the whole gateway"
    );
    assert_eq!(
        stats.overlaps.load(Ordering::SeqCst),
        0,
        "a request was sent while another was open"
    );
    assert!(stats.requests.load(Ordering::SeqCst) >= 100);
}
