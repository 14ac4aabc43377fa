//! The words of a pod's lifecycle as enums: the restart policy, the image
//! pull policy, and the reasons a container is waiting or terminated.
//!
//! Code branches on these, never on strings; [`as_str`](WaitingReason::as_str)
//! gives the exact wire spelling the Kubernetes API uses. Pure vocabulary: no
//! IO, no clock.

use std::fmt;

use k8s_openapi::api::core::v1::{Container, Pod};

/// A pod's `restartPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RestartPolicy {
    /// Restart on every exit (the Kubernetes default).
    #[default]
    Always,
    /// Restart on a non-zero exit.
    OnFailure,
    /// Never restart.
    Never,
}

impl RestartPolicy {
    /// The values the API accepts, in its order.
    pub const NAMES: [&'static str; 3] = ["Always", "OnFailure", "Never"];

    /// Parses the spec's string; unset or unknown is `Always`, as Kubernetes
    /// defaults it (validation rejects unknown values before they get here).
    pub fn parse(s: Option<&str>) -> Self {
        match s {
            Some("OnFailure") => RestartPolicy::OnFailure,
            Some("Never") => RestartPolicy::Never,
            _ => RestartPolicy::Always,
        }
    }

    /// The pod's restart policy.
    pub fn of(pod: &Pod) -> Self {
        Self::parse(pod.spec.as_ref().and_then(|s| s.restart_policy.as_deref()))
    }

    /// Does this policy restart a container that exited with `code`?
    pub fn restarts(self, code: Option<i64>) -> bool {
        match self {
            RestartPolicy::Always => true,
            RestartPolicy::OnFailure => code != Some(0),
            RestartPolicy::Never => false,
        }
    }

    /// The policy an init container runs under in a pod with this policy:
    /// sidecars always restart; the others are retried on failure unless
    /// the pod never restarts.
    pub fn for_init(self, sidecar: bool) -> Self {
        match (sidecar, self) {
            (true, _) => RestartPolicy::Always,
            (false, RestartPolicy::Never) => RestartPolicy::Never,
            (false, _) => RestartPolicy::OnFailure,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RestartPolicy::Always => "Always",
            RestartPolicy::OnFailure => "OnFailure",
            RestartPolicy::Never => "Never",
        }
    }
}

/// Is this init container a sidecar (its own `restartPolicy: Always`)?
pub fn is_sidecar(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some(RestartPolicy::Always.as_str())
}

/// A container's `imagePullPolicy` (defaulted to `IfNotPresent` when unset).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PullPolicy {
    Always,
    #[default]
    IfNotPresent,
    Never,
}

impl PullPolicy {
    /// The values the API accepts, in its order.
    pub const NAMES: [&'static str; 3] = ["Always", "IfNotPresent", "Never"];

    /// The container's pull policy; unset or unknown is `IfNotPresent`.
    pub fn of(c: &Container) -> Self {
        match c.image_pull_policy.as_deref() {
            Some("Always") => PullPolicy::Always,
            Some("Never") => PullPolicy::Never,
            _ => PullPolicy::IfNotPresent,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PullPolicy::Always => "Always",
            PullPolicy::IfNotPresent => "IfNotPresent",
            PullPolicy::Never => "Never",
        }
    }
}

/// Why a container is waiting (`state.waiting.reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WaitingReason {
    /// Not started yet; the pod is initialized.
    ContainerCreating,
    /// Not started yet; init containers still run.
    PodInitializing,
    /// Restarting after a crash, held back by backoff.
    CrashLoopBackOff,
    /// The image pull just failed.
    ErrImagePull,
    /// The image pull failed and is backing off.
    ImagePullBackOff,
    /// The image is missing and the pull policy is `Never`.
    ErrImageNeverPull,
    /// The container's configuration cannot be built (missing ConfigMap…).
    CreateContainerConfigError,
    /// The runtime refused to create the container.
    CreateContainerError,
    /// The runtime refused to start the container.
    RunContainerError,
}

impl WaitingReason {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            WaitingReason::ContainerCreating => "ContainerCreating",
            WaitingReason::PodInitializing => "PodInitializing",
            WaitingReason::CrashLoopBackOff => "CrashLoopBackOff",
            WaitingReason::ErrImagePull => "ErrImagePull",
            WaitingReason::ImagePullBackOff => "ImagePullBackOff",
            WaitingReason::ErrImageNeverPull => "ErrImageNeverPull",
            WaitingReason::CreateContainerConfigError => "CreateContainerConfigError",
            WaitingReason::CreateContainerError => "CreateContainerError",
            WaitingReason::RunContainerError => "RunContainerError",
        }
    }
}

impl fmt::Display for WaitingReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a container terminated (`state.terminated.reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TerminatedReason {
    /// Exit code 0.
    Completed,
    /// A non-zero exit.
    Error,
    /// Killed for running out of memory.
    OomKilled,
    /// The runtime could not run the process.
    ContainerCannotRun,
}

impl TerminatedReason {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TerminatedReason::Completed => "Completed",
            TerminatedReason::Error => "Error",
            TerminatedReason::OomKilled => "OOMKilled",
            TerminatedReason::ContainerCannotRun => "ContainerCannotRun",
        }
    }
}

impl fmt::Display for TerminatedReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policy_defaults_to_always_and_decides_by_exit_code() {
        assert_eq!(RestartPolicy::parse(None), RestartPolicy::Always);
        for p in [
            RestartPolicy::Always,
            RestartPolicy::OnFailure,
            RestartPolicy::Never,
        ] {
            assert_eq!(RestartPolicy::parse(Some(p.as_str())), p);
        }
        let r = |p: RestartPolicy, code| p.restarts(Some(code));
        assert!(r(RestartPolicy::Always, 0) && r(RestartPolicy::Always, 1));
        assert!(!r(RestartPolicy::OnFailure, 0) && r(RestartPolicy::OnFailure, 1));
        assert!(!r(RestartPolicy::Never, 0) && !r(RestartPolicy::Never, 1));
    }

    #[test]
    fn init_containers_retry_on_failure_unless_the_pod_never_restarts() {
        assert_eq!(
            RestartPolicy::Always.for_init(false),
            RestartPolicy::OnFailure
        );
        assert_eq!(RestartPolicy::Never.for_init(false), RestartPolicy::Never);
        assert_eq!(RestartPolicy::Never.for_init(true), RestartPolicy::Always);
    }

    #[test]
    fn reasons_are_spelled_as_on_the_wire() {
        assert_eq!(WaitingReason::CrashLoopBackOff.as_str(), "CrashLoopBackOff");
        assert_eq!(WaitingReason::ErrImagePull.to_string(), "ErrImagePull");
        assert_eq!(TerminatedReason::OomKilled.as_str(), "OOMKilled");
    }
}
