//! Restart backoff as data.
//!
//! The kubelet's crash-loop rule: the first restart is immediate; each later
//! one waits `base`, `2×base`, `4×base`, … capped at `max`. Like client-go's
//! `flowcontrol.Backoff`, an entry remembers when the last restart was
//! *granted*; a run that ends more than `2×max` after that moment is forgiven
//! and the curve starts over (so at the cap only a run longer than `2×max`
//! itself is forgiven, the wait before it does not count). [`Backoff`] is
//! asked, never slept on: callers ask [`Backoff::wait`] how long a restart
//! must still wait and tell it with [`Backoff::record`] when a restart was
//! granted. Times are wall-clock [`Timestamp`]s because Docker reports
//! `finishedAt` that way.
//!
//! [`Retry`] is the simpler curve for retrying a failed operation (a pod
//! sync, a teardown, the events stream): `first`, doubling up to `cap`,
//! back to `first` after a success.

use std::collections::HashMap;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

use crate::clock::elapsed;

/// The backoff curve: first delay and cap. Forgiveness is after `2 × max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffPolicy {
    pub base: Duration,
    pub max: Duration,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        BackoffPolicy {
            base: Duration::from_secs(10),
            max: Duration::from_secs(300),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    delay: Duration,
    last_update: Timestamp,
}

/// Per-key backoff state (a key is e.g. a container name within one pod).
#[derive(Debug, Clone, Default)]
pub struct Backoff {
    policy: BackoffPolicy,
    entries: HashMap<String, Entry>,
}

impl Backoff {
    pub fn new(policy: BackoffPolicy) -> Self {
        Backoff {
            policy,
            entries: HashMap::new(),
        }
    }

    pub fn policy(&self) -> BackoffPolicy {
        self.policy
    }

    fn expired(&self, entry: &Entry, event: Timestamp) -> bool {
        elapsed(entry.last_update, event) > self.policy.max * 2
    }

    /// How long a restart of `key`, whose last run ended at `finished`, must
    /// still wait at `now`. `Duration::ZERO` means restart now.
    pub fn wait(&self, key: &str, finished: Timestamp, now: Timestamp) -> Duration {
        match self.entries.get(key) {
            Some(entry) if !self.expired(entry, finished) => {
                entry.delay.saturating_sub(elapsed(finished, now))
            }
            _ => Duration::ZERO,
        }
    }

    /// The delay the next failure of `key` will wait (for messages).
    pub fn current_delay(&self, key: &str) -> Option<Duration> {
        self.entries.get(key).map(|e| e.delay)
    }

    /// Records that a restart of `key`, after the run that ended at
    /// `finished`, was granted at `now`: the run decides whether the old
    /// entry is forgiven, `now` is what the next run is measured from.
    pub fn record(&mut self, key: &str, finished: Timestamp, now: Timestamp) {
        let next = match self.entries.get(key) {
            Some(entry) if !self.expired(entry, finished) => (entry.delay * 2).min(self.policy.max),
            _ => self.policy.base.min(self.policy.max),
        };
        self.entries.insert(
            key.to_string(),
            Entry {
                delay: next,
                last_update: now,
            },
        );
    }

    /// Forgets `key` (e.g. the container succeeded or was removed).
    pub fn forget(&mut self, key: &str) {
        self.entries.remove(key);
    }
}

/// A retry curve for a failing operation: the first delay is `first`, each
/// further one doubles, capped at `cap`; [`Retry::reset`] after a success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    first: Duration,
    cap: Duration,
    failures: u32,
}

impl Retry {
    pub const fn new(first: Duration, cap: Duration) -> Self {
        Retry {
            first,
            cap,
            failures: 0,
        }
    }

    /// Records one more failure and returns how long to wait before trying
    /// again.
    pub fn next_delay(&mut self) -> Duration {
        let doublings = self.failures.min(31);
        self.failures = self.failures.saturating_add(1);
        self.first
            .checked_mul(1u32 << doublings)
            .unwrap_or(self.cap)
            .min(self.cap)
    }

