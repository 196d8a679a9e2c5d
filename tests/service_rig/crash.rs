//! A `kill -9` while delivery is stalled, and what must hold after it: every
//! batch accepted before the kill arrives once, in order, and the only hole
//! in the seqs is the range the next start logs as skipped.

use std::time::{Duration, Instant};

use super::Service;

/// Waits until `/health` says `degraded` with `"delivery":"stalled"` and
/// returns that answer. An answer without a `delivery` field (a build that
/// does not report it) ends the wait as well, so the checks of what arrived
/// run on any build; the caller asserts on the answer afterwards.
pub fn wait_delivery_stalled(service: &Service, within: Duration) -> serde_json::Value {
    let deadline = Instant::now() + within;
    loop {
        let health = service.health();
        let answered = health.get("status").is_some();
        if (answered && health.get("delivery").is_none()) || health["delivery"] == "stalled" {
            return health;
        }
        assert!(
            Instant::now() < deadline,
            "/health never said delivery stalled; last: {health}\n{}",
            service.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Lets the service accept `more` batches, then `kill -9`s it; returns how
/// many batches it had accepted just before (`ingestor_batches_total`).
pub fn kill9_after(service: &mut Service, more: u64) -> u64 {
    let from = service.metric("ingestor_batches_total");
    super::wait_until(
        Duration::from_secs(20),
        "batches accepted while delivery is stalled",
        || service.metric("ingestor_batches_total") >= from + more as f64,
    );
    let accepted = service.metric("ingestor_batches_total") as u64;
    service.kill9();
    accepted
}

/// The range the start after a crash logs as skipped
/// (`... did not stop cleanly: seqs FROM..=TO may have been handed out ...`).
pub fn crash_skip(log: &str) -> (u64, u64) {
    let parse = || -> Option<(u64, u64)> {
        let rest = log.split("did not stop cleanly: seqs ").nth(1)?;
        let (from, rest) = rest.split_once("..=")?;
        let to: String = rest.chars().take_while(char::is_ascii_digit).collect();
        Some((from.parse().ok()?, to.parse().ok()?))
    };
    parse().unwrap_or_else(|| panic!("the start after the crash logs no skipped range:\n{log}"))
}

/// What the stream holds after a crash: every seq up to `accepted` (all
/// that was accepted before the kill), each once, ascending; and the only
/// hole is `skip`, the range the next start logged.
pub fn assert_complete_across_crash(seqs: &[u64], accepted: u64, skip: (u64, u64)) {
    let stored: std::collections::HashSet<u64> = seqs.iter().copied().collect();
    let missing: Vec<u64> = (1..=accepted).filter(|s| !stored.contains(s)).collect();
    assert!(
        missing.is_empty(),
        "{} of the {accepted} batches accepted before kill -9 never arrived (first: {:?})",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    let disorder: Vec<&[u64]> = seqs.windows(2).filter(|w| w[0] >= w[1]).take(5).collect();
    assert!(
        disorder.is_empty(),
        "seqs stored twice or out of order: {disorder:?}"
    );
    let (from, to) = skip;
    assert!(
        from > accepted,
        "the skip {from}..={to} covers batches accepted before the kill"
    );
    let holes: Vec<(u64, u64)> = seqs
        .windows(2)
        .filter(|w| w[1] != w[0] + 1)
        .map(|w| (w[0] + 1, w[1] - 1))
        .collect();
    assert_eq!(
        holes,
        vec![(from, to)],
        "the only hole must be the crash's logged skip"
    );
    assert_eq!(seqs[0], 1, "the stream does not start at seq 1");
}
