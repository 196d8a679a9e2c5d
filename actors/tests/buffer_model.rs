//! Model test: random push / take / ack / nack / connection / close+reopen
//! sequences against a plain VecDeque. Same order, nothing lost, nothing
//! duplicated, seq continuous across clean restarts. Pushes carry inlet
//! tickets, and a resend of the last tickets (what the inlet does after a
//! BufferActor died mid-commit) must get the first seqs back and store
//! nothing twice: every delivered `(device, ts)` is one poll, once.
//!
//! With the `failpoints` feature a second model adds I/O errors at every
//! spool call (write, sync, read, delete), a `disk_max` the spool reaches
//! (both `when_disk_full` policies), crash-and-reopen and damaged records.
//! Its rule: every accepted seq is published once, in order, or counted as
//! dropped or corrupt — never silently missing.
mod buffer_rig;

use std::collections::VecDeque;

use buffer_rig::*;
use ingestor_actors::buffer::{LeaseId, Store};
use ingestor_actors::settings::PersistMode;
use ingestor_actors::{Batch, EncodedBatch, Value};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Push(u8),
    /// The inlet sends its last k tickets again (the actor died with
    /// them unanswered, committed or not).
    Resend(u8),
    Take(u8),
    /// Ack the first k of what is in flight.
    Ack(u8),
    /// A new session: the next Take is under a new lease.
    NewLease,
    /// The session's lease ends (its holder dropped it).
    EndLease,
    /// A Take under the lease before the current one (a dead session's
    /// late Take): it gets nothing once the store has seen the current one.
    StaleTake(u8),
    Connected(bool),
    Commit,
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1u8..6).prop_map(Op::Push),
        2 => (1u8..8).prop_map(Op::Resend),
        3 => (1u8..8).prop_map(Op::Take),
        3 => any::<u8>().prop_map(Op::Ack),
        1 => Just(Op::NewLease),
        1 => Just(Op::EndLease),
        1 => (1u8..8).prop_map(Op::StaleTake),
        1 => any::<bool>().prop_map(Op::Connected),
        1 => Just(Op::Commit),
        1 => Just(Op::Reopen),
    ]
}

fn mode() -> impl Strategy<Value = PersistMode> {
    prop_oneof![
        Just(PersistMode::Overflow),
        Just(PersistMode::Disconnect),
        Just(PersistMode::Always)
    ]
}

/// What the buffer must look like from the publisher's side.
struct Model {
    /// Unacknowledged seqs, oldest first.
    unacked: VecDeque<u64>,
    /// How many of `unacked` are in flight.
    in_flight: usize,
    next_seq: u64,
    /// Ticket (= poll number) -> the seq it got; tickets restart with
    /// each store (a new process has a new inlet).
    tickets: Vec<u64>,
    /// The inlet id of this store's run.
    inlet: u64,
    /// The lease before the current one, and the current one.
    leases: (LeaseId, LeaseId),
    /// Whether the store has seen the current lease (a Take or its end).
    seen: bool,
    /// Whether the current lease has ended.
    ended: bool,
}

