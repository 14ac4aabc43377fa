//! Probe results (pure).
//!
//! A [`Tracker`] turns
//! single probe outcomes into the probe's result the kubelet's way: the result
//! changes only after `successThreshold` successes or `failureThreshold`
//! failures in a row, and starts as failure (readiness), success (liveness) or
//! unknown (startup) — or, for a container that ran before an rkubelet
//! restart, as the result it had ([`Tracker::resume`]).
//!
//! [`SavedResults`] is what survives a restart: the startup and readiness
//! results of running containers, as a small JSON document the worker keeps
//! next to the pod (reading and writing the file is the worker's).

use std::collections::BTreeMap;

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

    /// A tracker for a container whose result before an rkubelet restart
    /// was `result`: it keeps that result until the thresholds change it.
    pub fn resume(params: Params, result: ProbeResult) -> Tracker {
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

/// Probe results worth keeping across an rkubelet restart, by container id
/// and kind: startup and readiness results that are known (success or
/// failure). Liveness starts as success anyway and is not kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SavedResults(pub BTreeMap<(String, ProbeKind), ProbeResult>);

#[derive(serde::Serialize, serde::Deserialize)]
struct SavedEntry {
    container_id: String,
    probe: String,
    success: bool,
}

impl SavedResults {
    /// The results among `results` that are kept.
    pub fn of<'a>(
        results: impl IntoIterator<Item = (&'a (String, ProbeKind), &'a ProbeResult)>,
    ) -> SavedResults {
        SavedResults(
            results
                .into_iter()
                .filter(|((_, kind), result)| {
                    *kind != ProbeKind::Liveness && **result != ProbeResult::Unknown
                })
                .map(|(key, result)| (key.clone(), *result))
                .collect(),
        )
    }

    /// The JSON document: a list of `{container_id, probe, success}`.
    pub fn encode(&self) -> String {
        let entries: Vec<SavedEntry> = self
            .0
            .iter()
            .map(|((id, kind), result)| SavedEntry {
                container_id: id.clone(),
                probe: kind.name().to_string(),
                success: *result == ProbeResult::Success,
            })
            .collect();
        serde_json::to_string(&entries).unwrap_or_else(|_| "[]".to_string())
    }

    /// Reads [`SavedResults::encode`]'s document. Anything unreadable
    /// (another version's file, a torn write) counts as nothing known.
    pub fn decode(text: &str) -> SavedResults {
        let entries: Vec<SavedEntry> = serde_json::from_str(text).unwrap_or_default();
        let kind = |name: &str| match name {
            "Startup" => Some(ProbeKind::Startup),
            "Readiness" => Some(ProbeKind::Readiness),
            _ => None,
        };
        SavedResults(
            entries
                .into_iter()
                .filter_map(|e| {
                    let result = if e.success {
                        ProbeResult::Success
                    } else {
                        ProbeResult::Failure
                    };
                    Some(((e.container_id, kind(&e.probe)?), result))
                })
                .collect(),
        )
    }

    /// The saved result of one container's probe.
    pub fn get(&self, container_id: &str, kind: ProbeKind) -> Option<ProbeResult> {
        self.0.get(&(container_id.to_string(), kind)).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Probe;

    /// The kubelet keeps a running container's `ready` and `started` in the
    /// API server across its own restart (NodeConformance "should not
    /// change container status on kubelet restart"); its prober workers
    /// (`newWorker` in pkg/kubelet/prober/worker.go) otherwise start from
    /// the initial values. A resumed tracker starts from the known result
    /// and changes it only after the thresholds.
    #[test]
    fn a_resumed_tracker_keeps_its_result_until_the_threshold() {
        let p = Params::of(&Probe::default());
        let mut t = Tracker::resume(p, ProbeResult::Success);
        assert_eq!(t.result(), ProbeResult::Success);
        assert_eq!(t.observe(true), None, "still success, no change");
        assert_eq!(t.observe(false), None);
        assert_eq!(t.observe(false), None);
        assert_eq!(t.observe(false), Some(ProbeResult::Failure));
    }

    #[test]
    fn saved_results_keep_known_startup_and_readiness_results_only() {
        let mut all = BTreeMap::new();
        all.insert(
            ("a".to_string(), ProbeKind::Readiness),
            ProbeResult::Success,
        );
        all.insert(("a".to_string(), ProbeKind::Startup), ProbeResult::Success);
        all.insert(("a".to_string(), ProbeKind::Liveness), ProbeResult::Success);
        all.insert(("b".to_string(), ProbeKind::Startup), ProbeResult::Unknown);
        all.insert(
            ("b".to_string(), ProbeKind::Readiness),
            ProbeResult::Failure,
        );
        let saved = SavedResults::of(&all);
        assert_eq!(saved.0.len(), 3);
        let back = SavedResults::decode(&saved.encode());
        assert_eq!(back, saved);
        assert_eq!(
            back.get("a", ProbeKind::Readiness),
            Some(ProbeResult::Success)
        );
        assert_eq!(
            back.get("b", ProbeKind::Readiness),
            Some(ProbeResult::Failure)
        );
        assert_eq!(back.get("b", ProbeKind::Startup), None);
        assert_eq!(back.get("a", ProbeKind::Liveness), None);
    }

    #[test]
    fn an_unreadable_saved_document_means_nothing_is_known() {
        assert_eq!(SavedResults::decode("{not json"), SavedResults::default());
        assert_eq!(SavedResults::decode(""), SavedResults::default());
    }

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
