//! Restart bookkeeping: back-off and restart intensity, per child.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::backoff::Backoff;
use crate::settings::SupervisionSettings;

/// What to do after a child failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Restart it after this delay.
    RestartAfter(Duration),
    /// More than `max_restarts` within `within`: give up, stop the service.
    GiveUp(u32),
}

/// Failure times of each child within the window.
#[derive(Debug)]
pub struct Restarts<K> {
    policy: SupervisionSettings,
    recent: HashMap<K, VecDeque<Instant>>,
}

impl<K: std::hash::Hash + Eq + Copy> Restarts<K> {
    /// An empty record under `policy`.
    pub fn new(policy: SupervisionSettings) -> Self {
        Restarts {
            policy,
            recent: HashMap::new(),
        }
    }

    /// Records a failure of `child` at `now` and says what to do.
    /// Back-off: `backoff_min · 2^(n−1)` for the n-th failure in the window,
    /// capped at `backoff_max` ([`Backoff::after`]`(n)`).
    pub fn failed(&mut self, child: K, now: Instant) -> Verdict {
        let window = self.policy.within;
        let times = self.recent.entry(child).or_default();
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) > window)
        {
            times.pop_front();
        }
        times.push_back(now);
        let n = times.len() as u32;
        if n > self.policy.max_restarts {
            return Verdict::GiveUp(n);
        }
        let backoff = Backoff {
            min: self.policy.backoff_min,
            max: self.policy.backoff_max,
        };
        Verdict::RestartAfter(backoff.after(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> SupervisionSettings {
        SupervisionSettings {
            max_restarts: 3,
            within: Duration::from_secs(60),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_millis(300),
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_then_gives_up_past_max_restarts() {
        let mut r = Restarts::new(policy());
        let t = Instant::now();
        assert_eq!(
            r.failed("p", t),
            Verdict::RestartAfter(Duration::from_millis(100))
        );
        assert_eq!(
            r.failed("p", t),
            Verdict::RestartAfter(Duration::from_millis(200))
        );
        assert_eq!(
            r.failed("p", t),
            Verdict::RestartAfter(Duration::from_millis(300))
        );
        assert_eq!(r.failed("p", t), Verdict::GiveUp(4));
        // Another child has its own count.
        assert_eq!(
            r.failed("q", t),
            Verdict::RestartAfter(Duration::from_millis(100))
        );
    }

    #[test]
    fn failures_older_than_the_window_are_forgotten() {
        let mut r = Restarts::new(policy());
        let t = Instant::now();
        for _ in 0..3 {
            r.failed("p", t);
        }
        let later = t + Duration::from_secs(61);
        assert_eq!(
            r.failed("p", later),
            Verdict::RestartAfter(Duration::from_millis(100))
        );
    }
}
