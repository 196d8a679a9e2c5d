//! Devices behind one Modbus/TCP Security gateway (one address, several
//! unit ids, the same TLS keys) share one TLS session, as plain devices
//! share one TCP connection: a counting proxy in front of the simulator's
//! TLS listener sees a single connection for every poll of both devices.

mod poller_rig;
mod tls_rig;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use ingestor_actors::poller::{DeviceReader, Links};
use ingestor_actors::simulator::Simulator;
use ingestor_actors::tls::TlsServer;
use ingestor_actors::Value;
use poller_rig::{device, listener};
use tls_rig::certs::Ca;

/// Forwards every connection on `front` to `back`, counting them.
fn counting_proxy(front: tokio::net::TcpListener, back: String) -> Arc<AtomicUsize> {
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    tokio::spawn(async move {
        while let Ok((mut client, _)) = front.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            let back = back.clone();
            tokio::spawn(async move {
                if let Ok(mut server) = tokio::net::TcpStream::connect(back).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    });
    accepted
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_units_behind_one_tls_gateway_use_one_session() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "plant");
    let server = ca.server("gateway");
    let client = ca.client("ingestor");
    let (front, gateway) = listener().await;
    let keys = format!(
        "tls = true\ntls_ca_file = {:?}\ntls_cert_file = {:?}\ntls_key_file = {:?}\n",
        ca.pem, client.cert, client.key
    );
    let meter = |id: &str, unit: u8| {
        device(&format!(
            "id = \"{id}\"\naddress = \"{gateway}\"\nunit = {unit}\ntimeout = \"2s\"\n{keys}\
             [[tags]]\nname = \"power\"\nregister = \"holding\"\naddress = {a}\ntype = \"u16\"\n",
            a = 10 * u16::from(unit)
        ))
    };
    let devices = [meter("meter-1", 1), meter("meter-2", 2)];
    let (back, back_addr) = listener().await;
    let sim = Arc::new(Simulator::new(&devices).frozen_at(1_800_000_000));
    let tls = TlsServer::from_files(&server.cert, &server.key, Some(&ca.pem)).unwrap();
    tokio::spawn(Arc::clone(&sim).serve_tls(back, tls));
    let accepted = counting_proxy(front, back_addr);

    let mut links = Links::new();
    let mut readers: Vec<DeviceReader> = devices
        .iter()
        .map(|d| DeviceReader::new(d.clone(), links.link_for(d).unwrap()))
        .collect();
    for _round in 0..3 {
        // The simulator's value at address a (t mod 100 = 0): a + (a mod 100)/10, rounded.
        for (reader, expected) in readers.iter_mut().zip([11, 22]) {
            let outcome = reader.poll().await;
            assert_eq!(outcome.errors, vec![], "{}", reader.device().id);
            assert_eq!(
                outcome.values,
                vec![("power".to_owned(), Value::UInt(expected))]
            );
        }
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "both units, three polls each, over one TLS session"
    );
}
