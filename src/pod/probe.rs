//! Probe results (pure).
//!
//! A [`Tracker`] turns
//! single probe outcomes into the probe's result the kubelet's way: the result
//! changes only after `successThreshold` successes or `failureThreshold`
//! failures in a row, and starts as failure (readiness), success (liveness) or
//! unknown (startup).

pub use crate::k8s::probe::{Params, ProbeKind};

/// A probe's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeResult {
    Unknown,
    Success,
    Failure,
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
    pub fn new(kind: ProbeKind, params: Params) -> Tracker {
        let result = match kind {
            ProbeKind::Readiness => ProbeResult::Failure,
            ProbeKind::Liveness => ProbeResult::Success,
            ProbeKind::Startup => ProbeResult::Unknown,
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
    use k8s_openapi::api::core::v1::Probe;

    #[test]
    fn results_start_as_the_kubelet_starts_them() {
        let p = Params::of(&Probe::default());
        assert_eq!(
            Tracker::new(ProbeKind::Readiness, p).result(),
            ProbeResult::Failure
        );
        assert_eq!(
            Tracker::new(ProbeKind::Liveness, p).result(),
            ProbeResult::Success
        );
        assert_eq!(
            Tracker::new(ProbeKind::Startup, p).result(),
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
        let mut t = Tracker::new(ProbeKind::Readiness, p);
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
        let mut t = Tracker::new(ProbeKind::Liveness, Params::of(&Probe::default()));
        assert_eq!(t.observe(false), None);
        assert_eq!(t.observe(false), None);
        assert_eq!(t.observe(false), Some(ProbeResult::Failure));
    }

    #[test]
    fn a_startup_probe_succeeds_on_the_first_success() {
        let mut t = Tracker::new(ProbeKind::Startup, Params::of(&Probe::default()));
        assert_eq!(t.observe(true), Some(ProbeResult::Success));
    }
}
