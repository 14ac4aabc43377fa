//! Where the time comes from.
//!
//! The shell reads the time only through a [`Clock`], so tests can run it
//! on tokio's paused clock: [`SystemClock`] is the wall clock the daemon
//! uses (Docker reports `startedAt`/`finishedAt` in it); [`TokioClock`]
//! derives wall-clock [`Timestamp`]s from `tokio::time::Instant`, so a test
//! with `#[tokio::test(start_paused = true)]` moves both together. The pure
//! core never reads a clock: the time comes in as an argument, and
//! [`later`] and [`elapsed`] do the arithmetic on it.

use std::fmt::Debug;
use std::time::Duration;

use k8s_openapi::jiff::{SignedDuration, Timestamp};

/// `t` plus `d` (`t` itself if that is out of range).
pub fn later(t: Timestamp, d: Duration) -> Timestamp {
    let d = SignedDuration::try_from(d).unwrap_or_default();
    t.checked_add(d).unwrap_or(t)
}

/// How long from `earlier` to `then`; zero if `then` is not after it.
pub fn elapsed(earlier: Timestamp, then: Timestamp) -> Duration {
    Duration::try_from(then.duration_since(earlier)).unwrap_or_default()
}

/// A source of wall-clock time.
pub trait Clock: Debug + Send + Sync {
    fn now(&self) -> Timestamp;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// Wall-clock time that advances with tokio's clock: `base` plus the tokio
/// time elapsed since creation. Under paused time it moves only when tokio's
/// clock does.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    base: Timestamp,
    start: tokio::time::Instant,
}

impl TokioClock {
    /// A clock reading `base` now.
    pub fn starting_at(base: Timestamp) -> Self {
        TokioClock {
            base,
            start: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Timestamp {
        later(self.base, self.start.elapsed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_arithmetic_never_goes_negative() {
        let t0 = Timestamp::from_second(1_700_000_000).expect("valid");
        let t5 = later(t0, Duration::from_secs(5));
        assert_eq!(elapsed(t0, t5), Duration::from_secs(5));
        assert_eq!(elapsed(t5, t0), Duration::ZERO);
        assert_eq!(
            later(Timestamp::MAX, Duration::from_secs(1)),
            Timestamp::MAX
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_tokio_clock_moves_with_paused_time() {
        let base = Timestamp::from_second(1_700_000_000).expect("valid");
        let clock = TokioClock::starting_at(base);
        assert_eq!(clock.now(), base);
        tokio::time::sleep(Duration::from_secs(90)).await;
        assert_eq!(
            clock.now(),
            Timestamp::from_second(1_700_000_090).expect("valid")
        );
    }
}
