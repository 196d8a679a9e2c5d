//! A checked write on the wire: the write, then the read back.

use std::time::Duration;

use tokio::time::{timeout_at, Instant};

use super::{CheckedWrite, DeviceTurn, Refusal, Wire, WriteCode};
use crate::metric_names;
use crate::poller::decode::{decode_bit, decode_registers};
use crate::poller::link::{
    exception_name, Link, LinkError, ReadRequest, RegisterData, RequestTiming, WriteRequest,
};
use crate::poller::plan::function_name;
use crate::settings::DeviceSettings;
use crate::Value;

/// Writes every tag of `writes` in order on `device`'s `link`, in the
/// device's `turn`, all within `limit`; stops at the first failure (the
/// tags after it get the same code, unwritten). One result per write.
pub async fn execute_all(
    link: &Link,
    device: &DeviceSettings,
    turn: &DeviceTurn,
    writes: &[CheckedWrite],
    limit: Duration,
) -> Vec<Result<Value, Refusal>> {
    let deadline = Instant::now() + limit;
    let too_late = |name: &str| {
        Refusal::new(
            WriteCode::Timeout,
            Some(name),
            format!(
                "not done within [writes] timeout = {} ms",
                limit.as_millis()
            ),
        )
    };
    let first = writes.first().map_or("", |w| w.tag.name.as_str());
    let permit = match timeout_at(deadline, turn.take()).await {
        Ok(Some(permit)) => permit,
        Ok(None) => {
            return vec![Err(Refusal::new(
                WriteCode::Unreachable,
                Some(first),
                "the device's poller is stopping",
            ))]
        }
        Err(_) => return writes.iter().map(|w| Err(too_late(&w.tag.name))).collect(),
    };
    let mut out = Vec::with_capacity(writes.len());
    let mut failed: Option<Refusal> = None;
    for w in writes {
        if let Some(f) = &failed {
            let error = format!(
                "not written: {} before it failed",
                f.tag.as_deref().unwrap_or("a tag")
            );
            out.push(Err(Refusal::new(f.code, Some(&w.tag.name), error)));
            continue;
        }
        let result = match timeout_at(deadline, execute(link, device, w)).await {
            Ok(result) => result,
            Err(_) => Err(too_late(&w.tag.name)),
        };
        if let Err(refusal) = &result {
            failed = Some(refusal.clone());
        }
        out.push(result);
    }
    drop(permit);
    out
}

/// Writes one checked tag and reads it back: `Ok` with what the device
/// holds when it is what was written, else the refusal (`mismatch`
/// carries the value read back). The caller holds the device's turn.
pub async fn execute(
    link: &Link,
    device: &DeviceSettings,
    w: &CheckedWrite,
) -> Result<Value, Refusal> {
    let tag = &w.tag;
    let timing = RequestTiming::of(device);
    let request = match &w.wire {
        Wire::Coil(on) => WriteRequest::Coil {
            unit: device.unit,
            address: tag.address,
            on: *on,
        },
        Wire::Bit { bit, on } => WriteRequest::Bit {
            unit: device.unit,
            address: tag.address,
            bit: *bit,
            on: *on,
        },
        Wire::Words(words) => WriteRequest::Registers {
            unit: device.unit,
            start: tag.address,
            words: words.clone(),
        },
    };
    let function = request.function();
    count_request(device, write_function_name(function));
    link.write(request, timing)
        .await
        .map_err(|e| refusal_of(device, &e, &tag.name, function))?;
    count_request(device, function_name(tag.register));
    let read = ReadRequest {
        unit: device.unit,
        kind: tag.register,
        start: tag.address,
        count: tag.span(),
    };
    let data = link
        .read(read, timing)
        .await
        .map_err(|e| refusal_of(device, &e, &tag.name, 0))?;
    let (held, same) = match (&w.wire, &data) {
        (Wire::Coil(on), RegisterData::Bits(bits)) => {
            let bit = bits.first().copied().unwrap_or(!on);
            (decode_bit(bit), bit == *on)
        }
        (Wire::Bit { bit, on }, RegisterData::Words(words)) => {
            let held = words
                .first()
                .is_some_and(|word| word >> (bit & 15) & 1 == 1);
            (Value::Bool(held), held == *on)
        }
        (Wire::Words(written), RegisterData::Words(words)) => {
            let held = decode_registers(tag, words).map_err(|e| {
                Refusal::new(
                    WriteCode::Mismatch,
                    Some(&tag.name),
                    format!("read back: {e}"),
                )
            })?;
            (held, words.get(..written.len()) == Some(written.as_slice()))
        }
        _ => {
            return Err(Refusal::new(
                WriteCode::Mismatch,
                Some(&tag.name),
                "read back the wrong kind of data",
            ))
        }
    };
    if same {
        return Ok(held);
    }
    let mut refusal = Refusal::new(
        WriteCode::Mismatch,
        Some(&tag.name),
        format!("wrote {}, but the device holds {held}", w.requested),
    );
    refusal.value = Some(held);
    Err(refusal)
}

/// A link error as a refusal; `function` 0 for the read back. An
/// exception is counted in `ingestor_modbus_exceptions_total` as a poll's is.
fn refusal_of(device: &DeviceSettings, e: &LinkError, tag: &str, function: u8) -> Refusal {
    if let LinkError::Exception(code) = e {
        metrics::counter!(metric_names::MODBUS_EXCEPTIONS_TOTAL, "device" => device.id.clone(), "code" => format!("0x{code:02x}"))
            .increment(1);
    }
    let (code, what) = match e {
        LinkError::Exception(0x01) if function == 22 => (
            WriteCode::ModbusException,
            format!(
                "{e}: the device does not offer function 22 (mask write register), the only safe way \
                 to write one bit of a register; write the whole register as a u16 tag instead"
            ),
        ),
        LinkError::Exception(code) => (
            WriteCode::ModbusException,
            format!("the device refused: exception 0x{code:02x} {}", exception_name(*code)),
        ),
        LinkError::Timeout(_) => (WriteCode::Timeout, e.to_string()),
        _ => (WriteCode::Unreachable, e.to_string()),
    };
    let stage = if function == 0 { "read back" } else { "write" };
    Refusal::new(code, Some(tag), format!("{stage}: {what}"))
}

/// The `function` label of a write in `ingestor_modbus_requests_total`.
pub fn write_function_name(function: u8) -> &'static str {
    match function {
        5 => "write_single_coil",
        6 => "write_single_register",
        15 => "write_multiple_coils",
        16 => "write_multiple_registers",
        _ => "mask_write_register",
    }
}

fn count_request(device: &DeviceSettings, function: &'static str) {
    metrics::counter!(metric_names::MODBUS_REQUESTS_TOTAL, "device" => device.id.clone(), "function" => function)
        .increment(1);
}
