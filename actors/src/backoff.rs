//! `Backoff`: the one exponential back-off every retrying part uses.
//!
//! # Invariants
//! - The wait after `k` failures in a row is `0` for `k = 0`, then
//!   `min · 2^(k−1)` capped at `max`: `min`, `2·min`, `4·min`, … `max`,
//!   `max`, … It never exceeds `max` and never overflows (the product
//!   saturates), whatever `k`.
//! - The doubling stops after [`MAX_DOUBLINGS`] steps: a `max` more than
//!   `2^20` times `min` (say 1 ms and 1 h) is never reached, the wait stays
//!   at `min · 2^20`. The poller and supervisor back-offs this replaced
//!   behaved so, and the service keeps their behaviour.
//! - [`Backoff::after`] has no jitter: the same count gives the same wait.
//!   Users of which many back off in step (the DevicePollers after a
//!   network cut) add [`spread`]: a share of a span taken from a seed of
//!   their own (the device id) and the count, the same for the same seed and
//!   count (deterministic, so tests and logs can be reasoned about), spread
//!   evenly over seeds, and different at each count (two devices that meet
//!   once do not meet again).
//! - It keeps no count. Each user keeps its own and decides when it resets
//!   (the poller on an answer, the monitor on a connection, the supervisor
//!   when failures leave its window, the publisher on a good session).
//!
//! Users: the DevicePoller (a device that does not answer), the supervisor
//! (restarting a failed child), the Publisher (a new session after a failed
//! one) and the ConnectionMonitor (connect attempts after a lost link).

use std::time::Duration;

/// How many times the wait doubles at most (see the module doc).
pub const MAX_DOUBLINGS: u32 = 20;

/// Waits that double from `min` up to `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The wait after the first failure.
    pub min: Duration,
    /// The longest wait. When `max < min`, every wait is `max`.
    pub max: Duration,
}

impl Backoff {
    /// The wait after `failures` failures in a row (see the module doc).
    pub fn after(&self, failures: u32) -> Duration {
        if failures == 0 {
            return Duration::ZERO;
        }
        let factor = 1u32 << (failures - 1).min(MAX_DOUBLINGS);
        self.min.saturating_mul(factor).min(self.max)
    }
}

/// A share of `span` for `seed` after `failures` failures, in `[0, span)`
/// (see the module doc). Zero when `span` is zero.
pub fn spread(seed: u64, failures: u32, span: Duration) -> Duration {
    let nanos = u64::try_from(span.as_nanos()).unwrap_or(u64::MAX);
    if nanos == 0 {
        return Duration::ZERO;
    }
    // splitmix64 of the seed and the count: well mixed, stable everywhere.
    let mut z = seed ^ u64::from(failures).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    Duration::from_nanos(z % nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_is_within_the_span_stable_and_covers_it() {
        let span = ms(1_000);
        assert_eq!(spread(7, 3, span), spread(7, 3, span));
        assert_ne!(
            spread(7, 3, span),
            spread(7, 4, span),
            "another count, another share"
        );
        assert_eq!(spread(7, 3, Duration::ZERO), Duration::ZERO);
        // 1 000 seeds over 10 bins of 100 ms: none empty, none holding a third.
        let mut bins = [0usize; 10];
        for seed in 0..1_000u64 {
            let s = spread(seed, 1, span);
            assert!(s < span);
            bins[(s.as_millis() / 100) as usize] += 1;
        }
        assert!(bins.iter().all(|&n| n > 0 && n < 333), "{bins:?}");
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn no_failure_waits_nothing_then_the_wait_doubles_from_min() {
        let b = Backoff {
            min: ms(100),
            max: ms(30_000),
        };
        let waits: Vec<u64> = (0..12).map(|f| b.after(f).as_millis() as u64).collect();
        assert_eq!(
            waits,
            [0, 100, 200, 400, 800, 1_600, 3_200, 6_400, 12_800, 25_600, 30_000, 30_000]
        );
    }

    #[test]
    fn the_wait_stops_at_max_however_many_failures() {
        let b = Backoff {
            min: ms(50),
            max: ms(500),
        };
        assert_eq!(b.after(4), ms(400));
        assert_eq!(b.after(5), ms(500));
        assert_eq!(b.after(1_000), ms(500));
        assert_eq!(b.after(u32::MAX), ms(500));
        let huge = Backoff {
            min: Duration::MAX / 2,
            max: Duration::MAX,
        };
        assert_eq!(huge.after(u32::MAX), Duration::MAX);
    }

    #[test]
    fn the_doubling_stops_after_twenty_steps_below_a_far_max() {
        let b = Backoff {
            min: ms(1),
            max: Duration::from_secs(3_600),
        };
        let top = ms(1 << MAX_DOUBLINGS);
        assert_eq!(b.after(MAX_DOUBLINGS), top / 2);
        assert_eq!(b.after(MAX_DOUBLINGS + 1), top);
        assert_eq!(b.after(u32::MAX), top);
    }

    #[test]
    fn a_reset_count_starts_again_at_min() {
        let b = Backoff {
            min: ms(100),
            max: ms(5_000),
        };
        let before_reset = b.after(6);
        assert_eq!(before_reset, ms(3_200));
        assert_eq!(b.after(0), Duration::ZERO);
        assert_eq!(b.after(1), ms(100));
    }

    #[test]
    fn max_below_min_always_waits_max() {
        let b = Backoff {
            min: Duration::from_secs(10),
            max: Duration::from_secs(5),
        };
        assert_eq!(b.after(1), Duration::from_secs(5));
        assert_eq!(b.after(3), Duration::from_secs(5));
    }
}
