//! Poll slots and back-off: when the next poll of a group is due.
//!
//! Slot `n` of a group is due at `first_poll + n·interval`. When a poll
//! overruns its slots, the next one starts in the slot the clock is in
//! (late, and counted as lag); the slots in between are skipped, never
//! bunched. After `k` polls in a row without any answer, the next poll of
//! every group waits for its first slot at least
//! `min(backoff_min·2^(k−1), backoff_max)` after the failed poll ended, and
//! then a share of that wait, at most one interval, of its own
//! ([`probe_delay`]): devices that fail together (a network cut, a gateway
//! restart) do not probe, and reconnect, in the same millisecond even when
//! their slots coincide.

use std::time::Duration;

use tokio::time::Instant;

/// A start time for `device_id` within the next `interval`, the same for the
/// same id, so that many devices do not all poll in the same millisecond.
pub fn spread_start(device_id: &str, interval: Duration) -> Instant {
    let nanos = u64::try_from(interval.as_nanos())
        .unwrap_or(u64::MAX)
        .max(1);
    Instant::now() + Duration::from_nanos(id_hash(device_id) % nanos)
}

/// A device id as a number: FNV-1a, stable across runs and platforms.
pub(crate) fn id_hash(device_id: &str) -> u64 {
    device_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// How long after its slot a device in back-off (`failures` polls in a row
/// without an answer, waiting `backoff`) probes: a share of
/// `min(backoff, interval)` taken from the device's id and the count, so the
/// probe still comes before the slot after it. Zero when not backing off.
pub(crate) fn probe_delay(
    device: u64,
    failures: u32,
    backoff: Duration,
    interval: Duration,
) -> Duration {
    crate::backoff::spread(device, failures, backoff.min(interval))
}

/// Poll slots: slot `n` is due at `first_poll + n·interval`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Schedule {
    pub(crate) first_poll: Instant,
    pub(crate) interval: Duration,
}

impl Schedule {
    pub(crate) fn slot_time(&self, n: u64) -> Instant {
        let nanos = self.interval.as_nanos().saturating_mul(u128::from(n));
        self.first_poll + Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// The slot the clock is in at `t` (slot 0 before `first_poll`).
    pub(crate) fn slot_at(&self, t: Instant) -> u64 {
        let since = t.saturating_duration_since(self.first_poll).as_nanos();
        u64::try_from(since / self.interval.as_nanos().max(1)).unwrap_or(u64::MAX)
    }

    /// The first slot due at or after `t`.
    pub(crate) fn slot_from(&self, t: Instant) -> u64 {
        let n = self.slot_at(t);
        if self.slot_time(n) < t {
            n + 1
        } else {
            n
        }
    }

    /// The slot to poll after slot `done` finished at `now`: the next one;
    /// when that has passed, the one the clock is in (the ones between are
    /// skipped, not bunched); never one due before `now + backoff`.
    pub(crate) fn next(&self, done: u64, now: Instant, backoff: Duration) -> u64 {
        let next = (done + 1).max(self.slot_at(now));
        if backoff.is_zero() {
            next
        } else {
            next.max(self.slot_from(now + backoff))
        }
    }
}

/// Which group polls next, of groups due at `(time, interval)`: the one due
/// first; of those due at the same moment, the one with the shorter
/// interval (then the first).
pub(crate) fn first_due(dues: impl Iterator<Item = (Instant, Duration)>) -> Option<usize> {
    dues.enumerate()
        .min_by_key(|&(i, due)| (due, i))
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn on_time_poll_is_followed_by_the_next_slot() {
        let t0 = Instant::now();
        let s = Schedule {
            first_poll: t0,
            interval: ms(1000),
        };
        assert_eq!(s.next(3, t0 + ms(3_200), Duration::ZERO), 4);
        assert_eq!(s.slot_time(4), t0 + ms(4_000));
    }

    #[test]
    fn overrunning_poll_skips_missed_slots_instead_of_bunching() {
        let t0 = Instant::now();
        let s = Schedule {
            first_poll: t0,
            interval: ms(1000),
        };
        // poll 3 ended at 6.3 s: slots 4 and 5 are gone, slot 6 starts late
        assert_eq!(s.next(3, t0 + ms(6_300), Duration::ZERO), 6);
    }

    #[test]
    fn failing_device_waits_out_its_backoff_before_the_next_slot() {
        let t0 = Instant::now();
        let s = Schedule {
            first_poll: t0,
            interval: ms(1000),
        };
        // poll 3 ended at 3.5 s with a 6.4 s back-off: first slot at or after 9.9 s
        assert_eq!(s.next(3, t0 + ms(3_500), ms(6_400)), 10);
    }

    #[test]
    fn group_due_first_polls_first_and_the_shorter_interval_wins_a_tie() {
        let t0 = Instant::now();
        let dues = [
            (t0 + ms(1000), ms(1000)),
            (t0 + ms(1000), ms(100)),
            (t0 + ms(1100), ms(100)),
        ];
        assert_eq!(first_due(dues.into_iter()), Some(1));
        let dues = [(t0 + ms(900), ms(60_000)), (t0 + ms(1000), ms(100))];
        assert_eq!(
            first_due(dues.into_iter()),
            Some(0),
            "a late slow group is not starved"
        );
        assert_eq!(first_due(std::iter::empty()), None);
    }

    #[test]
    fn probe_delay_is_a_share_of_the_backoff_below_one_interval() {
        assert_eq!(probe_delay(1, 0, Duration::ZERO, ms(1000)), Duration::ZERO);
        assert!(probe_delay(1, 1, ms(100), ms(1000)) < ms(100));
        assert!(probe_delay(1, 9, ms(30_000), ms(1000)) < ms(1000));
        let h = id_hash("press-01");
        assert_eq!(
            probe_delay(h, 4, ms(800), ms(1000)),
            probe_delay(h, 4, ms(800), ms(1000))
        );
        let shares: std::collections::HashSet<_> = (0..50)
            .map(|i| probe_delay(id_hash(&format!("meter-{i}")), 5, ms(1600), ms(1000)))
            .collect();
        assert!(shares.len() > 45, "devices get shares of their own");
    }

    #[test]
    fn start_spread_is_stable_and_within_the_interval() {
        let before = Instant::now();
        let a = spread_start("press-01", ms(1000));
        let b = spread_start("press-01", ms(1000));
        assert!(a >= before && a < before + ms(1000));
        assert!(
            b.saturating_duration_since(a) < ms(100),
            "same id, same offset"
        );
    }
}