/// Poll `n`: a device and a poll time of its own, so `(device, ts)` tells
/// polls apart like it does in the stream.
fn poll(n: u64) -> EncodedBatch {
    let ts = chrono::DateTime::from_timestamp_micros(1_700_000_000_000_000 + n as i64 * 1000)
        .expect("a valid time");
    let mut b = Batch::new(format!("dev-{}", n % 7), ts);
    b.values.push(("n".into(), Value::UInt(n)));
    b.values.push(("t".into(), Value::Float(n as f64 * 0.5)));
    EncodedBatch::encode(&b)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn buffer_behaves_like_a_queue(mode in mode(), memory in 1usize..6, ops in prop::collection::vec(op(), 1..60)) {
        // Failpoints are global: the fault model below must not run meanwhile.
        let _serial = fail::FailScenario::setup();
        let dir = tempfile::tempdir().unwrap();
        let s = settings(memory, mode);
        let mut store: Store = open(dir.path(), s.clone());
        let first = LeaseId::next();
        let mut model = Model {
            next_seq: 1,
            inlet: 1,
            leases: (first, LeaseId::next()),
            seen: false,
            ended: false,
            unacked: VecDeque::new(),
            in_flight: 0,
            tickets: Vec::new(),
        };
        let mut connected = false;
        for op in ops {
            match op {
                Op::Push(k) => for _ in 0..k {
                    let ticket = model.tickets.len() as u64 + 1;
                    let seq = store.push_ticketed(model.inlet, ticket, poll(model.next_seq)).unwrap();
                    prop_assert_eq!(seq, model.next_seq, "seq must be continuous");
                    model.unacked.push_back(seq);
                    model.tickets.push(seq);
                    model.next_seq += 1;
                },
                Op::Resend(k) => {
                    let from = model.tickets.len().saturating_sub(k as usize);
                    for i in from..model.tickets.len() {
                        let first = model.tickets[i];
                        let again = store.push_ticketed(model.inlet, i as u64 + 1, poll(first)).unwrap();
                        prop_assert_eq!(again, first, "a resent ticket keeps its first seq");
                    }
                }
                Op::Commit => { store.commit().unwrap(); }
                Op::Take(k) => {
                    // Write-through batches become visible at their commit.
                    store.commit().unwrap();
                    let got = store.take_leased(model.leases.1, k as usize).unwrap();
                    model.seen = true;
                    if model.ended {
                        prop_assert!(got.is_none(), "an ended lease took batches");
                        continue;
                    }
                    let got = got.expect("the current lease takes");
                    let want: Vec<u64> = model.unacked.iter().skip(model.in_flight).take(k as usize).copied().collect();
                    prop_assert_eq!(seqs(&got), want.clone());
                    prop_assert!(got.iter().all(|b| n_of(b) == b.seq), "payload mixed up");
                    model.in_flight += want.len();
                }
                Op::Ack(k) => {
                    if model.in_flight > 0 {
                        let k = (k as usize % model.in_flight) + 1;
                        let upto = model.unacked[k - 1];
                        store.ack_leased(model.leases.1, upto).unwrap();
                        model.unacked.drain(..k);
                        model.in_flight -= k;
                    }
                }
                Op::NewLease => {
                    // Its first Take requeues what the old one held.
                    model.leases = (model.leases.1, LeaseId::next());
                    model.seen = false;
                    model.ended = false;
                    // Nothing is in flight under the new lease yet.
                    model.in_flight = 0;
                }
                Op::EndLease => {
                    store.end_lease(model.leases.1);
                    model.seen = true;
                    model.ended = true;
                    model.in_flight = 0;
                }
                Op::StaleTake(k) => if model.seen {
                    let got = store.take_leased(model.leases.0, k as usize).unwrap();
                    prop_assert!(got.is_none(), "an older lease took batches");
                }
                Op::Connected(up) => { store.set_deliverable(up).unwrap(); connected = up; }
                Op::Reopen => {
                    store.close().unwrap();
                    drop(store);
                    store = open(dir.path(), s.clone());
                    store.set_deliverable(connected).unwrap();
                    model.in_flight = 0;
                    model.tickets.clear();
                    model.inlet += 1;
                    // A new process: a new Publisher, a new lease.
                    model.leases = (LeaseId::next(), LeaseId::next());
                    model.seen = false;
                    model.ended = false;
                }
            }
            let st = store.stats();
            prop_assert!(st.memory_batches as usize <= memory, "ring over capacity");
            prop_assert_eq!(st.memory_batches + st.pending + st.disk_batches, model.unacked.len() as u64);
        }
        // Drain: exactly the model's remaining batches, in order.
        store.commit().unwrap();
        store.nack();
        let rest = take_all(&mut store, 3);
        prop_assert_eq!(seqs(&rest), model.unacked.iter().copied().collect::<Vec<_>>());
        let polls: std::collections::BTreeSet<(String, i64)> =
            rest.iter().map(|b| (b.device().to_string(), b.ts_micros())).collect();
        prop_assert_eq!(polls.len(), rest.len(), "a poll (device, ts) delivered twice");
        prop_assert!(rest.iter().all(|b| n_of(b) == b.seq), "payload mixed up");
    }
}

#[cfg(feature = "failpoints")]
mod faults {
    use std::collections::BTreeSet;

    use ingestor_actors::buffer::{SpoolState, Store};
    use ingestor_actors::settings::{PersistMode, WhenDiskFull};
    use metrics_util::debugging::DebuggingRecorder;
    use proptest::prelude::*;

    use super::mode;
    use crate::buffer_rig::*;

    const POINTS: [&str; 4] = [
        "spool::write",
        "spool::sync",
        "spool::read",
        "spool::delete",
    ];

