//! Every type × order read over real Modbus TCP from registers holding
//! vendor-manual vectors: the decoded value must be the vendor's number.

mod poller_rig;
#[path = "fixtures/vendor_vectors.rs"]
mod vendor_vectors;

use std::sync::Arc;

use ingestor_actors::poller::{DeviceReader, Link, PollResult};
use ingestor_actors::settings::RegisterKind::{self, Coil, Discrete, Holding, Input};
use ingestor_actors::Value;
use poller_rig::{device, listener, ScriptedServer};
use vendor_vectors::vectors;

fn tag_toml(name: &str, kind: RegisterKind, address: u16, ty: &str, order: &str) -> String {
    let register = format!("{kind:?}").to_lowercase();
    format!(
        "[[tags]]\nname = \"{name}\"\nregister = \"{register}\"\naddress = {address}\ntype = \"{ty}\"\norder = \"{order}\"\n"
    )
}

#[tokio::test]
async fn every_type_and_order_decodes_to_the_vendor_number() {
    let (l, addr) = listener().await;
    let mut server = ScriptedServer::default();
    let mut toml = format!("id = \"vectors\"\naddress = \"{addr}\"\n");
    let vectors = vectors();
    for (name, kind, at, ty, order, words, _) in &vectors {
        for (i, w) in words.iter().enumerate() {
            server.words.insert((*kind, at + i as u16), *w);
        }
        toml.push_str(&tag_toml(name, *kind, *at, ty, order));
    }
    // A 16-character serial number in 10 registers, trailing NULs.
    let serial = b"EM-2400-00012345\0\0\0\0";
    for (i, pair) in serial.chunks(2).enumerate() {
        server.words.insert(
            (Holding, 500 + i as u16),
            u16::from_be_bytes([pair[0], pair[1]]),
        );
    }
    toml.push_str(&tag_toml("serial", Holding, 500, "string", "ABCD"));
    toml.push_str("length = 10\n");
    // The same, from a device that sends the low byte first (BADC).
    for (i, pair) in serial.chunks(2).enumerate() {
        server.words.insert(
            (Input, 500 + i as u16),
            u16::from_le_bytes([pair[0], pair[1]]),
        );
    }
    toml.push_str(&tag_toml("serial_badc", Input, 500, "string", "BADC"));
    toml.push_str("length = 10\n");
    // scale and offset: 0xFF38 = -200 as i16, * 0.1 + 20 = 0.0; 2345 * 0.01 = 23.45
    server.words.insert((Holding, 600), 0xFF38);
    toml.push_str(&tag_toml("scaled_i16", Holding, 600, "i16", "ABCD"));
    toml.push_str("scale = 0.1\noffset = 20.0\n");
    server.words.insert((Input, 601), 2345);
    toml.push_str(&tag_toml("scaled_u16", Input, 601, "u16", "ABCD"));
    toml.push_str("scale = 0.01\n");
    // bools: a coil, a discrete input, bit 3 of a register
    server.words.insert((Coil, 7), 1);
    server.words.insert((Discrete, 9), 0);
    server.words.insert((Holding, 700), 0b1000);
    toml.push_str(&tag_toml("coil", Coil, 7, "bool", "ABCD"));
    toml.push_str(&tag_toml("discrete", Discrete, 9, "bool", "ABCD"));
    toml.push_str(&tag_toml("bit3", Holding, 700, "bool", "ABCD"));
    toml.push_str("bit = 3\n");
    // NaN from the device is an error for that tag only
    server.words.insert((Holding, 800), 0x7FC0);
    server.words.insert((Holding, 801), 0x0000);
    toml.push_str(&tag_toml("nan", Holding, 800, "f32", "ABCD"));

    let server = Arc::new(server);
    server.spawn(l, false);
    let dev = device(&toml);
    let mut reader = DeviceReader::new(dev.clone(), Link::open(&dev).unwrap());
    let outcome = reader.poll().await;

    let got = |name: &str| {
        outcome
            .values
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    for (name, _, _, _, _, _, expected) in &vectors {
        assert_eq!(got(name).as_ref(), Some(expected), "{name}");
    }
    assert_eq!(got("serial"), Some(Value::Str("EM-2400-00012345".into())));
    assert_eq!(
        got("serial_badc"),
        Some(Value::Str("EM-2400-00012345".into()))
    );
    assert_eq!(got("scaled_i16"), Some(Value::Float(0.0)));
    assert_eq!(got("scaled_u16"), Some(Value::Float(23.45)));
    assert_eq!(got("coil"), Some(Value::Bool(true)));
    assert_eq!(got("discrete"), Some(Value::Bool(false)));
    assert_eq!(got("bit3"), Some(Value::Bool(true)));
    assert_eq!(got("nan"), None);
    assert_eq!(outcome.errors.len(), 1, "{:?}", outcome.errors);
    assert_eq!(outcome.errors[0].0, "nan");
    assert!(
        outcome.errors[0].1.contains("not a finite number"),
        "{:?}",
        outcome.errors
    );
    assert_eq!(outcome.result, PollResult::Partial);
    // Values come in config order.
    assert_eq!(outcome.values[0].0, "u32_abcd");
}
