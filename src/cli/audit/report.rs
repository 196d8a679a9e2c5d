//! What `audit` concludes from the messages it read: per installation, the
//! seq range, what is stored, what gap events explain, and what is wrong
//! (docs/reference.md §1, §3). Pure: no I/O, tested on hand-made records.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

/// One message of the stream, as far as the audit needs it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Stored {
    /// Where the stream holds it.
    pub(super) stream_seq: u64,
    /// The `<service.id>` token of its subject.
    pub(super) service_id: String,
    /// `Ingestor-Installation` (none from builds before it).
    pub(super) installation: Option<String>,
    /// `Ingestor-Seq`.
    pub(super) seq: u64,
    pub(super) kind: Kind,
}

/// What a message is.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Kind {
    /// A batch: one device poll.
    Batch { device: String, ts: String },
    /// A gap event (`<prefix>.<id>._gaps`).
    Gap(Gap),
    /// Another of the service's own records (a subject token starting with `_`).
    Own,
}

/// The `gap` of a gap event: seqs `from..=to` will never be in the stream.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub(super) struct Gap {
    pub(super) from: u64,
    pub(super) to: u64,
    pub(super) reason: String,
    #[serde(default)]
    pub(super) count: Option<u64>,
}

/// Seqs `from..=to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(super) struct Range {
    pub(super) from: u64,
    pub(super) to: u64,
}

/// Gap events of one reason.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(super) struct Explained {
    pub(super) events: u64,
    pub(super) seqs: u64,
}

/// A seq stored more than once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(super) struct StoredTwice {
    pub(super) seq: u64,
    pub(super) stream_seqs: Vec<u64>,
}

/// One poll (device and `ts`) stored under several seqs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(super) struct PollTwice {
    pub(super) device: String,
    pub(super) ts: String,
    pub(super) seqs: Vec<u64>,
}

/// A message whose seq is below the one stored just before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(super) struct StepBack {
    pub(super) stream_seq: u64,
    pub(super) seq: u64,
    pub(super) after: u64,
}

/// The audit of one installation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(super) struct InstallationReport {
    /// The id, or `(none)` for messages without the header (per service id).
    pub(super) installation: String,
    pub(super) service_ids: Vec<String>,
    pub(super) first_seq: u64,
    pub(super) last_seq: u64,
    pub(super) messages: u64,
    pub(super) batches: u64,
    pub(super) gap_events: u64,
    /// By reason.
    pub(super) explained: BTreeMap<String, Explained>,
    /// Seqs in `first_seq..=last_seq` neither stored nor covered by an event.
    pub(super) missing: Vec<Range>,
    pub(super) stored_twice: Vec<StoredTwice>,
    pub(super) polls_twice: Vec<PollTwice>,
    pub(super) steps_back: Vec<StepBack>,
    /// Nothing of the above is wrong.
    pub(super) complete: bool,
}

/// Groups `records` (in stream order) by installation and audits each.
pub(super) fn audit(records: &[Stored]) -> Vec<InstallationReport> {
    let mut groups: BTreeMap<String, Vec<&Stored>> = BTreeMap::new();
    for r in records {
        let key = match &r.installation {
            Some(id) => id.clone(),
            None => format!("(none) {}", r.service_id),
        };
        groups.entry(key).or_default().push(r);
    }
    groups
        .into_iter()
        .map(|(key, group)| audit_one(key, &group))
        .collect()
}

fn audit_one(installation: String, group: &[&Stored]) -> InstallationReport {
    let mut service_ids = BTreeSet::new();
    let mut where_stored: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    let mut polls: HashMap<(&str, &str), BTreeSet<u64>> = HashMap::new();
    let mut explained: BTreeMap<String, Explained> = BTreeMap::new();
    let mut covered: Vec<Range> = Vec::new();
    let mut steps_back = Vec::new();
    let (mut batches, mut gap_events) = (0, 0);
    let mut previous: Option<u64> = None;
    for r in group {
        service_ids.insert(r.service_id.clone());
        where_stored.entry(r.seq).or_default().push(r.stream_seq);
        if let Some(after) = previous.filter(|&p| r.seq < p) {
            steps_back.push(StepBack {
                stream_seq: r.stream_seq,
                seq: r.seq,
                after,
            });
        }
        previous = Some(r.seq);
        match &r.kind {
            Kind::Batch { device, ts } => {
                batches += 1;
                polls.entry((device, ts)).or_default().insert(r.seq);
            }
            Kind::Gap(gap) => {
                gap_events += 1;
                let (from, to) = (gap.from.min(gap.to), gap.from.max(gap.to));
                let e = explained.entry(gap.reason.clone()).or_default();
                e.events += 1;
                e.seqs += gap.count.unwrap_or(to - from + 1);
                covered.push(Range { from, to });
            }
            Kind::Own => {}
        }
    }
    let first_seq = where_stored
        .keys()
        .next()
        .copied()
        .into_iter()
        .chain(covered.iter().map(|c| c.from))
        .min()
        .unwrap_or_default();
    let last_seq = where_stored.keys().next_back().copied().unwrap_or_default();
    covered.extend(where_stored.keys().map(|&s| Range { from: s, to: s }));
    let missing = uncovered(first_seq, last_seq, covered);
    let stored_twice: Vec<StoredTwice> = where_stored
        .iter()
        .filter(|(_, at)| at.len() > 1)
        .map(|(&seq, at)| StoredTwice {
            seq,
            stream_seqs: at.clone(),
        })
        .collect();
    let mut polls_twice: Vec<PollTwice> = polls
        .into_iter()
        .filter(|(_, seqs)| seqs.len() > 1)
        .map(|((device, ts), seqs)| PollTwice {
            device: device.to_string(),
            ts: ts.to_string(),
            seqs: seqs.into_iter().collect(),
        })
        .collect();
    polls_twice.sort_by_key(|p| p.seqs.first().copied());
    let complete = missing.is_empty()
        && stored_twice.is_empty()
        && polls_twice.is_empty()
        && steps_back.is_empty();
    InstallationReport {
        installation,
        service_ids: service_ids.into_iter().collect(),
        first_seq,
        last_seq,
        messages: group.len() as u64,
        batches,
        gap_events,
        explained,
        missing,
        stored_twice,
        polls_twice,
        steps_back,
        complete,
    }
}