    /// How many failures in a row so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Forgets the failures: the operation succeeded.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delays(mut r: Retry, n: usize) -> Vec<u64> {
        (0..n).map(|_| r.next_delay().as_millis() as u64).collect()
    }

    #[test]
    fn retries_double_from_the_first_delay_up_to_the_cap() {
        let r = Retry::new(Duration::from_secs(1), Duration::from_secs(32));
        assert_eq!(
            delays(r, 8),
            vec![1000, 2000, 4000, 8000, 16000, 32000, 32000, 32000]
        );
    }

    #[test]
    fn a_cap_between_doublings_is_reached_exactly() {
        let r = Retry::new(Duration::from_millis(500), Duration::from_secs(30));
        assert_eq!(
            delays(r, 8),
            vec![500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]
        );
    }

    #[test]
    fn a_reset_starts_over_and_many_failures_do_not_overflow() {
        let mut r = Retry::new(Duration::from_secs(1), Duration::from_secs(32));
        for _ in 0..100 {
            r.next_delay();
        }
        assert_eq!(r.failures(), 100);
        assert_eq!(r.next_delay(), Duration::from_secs(32));
        r.reset();
        assert_eq!(r.next_delay(), Duration::from_secs(1));
    }

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + secs).expect("valid")
    }

    fn policy(base: u64, max: u64) -> Backoff {
        Backoff::new(BackoffPolicy {
            base: Duration::from_secs(base),
            max: Duration::from_secs(max),
        })
    }

    /// Simulates a container that crashes the instant it starts and returns
    /// the start times.
    fn crash_loop(b: &mut Backoff, starts: usize) -> Vec<i64> {
        let mut now = 0;
        let mut out = vec![now];
        while out.len() < starts {
            // crashed immediately at `now`
            let wait = b.wait("c", t(now), t(now)).as_secs() as i64;
            now += wait;
            b.record("c", t(now - wait), t(now));
            out.push(now);
        }
        out
    }

    #[test]
    fn restarts_are_immediate_the_first_time_then_double_up_to_the_cap() {
        let mut b = policy(1, 8);
        assert_eq!(crash_loop(&mut b, 7), vec![0, 0, 1, 3, 7, 15, 23]);
    }

    #[test]
    fn defaults_are_ten_seconds_doubling_to_five_minutes() {
        let mut b = Backoff::new(BackoffPolicy::default());
        let starts = crash_loop(&mut b, 9);
        let gaps: Vec<i64> = starts.windows(2).map(|w| w[1] - w[0]).collect();
        assert_eq!(gaps, vec![0, 10, 20, 40, 80, 160, 300, 300]);
    }

    #[test]
    fn waiting_shrinks_as_time_passes() {
        let mut b = policy(10, 300);
        b.record("c", t(0), t(0));
        b.record("c", t(1), t(1)); // now at 20s
        assert_eq!(b.wait("c", t(5), t(5)), Duration::from_secs(20));
        assert_eq!(b.wait("c", t(5), t(15)), Duration::from_secs(10));
        assert_eq!(b.wait("c", t(5), t(40)), Duration::ZERO);
    }

    #[test]
    fn a_container_that_ran_longer_than_twice_the_cap_is_forgiven() {
        let mut b = policy(1, 8);
        crash_loop(&mut b, 6);
        // last restart granted at t=15, ran until t=15+17 > 2×8
        assert_eq!(b.wait("c", t(15 + 17), t(15 + 17)), Duration::ZERO);
        b.record("c", t(15 + 17), t(15 + 17));
        assert_eq!(b.current_delay("c"), Some(Duration::from_secs(1)));
    }

    /// client-go `flowcontrol.Backoff.Next` sets `lastUpdate` to the clock's
    /// now (the moment the restart is granted), and `hasExpired` compares the
    /// next event against it: at the cap, only a *run* longer than `2×max` is
    /// forgiven; the wait before the restart does not count.
    #[test]
    fn at_the_cap_only_a_run_longer_than_twice_the_cap_is_forgiven() {
        let mut b = policy(10, 300);
        // Crash-looping at the cap: the previous run ended at 0, the restart
        // was granted after the 300 s wait.
        b.record("c", t(-10), t(-10));
        for _ in 0..6 {
            b.record("c", t(0), t(0));
        }
        assert_eq!(b.current_delay("c"), Some(Duration::from_secs(300)));
        b.record("c", t(0), t(300));
        // The new instance ran 301 s (ended at 601): not forgiven.
        assert_eq!(b.wait("c", t(601), t(601)), Duration::from_secs(300));
        // It ran 601 s (ended at 901): forgiven, restarts immediately.
        assert_eq!(b.wait("c", t(901), t(901)), Duration::ZERO);
        b.record("c", t(901), t(901));
        assert_eq!(b.current_delay("c"), Some(Duration::from_secs(10)));
    }

    #[test]
    fn keys_are_independent_and_forgettable() {
        let mut b = policy(10, 300);
        b.record("a", t(0), t(0));
        assert_eq!(b.wait("b", t(0), t(0)), Duration::ZERO);
        assert_eq!(b.wait("a", t(0), t(0)), Duration::from_secs(10));
        b.forget("a");
        assert_eq!(b.wait("a", t(0), t(0)), Duration::ZERO);
    }
}
