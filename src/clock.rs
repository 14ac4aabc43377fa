//! Where the time comes from.
//!
//! The shell reads the time only through a [`Clock`], so tests can run it
//! on tokio's paused clock: [`SystemClock`] is the wall clock the daemon
//! uses (Docker reports `startedAt`/`finishedAt` in it); [`TokioClock`]
//! derives wall-clock [`Timestamp`]s from `tokio::time::Instant`, so a test
//! with `#[tokio::test(start_paused = true)]` moves both together. The pure
//! core never reads a clock: the time comes in as an argument.

use std::fmt::Debug;

use k8s_openapi::jiff::{SignedDuration, Timestamp};

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
        let elapsed = SignedDuration::try_from(self.start.elapsed()).unwrap_or_default();
        self.base.checked_add(elapsed).unwrap_or(self.base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
