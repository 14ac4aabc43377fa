//! The Kubernetes vocabulary of probes: which probe ([`ProbeKind`]), its
//! settings with Kubernetes' defaults ([`Params`]: delay 0, period 10 s,
//! timeout 1 s, success 1, failure 3) and [`ProbeReport`], the last known
//! state of one probe as `GET /probes` serves it and `describe` shows it.
//! Pure: running probes is the worker's prober.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Probe};
use serde::{Deserialize, Serialize};

/// Which probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProbeKind {
    Startup,
    Liveness,
    Readiness,
}

impl ProbeKind {
    /// `Liveness`, `Readiness`, `Startup`, as in the kubelet's messages.
    pub fn name(self) -> &'static str {
        match self {
            ProbeKind::Startup => "Startup",
            ProbeKind::Liveness => "Liveness",
            ProbeKind::Readiness => "Readiness",
        }
    }

    /// The container's probe of this kind.
    pub fn of(self, c: &Container) -> Option<&Probe> {
        match self {
            ProbeKind::Startup => c.startup_probe.as_ref(),
            ProbeKind::Liveness => c.liveness_probe.as_ref(),
            ProbeKind::Readiness => c.readiness_probe.as_ref(),
        }
    }
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

/// The last known state of one probe, as `describe` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeReport {
    pub container: String,
    pub kind: String,
    /// `Success`, `Failure` or `Unknown`.
    pub result: String,
    pub last_probe: Option<String>,
    pub last_output: String,
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
}
