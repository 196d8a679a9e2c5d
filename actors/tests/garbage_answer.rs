//! A device that answers garbage: the poll reports an error for its tags (no
//! panic, no made-up value), the connection is replaced, and the next poll
//! reads the right values once the device talks sense again.

mod poller_rig;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use ingestor_actors::poller::{DeviceReader, Link, PollResult};
use ingestor_actors::Value;
use poller_rig::{device, listener};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// First connection: answers every request with junk. Later ones: proper
/// Modbus TCP, register `a` holds `1000 + a`.
async fn serve(listener: tokio::net::TcpListener, connections: Arc<AtomicUsize>) {
    while let Ok((stream, _)) = listener.accept().await {
        let n = connections.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(answer(stream, n == 0));
    }
}

async fn answer(mut s: TcpStream, junk: bool) {
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
        let reply = if junk {
            // Valid-looking header with the right transaction id, nonsense body.
            let mut r = vec![mbap[0], mbap[1], 0, 0, 0, 4, mbap[6]];
            r.extend_from_slice(&[0x03, 0x7F, 0xAB]);
            r
        } else {
            let start = u16::from_be_bytes([pdu[1], pdu[2]]);
            let count = u16::from_be_bytes([pdu[3], pdu[4]]);
            let mut body = vec![pdu[0], (count * 2) as u8];
            for a in start..start + count {
                body.extend_from_slice(&(1000 + a).to_be_bytes());
            }
            let mut r = vec![mbap[0], mbap[1], 0, 0];
            r.extend_from_slice(&(body.len() as u16 + 1).to_be_bytes());
            r.push(mbap[6]);
            r.extend_from_slice(&body);
            r
        };
        if s.write_all(&reply).await.is_err() {
            return;
        }
    }
}

#[tokio::test]
async fn garbage_answer_is_an_error_and_the_next_connection_reads_right() {
    let (l, addr) = listener().await;
    let connections = Arc::new(AtomicUsize::new(0));
    tokio::spawn(serve(l, Arc::clone(&connections)));
    let dev = device(&format!(
        "id = \"junk\"\naddress = \"{addr}\"\ntimeout = \"300ms\"\nretries = 0\n\
         [[tags]]\nname = \"a\"\nregister = \"holding\"\naddress = 4\ntype = \"u32\"\n"
    ));
    let mut reader = DeviceReader::new(dev.clone(), Link::open(&dev).unwrap());

    let first = reader.poll().await;
    assert!(first.values.is_empty(), "{first:?}");
    assert_ne!(first.result, PollResult::Ok);
    assert_eq!(first.errors.len(), 1);

    let second = reader.poll().await;
    assert_eq!(second.result, PollResult::Ok, "{second:?}");
    assert_eq!(
        second.values,
        vec![("a".to_string(), Value::UInt((1004 << 16) | 1005))]
    );
    assert_eq!(connections.load(Ordering::SeqCst), 2);
}
