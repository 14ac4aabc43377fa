//! Probe parameters and results (pure).
//!
//! [`Params`] are a probe's settings with Kubernetes' defaults (delay 0,
//! period 10 s, timeout 1 s, success 1, failure 3). A [`Tracker`] turns
//! single probe outcomes into the probe's result the kubelet's way: the result
//! changes only after `successThreshold` successes or `failureThreshold`
//! failures in a row, and starts as failure (readiness), success (liveness) or
//! unknown (startup).

use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Probe};

/// Which probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Startup,
    Liveness,
    Readiness,
}

impl Kind {
    /// `Liveness`, `Readiness`, `Startup`, as in the kubelet's messages.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Startup => "Startup",
            Kind::Liveness => "Liveness",
            Kind::Readiness => "Readiness",
        }
    }

    /// The container's probe of this kind.
    pub fn of(self, c: &Container) -> Option<&Probe> {
        match self {
            Kind::Startup => c.startup_probe.as_ref(),
            Kind::Liveness => c.liveness_probe.as_ref(),
            Kind::Readiness => c.readiness_probe.as_ref(),
        }
    }
}

/// A probe's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeResult {
    Unknown,
    Success,
    Failure,
}

/// A probe's settings with defaults applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
    /// The probe's own `terminationGracePeriodSeconds`, overriding the pod's
    /// when this probe kills the container.
    pub termination_grace: Option<Duration>,
}

fn secs(v: Option<i32>, default: i32, min: i32) -> Duration {
    Duration::from_secs(v.unwrap_or(default).max(min) as u64)
}

impl Params {
    pub fn of(probe: &Probe) -> Params {
        Params {
            initial_delay: secs(probe.initial_delay_seconds, 0, 0),
            period: secs(probe.period_seconds, 10, 1),
            timeout: secs(probe.timeout_seconds, 1, 1),
            success_threshold: probe.success_threshold.unwrap_or(1).max(1) as u32,
            failure_threshold: probe.failure_threshold.unwrap_or(3).max(1) as u32,
            termination_grace: probe
                .termination_grace_period_seconds
                .map(|s| Duration::from_secs(s.max(0) as u64)),
        }
    }
}

/// Turns outcomes into a result with thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tracker {
    params: Params,
    result: ProbeResult,
    last: Option<bool>,
    run: u32,
}

impl Tracker {
    pub fn new(kind: Kind, params: Params) -> Tracker {
        let result = match kind {
            Kind::Readiness => ProbeResult::Failure,
            Kind::Liveness => ProbeResult::Success,
            Kind::Startup => ProbeResult::Unknown,
        };
        Tracker {
            params,
            result,
            last: None,
            run: 0,
        }
    }

    pub fn result(&self) -> ProbeResult {
        self.result
    }

    /// Records one outcome; returns the new result when it changed.
    pub fn observe(&mut self, success: bool) -> Option<ProbeResult> {
        if self.last == Some(success) {
            self.run = self.run.saturating_add(1);
        } else {
            self.run = 1;
            self.last = Some(success);
        }
        let needed = if success {
            self.params.success_threshold
        } else {
            self.params.failure_threshold
        };
        if self.run < needed {
            return None;
        }
        let result = if success {
            ProbeResult::Success
        } else {
            ProbeResult::Failure
        };
        (result != self.result).then(|| {
            self.result = result;
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_kubernetes() {
        let p = Params::of(&Probe::default());
        assert_eq!(p.initial_delay, Duration::ZERO);
        assert_eq!(p.period, Duration::from_secs(10));
        assert_eq!(p.timeout, Duration::from_secs(1));
        assert_eq!((p.success_threshold, p.failure_threshold), (1, 3));
        assert_eq!(p.termination_grace, None);
    }

    #[test]
    fn results_start_as_the_kubelet_starts_them() {
        let p = Params::of(&Probe::default());
        assert_eq!(
            Tracker::new(Kind::Readiness, p).result(),
            ProbeResult::Failure
        );
        assert_eq!(
            Tracker::new(Kind::Liveness, p).result(),
            ProbeResult::Success
        );
        assert_eq!(
            Tracker::new(Kind::Startup, p).result(),
            ProbeResult::Unknown
        );
    }

    #[test]
    fn a_result_changes_only_after_the_threshold_in_a_row() {
        let p = Params::of(&Probe {
            success_threshold: Some(2),
            failure_threshold: Some(3),
            ..Default::default()
        });
        let mut t = Tracker::new(Kind::Readiness, p);
        assert_eq!(t.observe(true), None);
        assert_eq!(
            t.observe(false),
            None,
            "the run restarts on a different outcome"
        );
        assert_eq!(t.observe(true), None);
        assert_eq!(t.observe(true), Some(ProbeResult::Success));
        assert_eq!(t.observe(true), None, "no change, no report");
        assert_eq!(t.observe(false), None);
        assert_eq!(t.observe(false), None);
        assert_eq!(t.observe(false), Some(ProbeResult::Failure));
    }

    #[test]
    fn liveness_fails_after_three_failures_by_default() {
        let mut t = Tracker::new(Kind::Liveness, Params::of(&Probe::default()));
        assert_eq!(t.observe(false), None);
        assert_eq!(t.observe(false), None);
        assert_eq!(t.observe(false), Some(ProbeResult::Failure));
    }

    #[test]
    fn a_startup_probe_succeeds_on_the_first_success() {
        let mut t = Tracker::new(Kind::Startup, Params::of(&Probe::default()));
        assert_eq!(t.observe(true), Some(ProbeResult::Success));
    }
}
