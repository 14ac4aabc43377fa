//! Workloads: the `apps/v1` Deployments, ReplicaSets and DaemonSets and the
//! `batch/v1` Jobs, validated and defaulted as the API server does.
//!
//! Owns the [`Workload`] value (one of the kinds, namespace defaulted),
//! the API server's validation of them with its messages (selector required,
//! non-empty and matching the template's labels; `replicas` ≥ 0;
//! `maxSurge`/`maxUnavailable` as int or percent and not both 0; template
//! `restartPolicy: Always`; the template's pod spec validated like a pod's,
//! its fields under `spec.template.`) and the defaulting of the fields the
//! controllers read (`replicas` 1, strategy `RollingUpdate` 25 %/25 %,
//! `progressDeadlineSeconds` 600, `revisionHistoryLimit` 10). A Job's
//! checks and defaults (template `restartPolicy` `Never`/`OnFailure`,
//! counts ≥ 0, `completionMode`, the generated selector and labels) are
//! [`validate_job`] and [`default_job`]. Matching a
//! `metav1.LabelSelector` against labels lives here too.
//!
//! It does not run anything: the workload controllers do.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    DaemonSet, DaemonSetUpdateStrategy, Deployment, DeploymentStrategy, ReplicaSet,
    RollingUpdateDaemonSet, RollingUpdateDeployment,
};
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::ManifestError;

/// One workload of a manifest.
#[derive(Debug, Clone, PartialEq)]
pub enum Workload {
    Deployment(Deployment),
    ReplicaSet(ReplicaSet),
    DaemonSet(DaemonSet),
    /// A `batch/v1` CronJob (checked by [`super::cronjob`]).
    CronJob(Box<CronJob>),
    /// A `batch/v1` Job (from a manifest, or made by a CronJob).
    Job(Job),
}

/// The label with a Job's UID its generated selector selects.
pub const JOB_CONTROLLER_UID: &str = "batch.kubernetes.io/controller-uid";
/// The label with a Job's name on its pods.
pub const JOB_NAME: &str = "batch.kubernetes.io/job-name";
/// The legacy labels the API server also adds to a Job's template.
const LEGACY_CONTROLLER_UID: &str = "controller-uid";
const LEGACY_JOB_NAME: &str = "job-name";

/// The API server's message for a selector that does not select the
/// template's labels.
pub const SELECTOR_MISMATCH: &str = "`selector` does not match template `labels`";

/// The default `maxSurge` and `maxUnavailable` of a Deployment.
const DEFAULT_PERCENT: &str = "25%";

impl Workload {
    /// `Deployment`, `ReplicaSet` or `DaemonSet`.
    pub fn kind(&self) -> &'static str {
        match self {
            Workload::Deployment(_) => "Deployment",
            Workload::ReplicaSet(_) => "ReplicaSet",
            Workload::DaemonSet(_) => "DaemonSet",
            Workload::CronJob(_) => "CronJob",
            Workload::Job(_) => "Job",
        }
    }

    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            Workload::Deployment(d) => &d.metadata,
            Workload::ReplicaSet(r) => &r.metadata,
            Workload::DaemonSet(d) => &d.metadata,
            Workload::CronJob(c) => &c.metadata,
            Workload::Job(j) => &j.metadata,
        }
    }

    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        match self {
            Workload::Deployment(d) => &mut d.metadata,
            Workload::ReplicaSet(r) => &mut r.metadata,
            Workload::DaemonSet(d) => &mut d.metadata,
            Workload::CronJob(c) => &mut c.metadata,
            Workload::Job(j) => &mut j.metadata,
        }
    }

    /// `(selector, template)`, when the spec has them.
    fn selector_and_template(&self) -> Option<(&LabelSelector, &PodTemplateSpec)> {
        match self {
            Workload::Deployment(d) => d.spec.as_ref().map(|s| (&s.selector, &s.template)),
            Workload::ReplicaSet(r) => {
                (r.spec.as_ref()).and_then(|s| Some((&s.selector, s.template.as_ref()?)))
            }
            Workload::DaemonSet(d) => d.spec.as_ref().map(|s| (&s.selector, &s.template)),
            Workload::CronJob(_) => None,
            Workload::Job(_) => None,
        }
    }

    /// The pod template, when the spec has one.
    pub fn template(&self) -> Option<&PodTemplateSpec> {
        match self {
            Workload::Job(j) => j.spec.as_ref().map(|s| &s.template),
            _ => self.selector_and_template().map(|(_, t)| t),
        }
    }

    /// `namespace/name`.
    pub fn key(&self) -> String {
        let meta = self.metadata();
        format!(
            "{}/{}",
            meta.namespace.as_deref().unwrap_or("default"),
            meta.name.as_deref().unwrap_or_default()
        )
    }
}

