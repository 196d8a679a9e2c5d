//! Model test: random push / take / ack / nack / connection / close+reopen
//! sequences against a plain VecDeque. Same order, nothing lost, nothing
//! duplicated, seq continuous across clean restarts.
mod support;

use std::collections::VecDeque;

use ingestor_actors::buffer::Store;
use ingestor_actors::settings::PersistMode;
use proptest::prelude::*;
use support::*;

#[derive(Debug, Clone)]
enum Op {
    Push(u8),
    Take(u8),
    /// Ack the first k of what is in flight.
    Ack(u8),
    Nack,
    Connected(bool),
    Commit,
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1u8..6).prop_map(Op::Push),
        3 => (1u8..8).prop_map(Op::Take),
        3 => any::<u8>().prop_map(Op::Ack),
        1 => Just(Op::Nack),
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
#[derive(Default)]
struct Model {
    /// Unacknowledged seqs, oldest first.
    unacked: VecDeque<u64>,
    /// How many of `unacked` are in flight.
    in_flight: usize,
    next_seq: u64,
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn buffer_behaves_like_a_queue(mode in mode(), memory in 1usize..6, ops in prop::collection::vec(op(), 1..60)) {
        let dir = tempfile::tempdir().unwrap();
        let s = settings(memory, mode);
        let mut store: Store = open(dir.path(), s.clone());
        let mut model = Model { next_seq: 1, ..Model::default() };
        let mut connected = false;
        for op in ops {
            match op {
                Op::Push(k) => for _ in 0..k {
                    let seq = store.push(batch(model.next_seq)).unwrap();
                    prop_assert_eq!(seq, model.next_seq, "seq must be continuous");
                    model.unacked.push_back(seq);
                    model.next_seq += 1;
                },
                Op::Commit => { store.commit().unwrap(); }
                Op::Take(k) => {
                    // Write-through batches become visible at their commit.
                    store.commit().unwrap();
                    let got = store.take(k as usize).unwrap();
                    let want: Vec<u64> = model.unacked.iter().skip(model.in_flight).take(k as usize).copied().collect();
                    prop_assert_eq!(seqs(&got), want.clone());
                    prop_assert!(got.iter().all(|b| n_of(b) == b.seq), "payload mixed up");
                    model.in_flight += want.len();
                }
                Op::Ack(k) => {
                    if model.in_flight > 0 {
                        let k = (k as usize % model.in_flight) + 1;
                        let upto = model.unacked[k - 1];
                        store.ack(upto).unwrap();
                        model.unacked.drain(..k);
                        model.in_flight -= k;
                    }
                }
                Op::Nack => { store.nack(); model.in_flight = 0; }
                Op::Connected(up) => { store.set_connected(up).unwrap(); connected = up; }
                Op::Reopen => {
                    store.close().unwrap();
                    drop(store);
                    store = open(dir.path(), s.clone());
                    store.set_connected(connected).unwrap();
                    model.in_flight = 0;
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
    }
}