/// The ranges of `first..=last` that no range of `covered` contains.
fn uncovered(first: u64, last: u64, mut covered: Vec<Range>) -> Vec<Range> {
    covered.sort_by_key(|r| r.from);
    let mut missing = Vec::new();
    let mut next = first; // the lowest seq not yet known to be covered
    for r in covered {
        if next > last {
            break;
        }
        if r.from > next {
            missing.push(Range {
                from: next,
                to: (r.from - 1).min(last),
            });
        }
        next = next.max(r.to.saturating_add(1));
    }
    if next <= last {
        missing.push(Range {
            from: next,
            to: last,
        });
    }
    missing
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(stream_seq: u64, seq: u64, ts: &str) -> Stored {
        Stored {
            stream_seq,
            service_id: "line1".into(),
            installation: Some("aaaa".into()),
            seq,
            kind: Kind::Batch {
                device: "press-01".into(),
                ts: ts.into(),
            },
        }
    }

    fn gap(stream_seq: u64, seq: u64, from: u64, to: u64, reason: &str) -> Stored {
        Stored {
            kind: Kind::Gap(Gap {
                from,
                to,
                reason: reason.into(),
                count: Some(to - from + 1),
            }),
            ..batch(stream_seq, seq, "")
        }
    }

    fn ts(i: u64) -> String {
        format!("2026-12-03T10:00:{i:02}.000000Z")
    }

    #[test]
    fn gaps_covered_by_events_are_explained_by_reason_and_the_record_is_complete() {
        let mut records: Vec<Stored> = (1..=3).map(|s| batch(s, s, &ts(s))).collect();
        // 4..=6 dropped by the disk cap, 9..=20 skipped after a crash.
        records.push(gap(4, 7, 4, 6, "disk_full_oldest"));
        records.push(batch(5, 8, &ts(8)));
        records.push(gap(6, 21, 9, 20, "crash"));
        records.push(batch(7, 22, &ts(22)));
        let report = &audit(&records)[0];
        assert!(report.complete, "{report:#?}");
        assert_eq!((report.first_seq, report.last_seq), (1, 22));
        assert_eq!((report.batches, report.gap_events), (5, 2));
        assert_eq!(report.explained["disk_full_oldest"].seqs, 3);
        assert_eq!(report.explained["crash"].seqs, 12);
    }

    #[test]
    fn a_missing_seq_a_seq_twice_a_poll_twice_and_a_step_back_are_each_named() {
        let mut records: Vec<Stored> = (1..=10)
            .filter(|&s| s != 5)
            .map(|s| batch(s, s, &ts(s)))
            .collect();
        records.push(batch(11, 3, &ts(3))); // seq 3 again (and a step back)
        records.push(batch(12, 11, &ts(7))); // the poll of seq 7 again, as 11
        let report = &audit(&records)[0];
        assert!(!report.complete);
        assert_eq!(report.missing, vec![Range { from: 5, to: 5 }]);
        assert_eq!(report.stored_twice[0].seq, 3);
        assert_eq!(report.stored_twice[0].stream_seqs, vec![3, 11]);
        // Seq 3 stored twice is one poll under one seq; seq 11 is seq 7's poll.
        assert_eq!(report.polls_twice.len(), 1, "{:#?}", report.polls_twice);
        assert_eq!(report.polls_twice[0].seqs, vec![7, 11]);
        assert_eq!(
            report.steps_back,
            vec![StepBack {
                stream_seq: 11,
                seq: 3,
                after: 10
            }]
        );
    }

    #[test]
    fn installations_are_audited_apart_and_messages_without_one_per_service_id() {
        let mut other = batch(2, 1, &ts(1));
        other.installation = Some("bbbb".into());
        let mut legacy = batch(3, 1, &ts(1));
        legacy.installation = None;
        let reports = audit(&[batch(1, 1, &ts(1)), other, legacy]);
        let names: Vec<&str> = reports.iter().map(|r| r.installation.as_str()).collect();
        assert_eq!(names, vec!["(none) line1", "aaaa", "bbbb"]);
        assert!(reports.iter().all(|r| r.complete));
    }

    #[test]
    fn uncovered_ranges_are_the_complement_within_first_and_last() {
        let r = |from, to| Range { from, to };
        assert_eq!(
            uncovered(1, 10, vec![r(1, 3), r(7, 7), r(2, 4)]),
            vec![r(5, 6), r(8, 10)]
        );
        assert_eq!(uncovered(1, 3, vec![r(1, 1), r(2, 2), r(3, 3)]), vec![]);
        assert_eq!(uncovered(1, 3, vec![r(1, u64::MAX)]), vec![]);
    }
}