/// Does `selector` select `labels`? (`matchLabels` and `matchExpressions`
/// with `In`, `NotIn`, `Exists`, `DoesNotExist`, all ANDed.) An empty
/// selector selects everything, as in Kubernetes.
pub fn selector_matches(
    selector: &LabelSelector,
    labels: Option<&BTreeMap<String, String>>,
) -> bool {
    let get = |k: &str| labels.and_then(|l| l.get(k));
    let by_label = (selector.match_labels.iter().flatten()).all(|(k, v)| get(k) == Some(v));
    let by_expression = (selector.match_expressions.iter().flatten()).all(|e| {
        let values = e.values.as_deref().unwrap_or_default();
        match e.operator.as_str() {
            "In" => get(&e.key).is_some_and(|v| values.contains(v)),
            "NotIn" => get(&e.key).is_none_or(|v| !values.contains(v)),
            "Exists" => get(&e.key).is_some(),
            "DoesNotExist" => get(&e.key).is_none(),
            _ => false,
        }
    });
    by_label && by_expression
}

fn selector_is_empty(selector: &LabelSelector) -> bool {
    selector
        .match_labels
        .as_ref()
        .is_none_or(BTreeMap::is_empty)
        && selector
            .match_expressions
            .as_ref()
            .is_none_or(Vec::is_empty)
}

/// The API server's field errors, rendered its way.
#[derive(Default)]
struct Errors(Vec<(String, String)>);

impl Errors {
    fn push(&mut self, field: &str, reason: impl Into<String>) {
        self.0.push((field.to_string(), reason.into()));
    }

    fn into_result(self) -> Result<(), ManifestError> {
        let mut iter = self.0.into_iter();
        let Some((field, mut text)) = iter.next() else {
            return Ok(());
        };
        for (f, r) in iter {
            text.push_str(&format!("; {f}: {r}"));
        }
        let mut err = ManifestError::new("", text);
        err.field = Some(field);
        Err(err)
    }
}

/// Go's `%#v` of a label map, as the API server prints one in a message.
fn go_map(labels: Option<&BTreeMap<String, String>>) -> String {
    let pairs: Vec<String> = (labels.iter().flat_map(|l| l.iter()))
        .map(|(k, v)| format!("{k:?}:{v:?}"))
        .collect();
    format!("map[string]string{{{}}}", pairs.join(", "))
}

/// Checks an int-or-percent value (`maxSurge`, `maxUnavailable`): ≥ 0, a
/// percent string `N%`, at most 100 % when `at_most_100`.
fn check_int_or_percent(errs: &mut Errors, field: &str, v: &IntOrString, at_most_100: bool) {
    match v {
        IntOrString::Int(i) if *i < 0 => {
            errs.push(field, format!("Invalid value: {i}: must be greater than or equal to 0"))
        }
        IntOrString::Int(_) => {}
        IntOrString::String(s) => match percent(s) {
            None => errs.push(
                field,
                format!("Invalid value: {s:?}: a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"),
            ),
            Some(p) if at_most_100 && p > 100 => {
                errs.push(field, format!("Invalid value: {s:?}: must not be greater than 100%"))
            }
            Some(_) => {}
        },
    }
}