    #[derive(Debug, Clone)]
    enum Op {
        Push(u8),
        Take(u8),
        Ack(u8),
        Nack,
        Connected(bool),
        Commit,
        Tick,
        Reopen,
        /// Kill without close (in `persist = "always"`, where it loses nothing).
        Crash,
        /// Arm (`Some`: enospc or io) or disarm a failpoint.
        Fail(usize, Option<bool>),
        /// Garble the newest record on disk.
        Corrupt,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            5 => (1u8..6).prop_map(Op::Push),
            3 => (1u8..8).prop_map(Op::Take),
            3 => any::<u8>().prop_map(Op::Ack),
            1 => Just(Op::Nack),
            1 => any::<bool>().prop_map(Op::Connected),
            1 => Just(Op::Commit),
            2 => Just(Op::Tick),
            1 => Just(Op::Reopen),
            1 => Just(Op::Crash),
            3 => (0usize..4, prop::option::of(any::<bool>())).prop_map(|(p, a)| Op::Fail(p, a)),
            1 => Just(Op::Corrupt),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        #[test]
        fn every_accepted_seq_is_published_once_in_order_or_counted(
            mode in mode(),
            memory in 1usize..6,
            tiny_disk in any::<bool>(),
            drop_newest in any::<bool>(),
            ops in prop::collection::vec(op(), 1..80),
        ) {
            let scenario = fail::FailScenario::setup();
            let dir = tempfile::tempdir().unwrap();
            let mut s = settings(memory, mode);
            if tiny_disk {
                // Reached after a few writes (an empty spool takes less).
                s.disk_max = bytesize::ByteSize::kib(256);
            }
            if drop_newest {
                s.when_disk_full = WhenDiskFull::DropNewest;
            }
            let recorder = DebuggingRecorder::new();
            let snap = recorder.snapshotter();
            let (accepted, published, acked_undeleted) = metrics::with_local_recorder(&recorder, || {
                let mut store: Store = open(dir.path(), s.clone());
                let mut accepted = BTreeSet::new();
                // Confirmed while deletes failed: still on disk, so they may
                // later be garbled and counted as corrupt after all.
                let mut acked_undeleted = BTreeSet::new();
                let mut published: Vec<u64> = Vec::new();
                let mut in_flight: Vec<u64> = Vec::new();
                let mut connected = false;
                for op in ops {
                    match op {
                        Op::Push(k) => for n in 0..k {
                            if let Ok(seq) = store.push(batch(u64::from(n))) {
                                accepted.insert(seq);
                            }
                        },
                        Op::Commit => { store.commit().unwrap(); }
                        Op::Take(k) => {
                            store.commit().unwrap();
                            in_flight.extend(seqs(&store.take(k as usize).unwrap()));
                        }
                        Op::Ack(k) => if !in_flight.is_empty() {
                            let k = (k as usize % in_flight.len()) + 1;
                            let upto = in_flight[k - 1];
                            store.ack(upto).unwrap();
                            if fail::list().iter().any(|(p, _)| p == "spool::delete") {
                                acked_undeleted.extend(in_flight[..k].iter().copied());
                            }
                            // Confirmed by NATS: published, whatever the disk did.
                            published.extend(in_flight.drain(..k));
                        },
                        Op::Nack => { store.nack(); in_flight.clear(); }
                        Op::Connected(up) => { store.set_deliverable(up).unwrap(); connected = up; }
                        Op::Tick => { store.sync_if_dirty().unwrap(); store.refresh_and_retry(); }
                        Op::Reopen | Op::Crash => {
                            for p in POINTS { fail::remove(p); }
                            store.commit().unwrap();
                            let st = store.stats();
                            // A crash loses memory by design: only crash when
                            // everything accepted is on disk.
                            let crash = matches!(op, Op::Crash)
                                && mode == PersistMode::Always
                                && store.spool_state() == SpoolState::Ok
                                && st.memory_batches == 0
                                && st.pending == 0;
                            if !crash {
                                let _ = store.close();
                            }
                            drop(store);
                            store = open(dir.path(), s.clone());
                            store.set_deliverable(connected).unwrap();
                            in_flight.clear();
                        }
                        Op::Fail(p, armed) => match armed {
                            Some(full) => {
                                let how = if full { "return(enospc)" } else { "return(io)" };
                                fail::cfg(POINTS[p], how).unwrap();
                            }
                            None => fail::remove(POINTS[p]),
                        },
                        Op::Corrupt => {
                            if let Ok(Some(seq)) = store.spool().newest_seq() {
                                let ks = store.spool().raw_batches().unwrap().clone();
                                let _ = ks.insert(seq.to_be_bytes(), vec![1u8, 0]);
                            }
                        }
                    }
                }
                // The disk heals, NATS drains everything. The service ticks
                // every second; a compaction thread still running defers the
                // reopen to a later tick, so tick until the spool is back
                // (a spool at `disk_max` may stay full: bounded).
                for p in POINTS { fail::remove(p); }
                for _ in 0..500 {
                    store.refresh_and_retry();
                    if store.spool_state() == SpoolState::Ok {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                store.commit().unwrap();
                store.nack();
                let rest = take_all(&mut store, 5);
                if let Some(last) = rest.last() {
                    store.ack(last.seq).unwrap();
                }
                published.extend(seqs(&rest));
                (accepted, published, acked_undeleted)
            });
            // A batch confirmed while its delete failed may go out again:
            // JetStream de-duplicates it (same Nats-Msg-Id). Anything new
            // must come after everything published before it.
            let mut published_set = BTreeSet::new();
            let mut last = 0;
            for seq in &published {
                if published_set.insert(*seq) {
                    prop_assert!(*seq > last, "published out of order: {published:?}");
                    last = *seq;
                }
            }
            let published: Vec<u64> = published_set.iter().copied().collect();
            prop_assert!(published_set.is_subset(&accepted), "published a seq never accepted");
            let missing = accepted.len() as u64 - published.len() as u64;
            let counted = dropped_or_corrupt(&snap);
            prop_assert!(missing <= counted, "a seq went missing without being counted: {missing} missing, {counted} counted");
            // Counted beyond what is missing: only records NATS confirmed
            // whose delete failed and that were garbled on disk afterwards.
            prop_assert!(
                counted - missing <= acked_undeleted.len() as u64,
                "counted as lost but published: {missing} missing, {counted} counted"
            );
            scenario.teardown();
        }
    }
}
