//! Every type × order read over real Modbus TCP from registers holding
//! vendor-manual vectors: the decoded value must be the vendor's number.

mod poller_rig;

use std::sync::Arc;

use poller_rig::{device, listener, ScriptedServer};
use ingestor_actors::poller::{DeviceReader, Link, PollResult};
use ingestor_actors::settings::RegisterKind::{self, Coil, Discrete, Holding, Input};
use ingestor_actors::Value;

/// (tag name, register kind, address, type, order, words, expected value)
type Vector = (
    &'static str,
    RegisterKind,
    u16,
    &'static str,
    &'static str,
    Vec<u16>,
    Value,
);

fn vectors() -> Vec<Vector> {
    let mut v: Vec<Vector> = Vec::new();
    let mut at = 0u16;
    let mut add = |name: &'static str, kind, ty, order, words: Vec<u16>, value| {
        let n = words.len() as u16;
        v.push((name, kind, at, ty, order, words, value));
        at += n + 1;
    };
    // 123456789 = 0x075BCD15
    add(
        "u32_abcd",
        Holding,
        "u32",
        "ABCD",
        vec![0x075B, 0xCD15],
        Value::UInt(123_456_789),
    );
    add(
        "u32_cdab",
        Holding,
        "u32",
        "CDAB",
        vec![0xCD15, 0x075B],
        Value::UInt(123_456_789),
    );
    add(
        "u32_badc",
        Holding,
        "u32",
        "BADC",
        vec![0x5B07, 0x15CD],
        Value::UInt(123_456_789),
    );
    add(
        "u32_dcba",
        Holding,
        "u32",
        "DCBA",
        vec![0x15CD, 0x5B07],
        Value::UInt(123_456_789),
    );
    // -123456789 = 0xF8A432EB
    add(
        "i32_abcd",
        Input,
        "i32",
        "ABCD",
        vec![0xF8A4, 0x32EB],
        Value::Int(-123_456_789),
    );
    add(
        "i32_cdab",
        Input,
        "i32",
        "CDAB",
        vec![0x32EB, 0xF8A4],
        Value::Int(-123_456_789),
    );
    add(
        "i32_badc",
        Input,
        "i32",
        "BADC",
        vec![0xA4F8, 0xEB32],
        Value::Int(-123_456_789),
    );
    add(
        "i32_dcba",
        Input,
        "i32",
        "DCBA",
        vec![0xEB32, 0xA4F8],
        Value::Int(-123_456_789),
    );
    // -1.5f32 = 0xBFC00000
    add(
        "f32_abcd",
        Holding,
        "f32",
        "ABCD",
        vec![0xBFC0, 0x0000],
        Value::Float(-1.5),
    );
    add(
        "f32_cdab",
        Holding,
        "f32",
        "CDAB",
        vec![0x0000, 0xBFC0],
        Value::Float(-1.5),
    );
    add(
        "f32_badc",
        Holding,
        "f32",
        "BADC",
        vec![0xC0BF, 0x0000],
        Value::Float(-1.5),
    );
    add(
        "f32_dcba",
        Holding,
        "f32",
        "DCBA",
        vec![0x0000, 0xC0BF],
        Value::Float(-1.5),
    );
    // 230.5f32 = 0x43668000 (a typical meter voltage)
    add(
        "volts_cdab",
        Input,
        "f32",
        "CDAB",
        vec![0x8000, 0x4366],
        Value::Float(230.5),
    );
    // 0x0102030405060708
    let u64v = Value::UInt(0x0102_0304_0506_0708);
    add(
        "u64_abcd",
        Holding,
        "u64",
        "ABCD",
        vec![0x0102, 0x0304, 0x0506, 0x0708],
        u64v.clone(),
    );
    add(
        "u64_cdab",
        Holding,
        "u64",
        "CDAB",
        vec![0x0708, 0x0506, 0x0304, 0x0102],
        u64v.clone(),
    );
    add(
        "u64_badc",
        Holding,
        "u64",
        "BADC",
        vec![0x0201, 0x0403, 0x0605, 0x0807],
        u64v.clone(),
    );
    add(
        "u64_dcba",
        Holding,
        "u64",
        "DCBA",
        vec![0x0807, 0x0605, 0x0403, 0x0201],
        u64v,
    );
    // -2 as i64 = 0xFFFF_FFFF_FFFF_FFFE
    add(
        "i64_abcd",
        Holding,
        "i64",
        "ABCD",
        vec![0xFFFF, 0xFFFF, 0xFFFF, 0xFFFE],
        Value::Int(-2),
    );
    add(
        "i64_cdab",
        Holding,
        "i64",
        "CDAB",
        vec![0xFFFE, 0xFFFF, 0xFFFF, 0xFFFF],
        Value::Int(-2),
    );
    add(
        "i64_badc",
        Holding,
        "i64",
        "BADC",
        vec![0xFFFF, 0xFFFF, 0xFFFF, 0xFEFF],
        Value::Int(-2),
    );
    add(
        "i64_dcba",
        Holding,
        "i64",
        "DCBA",
        vec![0xFEFF, 0xFFFF, 0xFFFF, 0xFFFF],
        Value::Int(-2),
    );
    // -1.5f64 = 0xBFF8000000000000
    add(
        "f64_abcd",
        Input,
        "f64",
        "ABCD",
        vec![0xBFF8, 0, 0, 0],
        Value::Float(-1.5),
    );
    add(
        "f64_cdab",
        Input,
        "f64",
        "CDAB",
        vec![0, 0, 0, 0xBFF8],
        Value::Float(-1.5),
    );
    add(
        "f64_badc",
        Input,
        "f64",
        "BADC",
        vec![0xF8BF, 0, 0, 0],
        Value::Float(-1.5),
    );
    add(
        "f64_dcba",
        Input,
        "f64",
        "DCBA",
        vec![0, 0, 0, 0xF8BF],
        Value::Float(-1.5),
    );
    // one-register types: byte swap for BADC / DCBA
    add(
        "u16_abcd",
        Holding,
        "u16",
        "ABCD",
        vec![0x1234],
        Value::UInt(0x1234),
    );
    add(
        "u16_cdab",
        Holding,
        "u16",
        "CDAB",
        vec![0x1234],
        Value::UInt(0x1234),
    );
    add(
        "u16_badc",
        Holding,
        "u16",
        "BADC",
        vec![0x3412],
        Value::UInt(0x1234),
    );
    add(
        "u16_dcba",
        Holding,
        "u16",
        "DCBA",
        vec![0x3412],
        Value::UInt(0x1234),
    );
    add(
        "i16_abcd",
        Holding,
        "i16",
        "ABCD",
        vec![0xFFFE],
        Value::Int(-2),
    );
    add(
        "i16_badc",
        Holding,
        "i16",
        "BADC",
        vec![0xFEFF],
        Value::Int(-2),
    );
    add(
        "i16_cdab",
        Holding,
        "i16",
        "CDAB",
        vec![0xFFFE],
        Value::Int(-2),
    );
    add(
        "i16_dcba",
        Holding,
        "i16",
        "DCBA",
        vec![0xFEFF],
        Value::Int(-2),
    );
    v
}

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
