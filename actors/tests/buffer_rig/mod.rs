//! Shared helpers for the buffer tests: real fjall spools on temp dirs.
#![allow(dead_code, unreachable_pub)]

pub mod reclaim;
pub mod tmpfs;

use bytesize::ByteSize;
use ingestor_actors::buffer::{BufferActor, BufferArgs, BufferMsg, SharedStore, Store};
use ingestor_actors::publisher::DeliveryWatch;
use ingestor_actors::settings::{BufferSettings, PersistMode, WhenDiskFull};
use ingestor_actors::{Batch, EncodedBatch, Value};
use ractor::concurrency::JoinHandle;
use ractor::{Actor, ActorRef};

pub fn settings(memory: usize, persist: PersistMode) -> BufferSettings {
    BufferSettings {
        memory_batches: memory,
        persist,
        disk_max: ByteSize::gib(1),
        disk_min_free: ByteSize::b(0),
        when_disk_full: WhenDiskFull::DropOldest,
    }
}

/// A batch whose content encodes `n`, so a test can tell batches apart.
pub fn batch(n: u64) -> Batch {
    let mut b = Batch::new(format!("dev-{}", n % 7), chrono::Utc::now());
    b.values.push(("n".into(), Value::UInt(n)));
    b.values.push(("t".into(), Value::Float(n as f64 * 0.5)));
    b
}

/// The `n` a batch from `batch(n)` carries.
pub fn n_of(b: &EncodedBatch) -> u64 {
    let b = b.decode().expect("a payload reads back");
    match b.values.first() {
        Some((_, Value::UInt(n))) => *n,
        other => panic!("not a test batch: {other:?}"),
    }
}

pub fn open(dir: &std::path::Path, s: BufferSettings) -> Store {
    Store::open(dir, s).expect("open store").0
}

/// Takes everything available, in chunks of `chunk`.
pub fn take_all(store: &mut Store, chunk: usize) -> Vec<EncodedBatch> {
    let mut out = Vec::new();
    loop {
        let got = store.take(chunk).expect("take");
        if got.is_empty() {
            return out;
        }
        out.extend(got);
    }
}

/// Batches counted as lost: dropped plus corrupt (one snapshot: taking
/// one resets the counters).
pub fn dropped_or_corrupt(recorder: &metrics_util::debugging::Snapshotter) -> u64 {
    use metrics_util::debugging::DebugValue;
    recorder
        .snapshot()
        .into_vec()
        .iter()
        .filter(|(k, ..)| {
            let name = k.key().name();
            name == "ingestor_buffer_dropped_total" || name == "ingestor_buffer_corrupt_total"
        })
        .map(|(.., v)| match v {
            DebugValue::Counter(c) => *c,
            _ => 0,
        })
        .sum()
}

pub fn seqs(batches: &[EncodedBatch]) -> Vec<u64> {
    batches.iter().map(|b| b.seq).collect()
}

/// A BufferActor on `store` with no NATS (its delivery watch stays
/// stalled), and the handle that ends with it.
pub async fn spawn_buffer(store: SharedStore) -> (ActorRef<BufferMsg>, JoinHandle<()>) {
    let args = BufferArgs {
        store,
        delivery: DeliveryWatch::never_delivering(),
    };
    Actor::spawn(None, BufferActor, args)
        .await
        .expect("spawn buffer")
}