/// `N` of `N%`.
fn percent(s: &str) -> Option<u32> {
    let digits = s.strip_suffix('%')?;
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

fn is_zero(v: &IntOrString) -> bool {
    match v {
        IntOrString::Int(i) => *i == 0,
        IntOrString::String(s) => percent(s) == Some(0),
    }
}

/// The surge / unavailable pair of a rolling update.
fn check_rolling(
    errs: &mut Errors,
    path: &str,
    surge: Option<&IntOrString>,
    unavailable: Option<&IntOrString>,
    surge_default: &IntOrString,
) {
    let default = IntOrString::String(DEFAULT_PERCENT.into());
    let surge = surge.unwrap_or(surge_default);
    let unavailable = unavailable.unwrap_or(&default);
    check_int_or_percent(errs, &format!("{path}.maxUnavailable"), unavailable, true);
    check_int_or_percent(errs, &format!("{path}.maxSurge"), surge, false);
    if is_zero(surge) && is_zero(unavailable) {
        let shown = match unavailable {
            IntOrString::Int(i) => i.to_string(),
            IntOrString::String(s) => format!("{s:?}"),
        };
        errs.push(
            &format!("{path}.maxUnavailable"),
            format!("Invalid value: {shown}: may not be 0 when `maxSurge` is 0"),
        );
    }
}

fn check_nonnegative(errs: &mut Errors, field: &str, v: Option<i32>) {
    if let Some(v) = v.filter(|v| *v < 0) {
        errs.push(
            field,
            format!("Invalid value: {v}: must be greater than or equal to 0"),
        );
    }
}

/// Validates a workload as the API server does (after its namespace was
/// defaulted). The error names the first bad field; its location and
/// document are the caller's to fill in.
///
/// Fails with every problem found, joined by `; `.
pub fn validate(workload: &Workload) -> Result<(), ManifestError> {
    let mut errs = Errors::default();
    let meta = workload.metadata();
    match meta.name.as_deref() {
        None | Some("") => errs.push("metadata.name", "Required value: name or generateName is required"),
        Some(name) if !crate::k8s::names::is_dns1123_subdomain_syntax(name) || name.len() > 253 => {
            errs.push("metadata.name", format!("Invalid value: {name:?}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"))
        }
        Some(_) => {}
    }
    if let Some(ns) = meta.namespace.as_deref() {
        if !crate::k8s::names::is_dns1123_label_syntax(ns) || ns.len() > 63 {
            errs.push("metadata.namespace", format!("Invalid value: {ns:?}: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"));
        }
    }
    let kind = workload.kind().to_lowercase();
    if let Workload::CronJob(cj) = workload {
        if let Err(e) = super::cronjob::validate(cj) {
            errs.push(e.field.as_deref().unwrap_or("spec"), e.reason);
        }
        return errs.into_result();
    }
    if let Workload::Job(job) = workload {
        check_job(&mut errs, job);
        return errs.into_result();
    }
    match workload {
        Workload::Deployment(d) => {
            if let Some(spec) = &d.spec {
                check_nonnegative(&mut errs, "spec.replicas", spec.replicas);
                check_nonnegative(&mut errs, "spec.minReadySeconds", spec.min_ready_seconds);
                check_nonnegative(
                    &mut errs,
                    "spec.revisionHistoryLimit",
                    spec.revision_history_limit,
                );
                check_strategy(&mut errs, spec.strategy.as_ref());
                if let Some(deadline) = spec.progress_deadline_seconds {
                    check_nonnegative(&mut errs, "spec.progressDeadlineSeconds", Some(deadline));
                    if deadline <= spec.min_ready_seconds.unwrap_or(0) {
                        errs.push(
                            "spec.progressDeadlineSeconds",
                            format!(
                                "Invalid value: {deadline}: must be greater than minReadySeconds"
                            ),
                        );
                    }
                }
            }
        }
        Workload::ReplicaSet(r) => {
            if let Some(spec) = &r.spec {
                check_nonnegative(&mut errs, "spec.replicas", spec.replicas);
                check_nonnegative(&mut errs, "spec.minReadySeconds", spec.min_ready_seconds);
            }
        }
        Workload::DaemonSet(d) => {
            if let Some(spec) = &d.spec {
                check_nonnegative(&mut errs, "spec.minReadySeconds", spec.min_ready_seconds);
                check_daemon_strategy(&mut errs, spec.update_strategy.as_ref());
            }
        }
        Workload::CronJob(_) => {}
        Workload::Job(_) => {}
    }
    let has_spec = match workload {
        Workload::Deployment(d) => d.spec.is_some(),
        Workload::ReplicaSet(r) => r.spec.is_some(),
        Workload::DaemonSet(d) => d.spec.is_some(),
        Workload::CronJob(c) => c.spec.is_some(),
        Workload::Job(j) => j.spec.is_some(),
    };
    if !has_spec {
        errs.push("spec.selector", "Required value");
        errs.push("spec.template", "Required value");
        return errs.into_result();
    }
    match workload.selector_and_template() {
        None => {
            // Only a ReplicaSet may leave its template out (to adopt pods);
            // without an API server there is nothing to adopt.
            errs.push("spec.template", "Required value");
        }
        Some((selector, template)) => {
            if selector_is_empty(selector) {
                errs.push(
                    "spec.selector",
                    format!("Invalid value: \"{{}}\": empty selector is invalid for {kind}"),
                );
            }
            for (i, e) in selector.match_expressions.iter().flatten().enumerate() {
                let field = format!("spec.selector.matchExpressions[{i}].operator");
                match e.operator.as_str() {
                    "In" | "NotIn" if e.values.as_ref().is_none_or(Vec::is_empty) => errs.push(
                        &format!("spec.selector.matchExpressions[{i}].values"),
                        "Required value: must be specified when `operator` is 'In' or 'NotIn'",
                    ),
                    "Exists" | "DoesNotExist" if e.values.as_ref().is_some_and(|v| !v.is_empty()) => errs.push(
                        &format!("spec.selector.matchExpressions[{i}].values"),
                        "Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ),
                    "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
                    other => errs.push(&field, format!("Invalid value: {other:?}: not a valid selector operator")),
                }
            }
            let labels = template.metadata.as_ref().and_then(|m| m.labels.as_ref());
            if !selector_is_empty(selector) && !selector_matches(selector, labels) {
                errs.push(
                    "spec.template.metadata.labels",
                    format!("Invalid value: {}: {SELECTOR_MISMATCH}", go_map(labels)),
                );
            }
            match &template.spec {
                None => errs.push("spec.template.spec.containers", "Required value"),
                Some(spec) => {
                    let policy = spec.restart_policy.as_deref().filter(|p| !p.is_empty());
                    if let Some(p) = policy.filter(|p| *p != "Always") {
                        errs.push(
                            "spec.template.spec.restartPolicy",
                            format!("Unsupported value: {p:?}: supported values: \"Always\""),
                        );
                    }
                    if let Some(d) = spec.active_deadline_seconds {
                        errs.push("spec.template.spec.activeDeadlineSeconds", format!("Forbidden: activeDeadlineSeconds in {} is not Supported (it is {d})", workload.kind()));
                    }
                    if let Err(e) = super::validate::validate_template_spec(spec, "spec.template.")
                    {
                        errs.push(e.field.as_deref().unwrap_or("spec.template"), e.reason);
                    }
                }
            }
        }
    }
    errs.into_result()
}

/// A Job's checks, as the API server's `ValidateJob` (after its
/// defaulting: an unset template `restartPolicy` is `Always`, and refused).
fn check_job(errs: &mut Errors, job: &Job) {
    let Some(spec) = &job.spec else {
        errs.push("spec.template", "Required value");
        return;
    };
    check_nonnegative(errs, "spec.parallelism", spec.parallelism);
    check_nonnegative(errs, "spec.completions", spec.completions);
    check_nonnegative(errs, "spec.backoffLimit", spec.backoff_limit);
    check_nonnegative(
        errs,
        "spec.ttlSecondsAfterFinished",
        spec.ttl_seconds_after_finished,
    );
    if let Some(d) = spec.active_deadline_seconds.filter(|d| *d <= 0) {
        errs.push(
            "spec.activeDeadlineSeconds",
            format!("Invalid value: {d}: must be greater than 0"),
        );
    }
    match spec.completion_mode.as_deref() {
        None | Some("NonIndexed") => {}
        Some("Indexed") => {
            if spec.completions.is_none() {
                errs.push(
                    "spec.completions",
                    "Required value: when completion mode is Indexed",
                );
            }
        }
        Some(other) => errs.push(
            "spec.completionMode",
            format!("Unsupported value: {other:?}: supported values: \"NonIndexed\", \"Indexed\""),
        ),
    }
    for (i, rule) in (spec.pod_failure_policy.iter())
        .flat_map(|p| p.rules.iter())
        .enumerate()
    {
        let field = format!("spec.podFailurePolicy.rules[{i}]");
        match rule.action.as_str() {
            "FailJob" | "Ignore" | "Count" => {}
            "FailIndex" => errs.push(
                &format!("{field}.action"),
                "Forbidden: FailIndex is not supported by rkubelet",
            ),
            other => errs.push(
                &format!("{field}.action"),
                format!("Unsupported value: {other:?}: supported values: \"Count\", \"FailIndex\", \"FailJob\", \"Ignore\""),
            ),
        }
        match (&rule.on_exit_codes, &rule.on_pod_conditions) {
            (Some(_), Some(_)) => errs.push(
                &field,
                "Invalid value: specifying both OnExitCodes and OnPodConditions is not supported",
            ),
            (None, None) => errs.push(
                &field,
                "Invalid value: specifying one of OnExitCodes and OnPodConditions is required",
            ),
            _ => {}
        }
        if let Some(e) = &rule.on_exit_codes {
            if e.operator != "In" && e.operator != "NotIn" {
                errs.push(
                    &format!("{field}.onExitCodes.operator"),
                    format!(
                        "Unsupported value: {:?}: supported values: \"In\", \"NotIn\"",
                        e.operator
                    ),
                );
            }
            if e.values.is_empty() {
                errs.push(
                    &format!("{field}.onExitCodes.values"),
                    "Invalid value: at least one value is required",
                );
            }
            if e.operator == "In" && e.values.contains(&0) {
                errs.push(
                    &format!("{field}.onExitCodes.values"),
                    "Invalid value: 0: must not be 0 for the In operator",
                );
            }
        }
    }
    let policy_set = spec.pod_failure_policy.is_some();
    if spec.backoff_limit_per_index.is_some() {
        errs.push(
            "spec.backoffLimitPerIndex",
            "Forbidden: not supported by rkubelet",
        );
    }
    let labels = (spec.template.metadata.as_ref()).and_then(|m| m.labels.as_ref());
    if spec.manual_selector == Some(true) {
        match &spec.selector {
            None => errs.push("spec.selector", "Required value"),
            Some(sel) if selector_is_empty(sel) => errs.push(
                "spec.selector",
                "Invalid value: \"{}\": empty selector is invalid for job",
            ),
            Some(sel) if !selector_matches(sel, labels) => errs.push(
                "spec.template.metadata.labels",
                format!("Invalid value: {}: {SELECTOR_MISMATCH}", go_map(labels)),
            ),
            Some(_) => {}
        }
    } else if let Some(sel) = &spec.selector {
        let shown = serde_json::to_string(sel).unwrap_or_default();
        errs.push(
            "spec.selector",
            format!("Invalid value: {shown}: `selector` not auto-generated (set `manualSelector: true` to choose one)"),
        );
    }
    match &spec.template.spec {
        None => errs.push("spec.template.spec.containers", "Required value"),
        Some(pod) => {
            let policy = (pod.restart_policy.as_deref())
                .filter(|p| !p.is_empty())
                .unwrap_or("Always");
            if policy_set && policy != "Never" {
                errs.push(
                    "spec.template.spec.restartPolicy",
                    format!("Invalid value: {policy:?}: only \"Never\" is supported when podFailurePolicy is specified"),
                );
            } else if policy != "Never" && policy != "OnFailure" {
                errs.push(
                    "spec.template.spec.restartPolicy",
                    format!(
                        "Unsupported value: {policy:?}: supported values: \"OnFailure\", \"Never\""
                    ),
                );
            }
            if let Err(e) = super::validate::validate_template_spec(pod, "spec.template.") {
                errs.push(e.field.as_deref().unwrap_or("spec.template"), e.reason);
            }
        }
    }
}

/// Validates a Job (see [`validate`]).
pub fn validate_job(job: &Job) -> Result<(), ManifestError> {
    validate(&Workload::Job(job.clone()))
}

/// The warnings for what a valid Job asks that rkubelet does not do
/// (`podFailurePolicy` rules on pod conditions, which never match here;
/// `successPolicy`).
pub fn job_warnings(job: &Job) -> Vec<String> {
    let mut out = Vec::new();
    let rules = (job.spec.iter())
        .flat_map(|s| s.pod_failure_policy.iter())
        .flat_map(|p| p.rules.iter());
    for (i, rule) in rules.enumerate() {
        if rule.on_pod_conditions.is_some() {
            out.push(format!("spec.podFailurePolicy.rules[{i}].onPodConditions: not supported by rkubelet; this rule never matches"));
        }
    }
    if (job.spec.as_ref()).is_some_and(|s| s.success_policy.is_some()) {
        out.push("spec.successPolicy: not supported by rkubelet; the Job completes when its completions succeed".to_string());
    }
    out
}

/// Defaults a Job as the API server does: namespace, `parallelism` 1 (and
/// `completions` 1 when both are unset), `backoffLimit` 6, `completionMode`
/// `NonIndexed`, `suspend` false, `manualSelector` off; then the generated
/// selector (`batch.kubernetes.io/controller-uid: <uid>`) and the labels
/// `controller-uid`, `batch.kubernetes.io/controller-uid`, `job-name` and
/// `batch.kubernetes.io/job-name` on the template. The UID is
/// `metadata.uid` (the loader sets it from the manifest's identity); a Job
/// without one gets a hash of its content.
pub fn default_job(job: &mut Job) {
    if job.metadata.uid.as_deref().is_none_or(str::is_empty) {
        use sha2::{Digest, Sha256};
        let raw = serde_json::to_vec(&*job).unwrap_or_default();
        job.metadata.uid = Some(hex::encode(&Sha256::digest(&raw)[..16]));
    }
    if job.metadata.namespace.as_deref().is_none_or(str::is_empty) {
        job.metadata.namespace = Some("default".into());
    }
    let uid = job.metadata.uid.clone().unwrap_or_default();
    let name = job.metadata.name.clone().unwrap_or_default();
    let spec = job.spec.get_or_insert_with(Default::default);
    if spec.completions.is_none() && spec.parallelism.is_none() {
        spec.completions = Some(1);
    }
    spec.parallelism.get_or_insert(1);
    spec.backoff_limit.get_or_insert(6);
    spec.completion_mode
        .get_or_insert_with(|| "NonIndexed".into());
    spec.suspend.get_or_insert(false);
    spec.pod_replacement_policy
        .get_or_insert_with(|| "TerminatingOrFailed".into());
    if spec.manual_selector != Some(true) {
        spec.selector = Some(LabelSelector {
            match_labels: Some([(JOB_CONTROLLER_UID.to_string(), uid.clone())].into()),
            ..Default::default()
        });
        let labels = (spec
            .template
            .metadata
            .get_or_insert_with(Default::default)
            .labels)
            .get_or_insert_with(Default::default);
        for (k, v) in [
            (LEGACY_CONTROLLER_UID, &uid),
            (JOB_CONTROLLER_UID, &uid),
            (LEGACY_JOB_NAME, &name),
            (JOB_NAME, &name),
        ] {
            labels.insert(k.to_string(), v.clone());
        }
    }
}

fn check_strategy(errs: &mut Errors, strategy: Option<&DeploymentStrategy>) {
    let Some(strategy) = strategy else { return };
    let kind = strategy
        .type_
        .as_deref()
        .filter(|t| !t.is_empty())
        .unwrap_or("RollingUpdate");
    match kind {
        "Recreate" => {
            if strategy.rolling_update.is_some() {
                errs.push(
                    "spec.strategy.rollingUpdate",
                    "Forbidden: may not be specified when strategy `type` is 'Recreate'",
                );
            }
        }
        "RollingUpdate" => {
            let ru = strategy.rolling_update.as_ref();
            check_rolling(
                errs,
                "spec.strategy.rollingUpdate",
                ru.and_then(|r| r.max_surge.as_ref()),
                ru.and_then(|r| r.max_unavailable.as_ref()),
                &IntOrString::String(DEFAULT_PERCENT.into()),
            );
        }
        other => errs.push(
            "spec.strategy.type",
            format!(
                "Unsupported value: {other:?}: supported values: \"Recreate\", \"RollingUpdate\""
            ),
        ),
    }
}

fn check_daemon_strategy(errs: &mut Errors, strategy: Option<&DaemonSetUpdateStrategy>) {
    let Some(strategy) = strategy else { return };
    let kind = strategy
        .type_
        .as_deref()
        .filter(|t| !t.is_empty())
        .unwrap_or("RollingUpdate");
    match kind {
        "OnDelete" => {}
        "RollingUpdate" => {
            let ru = strategy.rolling_update.as_ref();
            check_rolling(
                errs,
                "spec.updateStrategy.rollingUpdate",
                ru.and_then(|r| r.max_surge.as_ref()),
                ru.and_then(|r| r.max_unavailable.as_ref()),
                &IntOrString::Int(0),
            );
        }
        other => errs.push(
            "spec.updateStrategy.type",
            format!(
                "Unsupported value: {other:?}: supported values: \"OnDelete\", \"RollingUpdate\""
            ),
        ),
    }
}

/// Defaults what the API server defaults and the controllers read:
/// namespace `default`, `replicas` 1, a Deployment's strategy
/// (`RollingUpdate`, 25 %/25 %), `progressDeadlineSeconds` 600,
/// `revisionHistoryLimit` 10, `minReadySeconds` 0; a DaemonSet's update
/// strategy (`RollingUpdate`, `maxUnavailable` 1, `maxSurge` 0).
pub fn apply_defaults(workload: &mut Workload) {
    let meta = workload.metadata_mut();
    if meta.namespace.as_deref().is_none_or(str::is_empty) {
        meta.namespace = Some("default".into());
    }
    let percent = || Some(IntOrString::String(DEFAULT_PERCENT.into()));
    match workload {
        Workload::CronJob(c) => super::cronjob::apply_defaults(c),
        Workload::Deployment(d) => {
            let spec = d.spec.get_or_insert_with(Default::default);
            spec.replicas.get_or_insert(1);
            spec.min_ready_seconds.get_or_insert(0);
            spec.progress_deadline_seconds.get_or_insert(600);
            spec.revision_history_limit.get_or_insert(10);
            let strategy = spec.strategy.get_or_insert_with(Default::default);
            let kind = strategy.type_.get_or_insert_with(|| "RollingUpdate".into());
            if kind == "RollingUpdate" {
                let ru = strategy
                    .rolling_update
                    .get_or_insert_with(RollingUpdateDeployment::default);
                if ru.max_surge.is_none() {
                    ru.max_surge = percent();
                }
                if ru.max_unavailable.is_none() {
                    ru.max_unavailable = percent();
                }
            }
        }
        Workload::ReplicaSet(r) => {
            let spec = r.spec.get_or_insert_with(Default::default);
            spec.replicas.get_or_insert(1);
            spec.min_ready_seconds.get_or_insert(0);
        }
        Workload::DaemonSet(d) => {
            let spec = d.spec.get_or_insert_with(Default::default);
            spec.min_ready_seconds.get_or_insert(0);
            spec.revision_history_limit.get_or_insert(10);
            let strategy = spec.update_strategy.get_or_insert_with(Default::default);
            let kind = strategy.type_.get_or_insert_with(|| "RollingUpdate".into());
            if kind == "RollingUpdate" {
                let ru = strategy
                    .rolling_update
                    .get_or_insert_with(RollingUpdateDaemonSet::default);
                ru.max_unavailable.get_or_insert(IntOrString::Int(1));
                ru.max_surge.get_or_insert(IntOrString::Int(0));
            }
        }
        Workload::Job(j) => default_job(j),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(yaml: &str) -> Workload {
        Workload::Deployment(serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("{e}")))
    }

    const WEB: &str = r#"
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web, tier: front}}
    spec:
      containers: [{name: web, image: busybox}]
"#;

    fn err(w: &Workload) -> ManifestError {
        validate(w).expect_err("invalid")
    }

    #[test]
    fn a_plain_deployment_is_valid_and_defaulted_like_the_api_server_does() {
        let mut w = deployment(WEB);
        validate(&w).unwrap_or_else(|e| panic!("{e}"));
        apply_defaults(&mut w);
        let Workload::Deployment(d) = &w else {
            panic!()
        };
        let spec = d.spec.as_ref().expect("spec");
        assert_eq!(d.metadata.namespace.as_deref(), Some("default"));
        assert_eq!(spec.progress_deadline_seconds, Some(600));
        let ru = (spec.strategy.as_ref())
            .and_then(|s| s.rolling_update.as_ref())
            .expect("ru");
        assert_eq!(ru.max_surge, Some(IntOrString::String("25%".into())));
        assert_eq!(ru.max_unavailable, Some(IntOrString::String("25%".into())));
        assert_eq!(w.key(), "default/web");
    }

    #[test]
    fn a_selector_not_matching_the_template_labels_gets_the_api_servers_message() {
        let e = err(&deployment(&WEB.replace("{app: web}}", "{app: api}}")));
        assert_eq!(e.field.as_deref(), Some("spec.template.metadata.labels"));
        assert_eq!(
            e.reason,
            "Invalid value: map[string]string{\"app\":\"web\", \"tier\":\"front\"}: `selector` does not match template `labels`"
        );
    }

    #[test]
    fn a_missing_or_empty_selector_is_rejected() {
        let e = err(&deployment(
            &WEB.replace("  selector: {matchLabels: {app: web}}\n", ""),
        ));
        assert_eq!(e.field.as_deref(), Some("spec.selector"));
        assert!(
            e.reason
                .starts_with("Invalid value: \"{}\": empty selector is invalid for deployment"),
            "{e}"
        );
        let e = err(&deployment(&WEB.replace(
            "{matchLabels: {app: web}}",
            "{matchExpressions: [{key: app, operator: Is, values: [web]}]}",
        )));
        assert_eq!(
            e.field.as_deref(),
            Some("spec.selector.matchExpressions[0].operator")
        );
    }

    #[test]
    fn match_expressions_select_as_kubernetes_does() {
        let w = deployment(&WEB.replace(
            "{matchLabels: {app: web}}",
            "{matchLabels: {app: web}, matchExpressions: [{key: tier, operator: In, values: [front, back]}, {key: canary, operator: DoesNotExist}]}",
        ));
        validate(&w).unwrap_or_else(|e| panic!("{e}"));
        let e = err(&deployment(&WEB.replace(
            "{matchLabels: {app: web}}",
            "{matchExpressions: [{key: tier, operator: NotIn, values: [front]}]}",
        )));
        assert!(e.reason.ends_with(SELECTOR_MISMATCH), "{e}");
    }

    #[test]
    fn negative_replicas_are_rejected() {
        let e = err(&deployment(&WEB.replace("replicas: 3", "replicas: -1")));
        assert_eq!(e.field.as_deref(), Some("spec.replicas"));
        assert_eq!(
            e.reason,
            "Invalid value: -1: must be greater than or equal to 0"
        );
    }

    #[test]
    fn max_surge_and_max_unavailable_may_not_both_be_zero() {
        for (surge, unavailable) in [("0", "0"), ("0%", "0"), ("0", "\"0%\"")] {
            let e = err(&deployment(&WEB.replace(
                "  replicas: 3\n",
                &format!("  replicas: 3\n  strategy: {{rollingUpdate: {{maxSurge: {surge}, maxUnavailable: {unavailable}}}}}\n"),
            )));
            assert_eq!(
                e.field.as_deref(),
                Some("spec.strategy.rollingUpdate.maxUnavailable"),
                "{e}"
            );
            assert!(
                e.reason.ends_with("may not be 0 when `maxSurge` is 0"),
                "{e}"
            );
        }
        let ok = deployment(&WEB.replace(
            "  replicas: 3\n",
            "  replicas: 3\n  strategy: {rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}\n",
        ));
        validate(&ok).unwrap_or_else(|e| panic!("{e}"));
        let e = err(&deployment(&WEB.replace(
            "  replicas: 3\n",
            "  replicas: 3\n  strategy: {rollingUpdate: {maxUnavailable: 120%}}\n",
        )));
        assert!(e.reason.contains("must not be greater than 100%"), "{e}");
        let e = err(&deployment(&WEB.replace(
            "  replicas: 3\n",
            "  replicas: 3\n  strategy: {rollingUpdate: {maxSurge: lots}}\n",
        )));
        assert_eq!(
            e.field.as_deref(),
            Some("spec.strategy.rollingUpdate.maxSurge")
        );
        let e = err(&deployment(&WEB.replace(
            "  replicas: 3\n",
            "  replicas: 3\n  strategy: {type: Recreate, rollingUpdate: {maxSurge: 1}}\n",
        )));
        assert_eq!(e.field.as_deref(), Some("spec.strategy.rollingUpdate"));
    }

    #[test]
    fn the_template_must_restart_always_and_be_a_valid_pod() {
        let e = err(&deployment(&WEB.replace(
            "    spec:\n",
            "    spec:\n      restartPolicy: OnFailure\n",
        )));
        assert_eq!(e.field.as_deref(), Some("spec.template.spec.restartPolicy"));
        assert_eq!(
            e.reason,
            "Unsupported value: \"OnFailure\": supported values: \"Always\""
        );
        let e = err(&deployment(&WEB.replace("image: busybox", "image: \"\"")));
        assert_eq!(
            e.field.as_deref(),
            Some("spec.template.spec.containers[0].image"),
            "{e}"
        );
    }

    #[test]
    fn daemon_sets_and_replica_sets_are_checked_alike() {
        let ds: DaemonSet = serde_yaml::from_str(&WEB.replace(
            "  replicas: 3\n",
            "  updateStrategy: {rollingUpdate: {maxUnavailable: 0}}\n",
        ))
        .expect("ds");
        let e = err(&Workload::DaemonSet(ds));
        assert_eq!(
            e.field.as_deref(),
            Some("spec.updateStrategy.rollingUpdate.maxUnavailable")
        );
        let rs: ReplicaSet =
            serde_yaml::from_str(&WEB.replace("{app: web}}", "{app: x}}")).expect("rs");
        let e = err(&Workload::ReplicaSet(rs));
        assert!(e.reason.ends_with(SELECTOR_MISMATCH), "{e}");
        let mut ds = Workload::DaemonSet(
            serde_yaml::from_str(&WEB.replace("  replicas: 3\n", "")).expect("ds"),
        );
        validate(&ds).unwrap_or_else(|e| panic!("{e}"));
        apply_defaults(&mut ds);
        let Workload::DaemonSet(d) = &ds else {
            panic!()
        };
        let ru = (d.spec.as_ref().and_then(|s| s.update_strategy.as_ref()))
            .and_then(|s| s.rolling_update.as_ref())
            .expect("ru");
        assert_eq!(ru.max_unavailable, Some(IntOrString::Int(1)));
    }

    const JOB: &str = "metadata: {name: work}\nspec:\n  completions: 3\n  parallelism: 2\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: c, image: busybox}]\n";

    fn job(yaml: &str) -> Workload {
        Workload::Job(serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("{e}")))
    }

    #[test]
    fn a_job_is_defaulted_with_the_generated_selector_and_labels() {
        let mut w = job(JOB);
        validate(&w).unwrap_or_else(|e| panic!("{e}"));
        if let Workload::Job(j) = &mut w {
            j.metadata.uid = Some("u-1".into());
        }
        apply_defaults(&mut w);
        let Workload::Job(j) = &w else { panic!() };
        let spec = j.spec.as_ref().expect("spec");
        assert_eq!(spec.backoff_limit, Some(6));
        assert_eq!(spec.completion_mode.as_deref(), Some("NonIndexed"));
        let sel = spec
            .selector
            .as_ref()
            .and_then(|s| s.match_labels.as_ref())
            .expect("sel");
        assert_eq!(sel[JOB_CONTROLLER_UID], "u-1");
        let labels = (spec.template.metadata.as_ref())
            .and_then(|m| m.labels.as_ref())
            .expect("labels");
        assert_eq!(labels["controller-uid"], "u-1");
        assert_eq!(labels["job-name"], "work");
        assert_eq!(labels[JOB_NAME], "work");
        let mut bare = job(&JOB.replace("  completions: 3\n  parallelism: 2\n", ""));
        apply_defaults(&mut bare);
        let Workload::Job(b) = &bare else { panic!() };
        let spec = b.spec.as_ref().expect("spec");
        assert_eq!((spec.completions, spec.parallelism), (Some(1), Some(1)));
        assert!(
            b.metadata.uid.as_deref().is_some_and(|u| u.len() == 32),
            "content uid"
        );
    }

    #[test]
    fn a_job_is_checked_as_the_api_server_does() {
        let cases = [
            (
                "restartPolicy: Never",
                "restartPolicy: Always",
                "spec.template.spec.restartPolicy",
                "Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\"",
            ),
            (
                "      restartPolicy: Never\n",
                "",
                "spec.template.spec.restartPolicy",
                "Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\"",
            ),
            (
                "completions: 3",
                "completions: -1",
                "spec.completions",
                "Invalid value: -1: must be greater than or equal to 0",
            ),
            (
                "parallelism: 2",
                "parallelism: -2",
                "spec.parallelism",
                "Invalid value: -2: must be greater than or equal to 0",
            ),
            (
                "parallelism: 2",
                "parallelism: 2\n  backoffLimit: -1",
                "spec.backoffLimit",
                "Invalid value: -1: must be greater than or equal to 0",
            ),
            (
                "parallelism: 2",
                "parallelism: 2\n  activeDeadlineSeconds: 0",
                "spec.activeDeadlineSeconds",
                "Invalid value: 0: must be greater than 0",
            ),
            (
                "parallelism: 2",
                "parallelism: 2\n  ttlSecondsAfterFinished: -5",
                "spec.ttlSecondsAfterFinished",
                "Invalid value: -5: must be greater than or equal to 0",
            ),
            (
                "parallelism: 2",
                "parallelism: 2\n  completionMode: Sometimes",
                "spec.completionMode",
                "Unsupported value: \"Sometimes\": supported values: \"NonIndexed\", \"Indexed\"",
            ),
            (
                "  completions: 3\n",
                "  completionMode: Indexed\n",
                "spec.completions",
                "Required value: when completion mode is Indexed",
            ),
        ];
        for (from, to, field, reason) in cases {
            let e = err(&job(&JOB.replace(from, to)));
            assert_eq!(e.field.as_deref(), Some(field), "{to}: {e}");
            assert_eq!(e.reason, reason, "{to}");
        }
        let e = err(&job(&JOB.replace(
            "  parallelism: 2\n",
            "  parallelism: 2\n  selector: {matchLabels: {a: b}}\n",
        )));
        assert_eq!(e.field.as_deref(), Some("spec.selector"));
        assert!(e.reason.contains("`selector` not auto-generated"), "{e}");
        let manual = JOB
            .replace(
                "  parallelism: 2\n",
                "  parallelism: 2\n  manualSelector: true\n  selector: {matchLabels: {a: b}}\n",
            )
            .replace("    spec:\n", "    metadata: {labels: {a: b}}\n    spec:\n");
        validate(&job(&manual)).unwrap_or_else(|e| panic!("{e}"));
        validate(&job(&JOB.replace("Never", "OnFailure"))).unwrap_or_else(|e| panic!("{e}"));
        let policy = "  parallelism: 2\n  podFailurePolicy:\n    rules:\n    - {action: FailJob, onExitCodes: {operator: In, values: [42]}}\n";
        let with_policy = JOB.replace("  parallelism: 2\n", policy);
        validate(&job(&with_policy)).unwrap_or_else(|e| panic!("{e}"));
        let e = err(&job(&with_policy.replace("Never", "OnFailure")));
        assert_eq!(e.field.as_deref(), Some("spec.template.spec.restartPolicy"));
        assert!(
            e.reason
                .contains("only \"Never\" is supported when podFailurePolicy is specified"),
            "{e}"
        );
        let e = err(&job(&with_policy.replace("FailJob", "Explode")));
        assert_eq!(
            e.field.as_deref(),
            Some("spec.podFailurePolicy.rules[0].action")
        );
        let e = err(&job(&with_policy.replace("[42]", "[0]")));
        assert_eq!(
            e.field.as_deref(),
            Some("spec.podFailurePolicy.rules[0].onExitCodes.values")
        );
        let conditions = with_policy.replace(
            "onExitCodes: {operator: In, values: [42]}",
            "onPodConditions: [{type: DisruptionTarget}]",
        );
        let Workload::Job(j) = job(&conditions) else {
            panic!()
        };
        validate_job(&j).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(job_warnings(&j).len(), 1);
    }
}
