//! The manifest URL source (`--manifest-url`).
//!
//! Fetches the URL at start and then every `--http-check-frequency`, with a
//! timeout (10 s), a body limit (4 MiB, as for files:
//! [`manifest::limits::MAX_BYTES`]), the user's extra headers, and
//! `If-None-Match` / `If-Modified-Since` from the last answer's `ETag` /
//! `Last-Modified`. The body follows the same content rules as a manifest
//! file and its pods get the origin `url:<url>`.
//!
//! [`HttpState`] is the pure state machine: a transport error, timeout,
//! non-200 status (other than 304), oversize or unparsable body keeps the
//! **previous pods** and reports the error; a 200 with an empty body means
//! "no pods"; an identical body changes nothing. Until the URL has answered
//! with a usable body once, its snapshot asks orphan cleanup to leave
//! `url:<url>` containers alone, so a URL that is down while rkubelet
//! restarts does not kill the pods it defined. Repeated identical errors are
//! logged once, then at most every [`LOG_REPEAT`], and again on change or
//! recovery ([`NoiseFilter`]). [`Fetcher`] does the HTTP and is also used by
//! `rkubelet validate`.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use reqwest::header::{
    HeaderMap, HeaderName, HeaderValue, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED,
};
use reqwest::StatusCode;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{Defined, Snapshot};
use crate::events::{Involved, Recorder};
use crate::manifest::{self, LoadContext, ManifestError, Origin};

/// The source name used in snapshots.
pub const SOURCE_NAME: &str = "http";
/// Largest body accepted: the limit of every manifest.
pub const MAX_BODY: usize = manifest::limits::MAX_BYTES;
/// Default time limit of one fetch (connect + headers + body).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// An unchanged error is logged again at most this often.
pub const LOG_REPEAT: Duration = Duration::from_secs(300);

/// Why a [`Fetcher`] cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetcherError {
    #[error("header {name:?}: {reason}")]
    Header { name: String, reason: String },
    #[error("cannot build an HTTP client: {reason}")]
    Client { reason: String },
}

/// What one fetch brought.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// `304 Not Modified`: the same as the last body.
    NotModified,
    /// `200 OK`, with the body and its validators.
    Body {
        body: Vec<u8>,
        etag: Option<String>,
        last_modified: Option<String>,
    },
    /// Nothing usable: transport error, timeout, another status, oversize.
    Failed(String),
}

/// Fetches one URL with rkubelet's limits and the user's headers. Its
/// `Debug` shows neither the URL's password nor header values.
#[derive(Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    /// The URL fetched, credentials included: never shown.
    target: String,
    /// The URL as shown anywhere (logs, events, errors): its password
    /// redacted.
    url: String,
    /// The password of the URL's userinfo, to scrub from error messages.
    password: Option<String>,
    headers: HeaderMap,
    timeout: Duration,
    max_body: usize,
}

impl std::fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetcher")
            .field("url", &self.url)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("timeout", &self.timeout)
            .field("max_body", &self.max_body)
            .finish_non_exhaustive()
    }
}

impl Fetcher {
    /// A fetcher for `url` sending `headers` (a name given twice is sent
    /// twice). Fails when a header is invalid or the client cannot be built.
    pub fn new(
        url: &str,
        headers: &[(String, String)],
        timeout: Duration,
    ) -> Result<Self, FetcherError> {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            let header = |reason: String| FetcherError::Header {
                name: name.clone(),
                reason,
            };
            let n = HeaderName::from_bytes(name.as_bytes()).map_err(|e| header(e.to_string()))?;
            let v = HeaderValue::from_str(value).map_err(|e| header(e.to_string()))?;
            map.append(n, v);
        }
        let client = crate::http_client::client_builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| FetcherError::Client {
                reason: e.to_string(),
            })?;
        let password = reqwest::Url::parse(url)
            .ok()
            .and_then(|u| u.password().map(str::to_string))
            .filter(|p| !p.is_empty());
        Ok(Fetcher {
            client,
            target: url.to_string(),
            url: manifest::redact_url(url),
            password,
            headers: map,
            timeout,
            max_body: MAX_BODY,
        })
    }

    /// Lowers the body limit (tests).
    pub fn with_max_body(mut self, max: usize) -> Self {
        self.max_body = max;
        self
    }

    /// The URL as it may be shown: its password redacted
    /// ([`manifest::redact_url`]).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// One GET, conditional on the given validators. Never fails: problems
    /// are [`Fetched::Failed`] with a message saying what happened (never
    /// the URL's password).
    pub async fn fetch(&self, etag: Option<&str>, last_modified: Option<&str>) -> Fetched {
        match self.fetch_raw(etag, last_modified).await {
            Fetched::Failed(why) => Fetched::Failed(self.scrub(why)),
            fetched => fetched,
        }
    }

    /// `text` without the URL's password.
    fn scrub(&self, text: String) -> String {
        match &self.password {
            Some(p) if text.contains(p.as_str()) => text
                .replace(&self.target, &self.url)
                .replace(&format!(":{p}@"), &format!(":{}@", manifest::REDACTED)),
            _ => text,
        }
    }

    async fn fetch_raw(&self, etag: Option<&str>, last_modified: Option<&str>) -> Fetched {
        let mut req = self.client.get(&self.target).headers(self.headers.clone());
        if let Some(e) = etag {
            req = req.header(IF_NONE_MATCH, e);
        }
        if let Some(lm) = last_modified {
            req = req.header(IF_MODIFIED_SINCE, lm);
        }
        let mut resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return Fetched::Failed(self.describe(&e)),
        };
        match resp.status() {
            StatusCode::OK => {}
            StatusCode::NOT_MODIFIED => return Fetched::NotModified,
            s => return Fetched::Failed(format!("the server answered {s}, expected 200 OK")),
        }
        let header = |name| {
            resp.headers()
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .map(str::to_string)
        };
        let (etag, last_modified) = (header(ETAG), header(LAST_MODIFIED));
        let too_big = || {
            Fetched::Failed(format!(
                "the body is larger than the limit of {}",
                manifest::limits::human_bytes(self.max_body)
            ))
        };
        if resp
            .content_length()
            .is_some_and(|n| n > self.max_body as u64)
        {
            return too_big();
        }
        let mut body = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > self.max_body {
                        return too_big();
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => return Fetched::Failed(self.describe(&e)),
            }
        }
        Fetched::Body {
            body,
            etag,
            last_modified,
        }
    }

    /// A one-line description of a request error, with its causes.
    fn describe(&self, e: &reqwest::Error) -> String {
        if e.is_timeout() {
            return format!("no complete answer within {:?}", self.timeout);
        }
        let mut msg = if e.is_connect() {
            "cannot connect".to_string()
        } else {
            "request failed".to_string()
        };
        let mut source = std::error::Error::source(e);
        let mut last = String::new();
        while let Some(s) = source {
            let text = s.to_string();
            if text != last {
                msg.push_str(": ");
                msg.push_str(&text);
                last = text;
            }
            source = s.source();
        }
        msg
    }
}

/// What to log about the source's health after a fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogNow {
    Nothing,
    /// A new (or changed) problem.
    Failing(String),
    /// The same problem, still there after [`LOG_REPEAT`].
    StillFailing(String),
    /// The problem went away.
    Recovered,
}

/// Backoff on log noise: an error is logged when it appears or changes, then
/// again at most every `every` while it lasts, and once on recovery.
#[derive(Debug, Clone)]
pub struct NoiseFilter {
    every: Duration,
    current: Option<String>,
    logged_at: Option<Instant>,
}

impl NoiseFilter {
    pub fn new(every: Duration) -> Self {
        NoiseFilter {
            every,
            current: None,
            logged_at: None,
        }
    }

    /// Records the current problem (`None` = healthy) at `now`.
    pub fn observe(&mut self, problem: Option<&str>, now: Instant) -> LogNow {
        match (problem, self.current.as_deref()) {
            (None, None) => LogNow::Nothing,
            (None, Some(_)) => {
                self.current = None;
                self.logged_at = None;
                LogNow::Recovered
            }
            (Some(p), Some(c)) if p == c => {
                let due = self
                    .logged_at
                    .is_none_or(|at| now.duration_since(at) >= self.every);
                if due {
                    self.logged_at = Some(now);
                    LogNow::StillFailing(p.to_string())
                } else {
                    LogNow::Nothing
                }
            }
            (Some(p), _) => {
                self.current = Some(p.to_string());
                self.logged_at = Some(now);
                LogNow::Failing(p.to_string())
            }
        }
    }
}

/// The URL source's state: last body, last good pods, current problems.
#[derive(Debug, Clone)]
pub struct HttpState {
    origin: Origin,
    node_name: String,
    body_hash: Option<[u8; 32]>,
    etag: Option<String>,
    last_modified: Option<String>,
    /// What the last body that loaded defines; `None` until one did.
    good: Option<Defined>,
    warnings: Vec<String>,
    /// The last body did not load (parse or validation error).
    body_error: Option<ManifestError>,
    /// The last fetch brought no body (transport, status, size).
    fetch_error: Option<ManifestError>,
}

impl HttpState {
    pub fn new(url: &str, node_name: &str) -> Self {
        HttpState {
            origin: Origin::url(url),
            node_name: node_name.to_string(),
            body_hash: None,
            etag: None,
            last_modified: None,
            good: None,
            warnings: Vec::new(),
            body_error: None,
            fetch_error: None,
        }
    }

    /// `ETag` of the last body, for `If-None-Match`.
    pub fn etag(&self) -> Option<&str> {
        self.etag.as_deref()
    }
    /// `Last-Modified` of the last body, for `If-Modified-Since`.
    pub fn last_modified(&self) -> Option<&str> {
        self.last_modified.as_deref()
    }

    /// The current problem, if any (fetch errors first).
    pub fn problem(&self) -> Option<&ManifestError> {
        self.fetch_error.as_ref().or(self.body_error.as_ref())
    }

    /// Takes one fetch result. Returns true when the snapshot changed.
    pub fn apply(&mut self, fetched: Fetched, now: Timestamp) -> bool {
        match fetched {
            Fetched::NotModified => self.fetch_error.take().is_some(),
            Fetched::Failed(reason) => {
                let err = ManifestError::new(&self.origin.location, reason);
                let changed = self.fetch_error.as_ref() != Some(&err);
                self.fetch_error = Some(err);
                changed
            }
            Fetched::Body {
                body,
                etag,
                last_modified,
            } => {
                let recovered = self.fetch_error.take().is_some();
                self.etag = etag;
                self.last_modified = last_modified;
                let hash: [u8; 32] = Sha256::digest(&body).into();
                if self.body_hash == Some(hash) {
                    return recovered;
                }
                self.body_hash = Some(hash);
                self.load(&body, now);
                true
            }
        }
    }

    fn load(&mut self, body: &[u8], now: Timestamp) {
        let ctx = LoadContext {
            node_name: &self.node_name,
            origin: &self.origin,
            now,
        };
        let url = &self.origin.location;
        match manifest::load(body, &ctx) {
            Ok(mut loaded) => {
                for w in &loaded.warnings {
                    tracing::warn!(%url, warning = %w, "manifest warning");
                }
                tracing::info!(%url, pods = loaded.pods.len(),
                    configmaps = loaded.configmaps.len(), secrets = loaded.secrets.len(),
                    "manifest URL loaded");
                self.warnings = std::mem::take(&mut loaded.warnings);
                self.good = Some(Defined::new(loaded, &self.origin));
                self.body_error = None;
            }
            Err(e) => {
                self.warnings.clear();
                self.body_error = Some(e);
            }
        }
    }

    /// The current complete snapshot.
    pub fn snapshot(&self) -> Snapshot {
        let good = self.good.clone().unwrap_or_default();
        Snapshot {
            source: SOURCE_NAME.to_string(),
            pods: good.pods,
            workloads: good.workloads,
            errors: self
                .fetch_error
                .iter()
                .chain(self.body_error.iter())
                .cloned()
                .collect(),
            warnings: self.warnings.clone(),
            keep_origins: if self.good.is_none() {
                vec![self.origin.key()]
            } else {
                Vec::new()
            },
            failing: self.problem().map(ToString::to_string),
            configmaps: good.configmaps,
            secrets: good.secrets,
        }
    }
}

/// Event reasons on the node when the manifest URL fails and recovers.
pub const EVENT_FAILED: &str = "ManifestURLFailed";
pub const EVENT_RECOVERED: &str = "ManifestURLRecovered";

/// The running URL source: a [`Fetcher`], an [`HttpState`] and a period.
#[derive(Debug)]
pub struct HttpSource {
    fetcher: Fetcher,
    state: HttpState,
    period: Duration,
    noise: NoiseFilter,
    node_name: String,
    recorder: Option<Arc<Recorder>>,
}

impl HttpSource {
    pub fn new(fetcher: Fetcher, node_name: &str, period: Duration) -> Self {
        HttpSource {
            state: HttpState::new(fetcher.url(), node_name),
            fetcher,
            period,
            noise: NoiseFilter::new(LOG_REPEAT),
            node_name: node_name.to_string(),
            recorder: None,
        }
    }

    /// Also records failures and recoveries as events on the node (as often
    /// as they are logged).
    pub fn with_recorder(mut self, recorder: Arc<Recorder>) -> Self {
        self.recorder = Some(recorder);
        self
    }

    fn event(&self, failed: bool, message: String) {
        if let Some(r) = &self.recorder {
            let node = Involved::node(&self.node_name);
            if failed {
                r.warning(&node, EVENT_FAILED, message);
            } else {
                r.normal(&node, EVENT_RECOVERED, message);
            }
        }
    }

    /// Runs until `cancel`: fetches at once and then every period, sending a
    /// snapshot after the first fetch (whatever its outcome: a failure counts
    /// as an answer for orphan cleanup) and whenever something changed.
    pub async fn run(mut self, tx: mpsc::Sender<Snapshot>, cancel: CancellationToken) {
        let url = self.fetcher.url().to_string();
        let mut tick = tokio::time::interval(self.period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut first = true;
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            let fetch = self
                .fetcher
                .fetch(self.state.etag(), self.state.last_modified());
            let fetched = tokio::select! {
                _ = cancel.cancelled() => return,
                f = fetch => f,
            };
            tracing::debug!(%url, outcome = ?outcome_name(&fetched), "manifest URL fetched");
            crate::metrics::global().url_fetch(match &fetched {
                Fetched::NotModified => "not_modified",
                Fetched::Body { .. } => "ok",
                Fetched::Failed(_) => "failed",
            });
            // Loading a body (up to 4 MiB) is CPU work: off the async
            // workers, so the API and pod workers do not wait on it.
            let mut state = self.state.clone();
            let now = Timestamp::now();
            let loaded = tokio::task::spawn_blocking(move || {
                let changed = state.apply(fetched, now);
                (state, changed)
            });
            let changed = match loaded.await {
                Ok((state, changed)) => {
                    self.state = state;
                    changed
                }
                Err(e) => {
                    tracing::error!(%url, error = %e, "loading the manifest URL's body failed");
                    false
                }
            };
            let keeping = self.state.good.as_ref().map(|g| g.pods.len());
            let problem = self.state.problem().map(ToString::to_string);
            match self.noise.observe(problem.as_deref(), Instant::now()) {
                LogNow::Nothing => {}
                LogNow::Failing(e) => {
                    tracing::error!(%url, error = %e, keeping_last_good_pods = ?keeping,
                    "manifest URL failed; its previous pods keep running");
                    self.event(true, format!("{e}; its previous pods keep running"));
                }
                LogNow::StillFailing(e) => {
                    tracing::warn!(%url, error = %e, keeping_last_good_pods = ?keeping,
                    "manifest URL still failing");
                    self.event(true, format!("{e}; its previous pods keep running"));
                }
                LogNow::Recovered => {
                    tracing::info!(%url, "manifest URL answers again");
                    self.event(false, format!("{url} answers again"));
                }
            }
            if (changed || first) && tx.send(self.state.snapshot()).await.is_err() {
                return;
            }
            first = false;
        }
    }
}

fn outcome_name(f: &Fetched) -> String {
    match f {
        Fetched::NotModified => "304 not modified".into(),
        Fetched::Body { body, .. } => format!("200 with {} bytes", body.len()),
        Fetched::Failed(e) => format!("failed: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    const POD_A: &str = "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n  containers:\n  - {name: c, image: busybox}\n";
    const POD_B: &str = "apiVersion: v1\nkind: Pod\nmetadata: {name: b}\nspec:\n  containers:\n  - {name: c, image: busybox}\n";
    const URL: &str = "http://127.0.0.1:1/pods.yaml";

    fn body(text: &str) -> Fetched {
        Fetched::Body {
            body: text.as_bytes().to_vec(),
            etag: None,
            last_modified: None,
        }
    }

    fn names(s: &Snapshot) -> Vec<String> {
        s.pods.iter().map(|p| p.full_name()).collect()
    }

    #[test]
    fn pods_from_the_url_are_identified_by_the_url() {
        let mut st = HttpState::new(URL, "node1");
        assert!(st.apply(body(POD_A), Timestamp::now()));
        let snap = st.snapshot();
        assert_eq!(snap.source, "http");
        assert_eq!(names(&snap), vec!["default/a-node1"]);
        let p = &snap.pods[0];
        assert_eq!(p.origin.key(), format!("url:{URL}"));
        let ann = p.pod.metadata.annotations.clone().unwrap_or_default();
        assert_eq!(ann["kubernetes.io/config.source"], "http");
        assert!(snap.errors.is_empty() && snap.keep_origins.is_empty() && snap.failing.is_none());
    }

    #[test]
    fn an_identical_body_changes_nothing() {
        let mut st = HttpState::new(URL, "node1");
        assert!(st.apply(body(POD_A), Timestamp::now()));
        let uid = st.snapshot().pods[0].uid().to_string();
        assert!(!st.apply(body(POD_A), Timestamp::now()));
        assert!(!st.apply(Fetched::NotModified, Timestamp::now()));
        assert_eq!(st.snapshot().pods[0].uid(), uid);
    }

    #[test]
    fn a_changed_body_replaces_the_pods() {
        let mut st = HttpState::new(URL, "node1");
        st.apply(body(POD_A), Timestamp::now());
        assert!(st.apply(body(&format!("{POD_A}---\n{POD_B}")), Timestamp::now()));
        assert_eq!(
            names(&st.snapshot()),
            vec!["default/a-node1", "default/b-node1"]
        );
        assert!(st.apply(body(POD_B), Timestamp::now()));
        assert_eq!(names(&st.snapshot()), vec!["default/b-node1"]);
    }

    #[test]
    fn config_maps_and_secrets_from_the_url_come_and_go_with_its_body() {
        let mut st = HttpState::new(URL, "node1");
        let objects = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\ndata: {k: v}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: prod}\nstringData: {p: w}\n";
        st.apply(body(&format!("{POD_A}---\n{objects}")), Timestamp::now());
        let snap = st.snapshot();
        assert_eq!(snap.configmaps.len(), 1);
        assert_eq!(snap.configmaps[0].origin, Origin::url(URL));
        assert_eq!(
            snap.secrets[0].object.metadata.namespace.as_deref(),
            Some("prod")
        );
        // A failed fetch keeps them; a body without them removes them.
        st.apply(Fetched::Failed("down".into()), Timestamp::now());
        assert_eq!(st.snapshot().configmaps.len(), 1);
        st.apply(body(POD_A), Timestamp::now());
        let snap = st.snapshot();
        assert!(snap.configmaps.is_empty() && snap.secrets.is_empty());
    }

    #[test]
    fn an_empty_200_removes_every_url_pod() {
        let mut st = HttpState::new(URL, "node1");
        st.apply(body(POD_A), Timestamp::now());
        assert!(st.apply(body(""), Timestamp::now()));
        let snap = st.snapshot();
        assert!(snap.pods.is_empty() && snap.errors.is_empty() && snap.keep_origins.is_empty());
    }

    #[test]
    fn failures_and_garbage_keep_the_previous_pods_and_report_the_url() {
        let mut st = HttpState::new(URL, "node1");
        st.apply(body(POD_A), Timestamp::now());
        for bad in [
            Fetched::Failed(
                "the server answered 500 Internal Server Error, expected 200 OK".into(),
            ),
            Fetched::Failed("no complete answer within 10s".into()),
            body("{ this is not yaml: ["),
            body("apiVersion: v1\nkind: Pod\nmetadata: {name: BAD}\nspec: {containers: []}\n"),
        ] {
            assert!(st.apply(bad.clone(), Timestamp::now()), "{bad:?}");
            let snap = st.snapshot();
            assert_eq!(names(&snap), vec!["default/a-node1"], "{bad:?}");
            assert_eq!(snap.errors.len(), 1, "{bad:?}: {:?}", snap.errors);
            assert!(snap.errors[0].to_string().starts_with(URL), "{bad:?}");
            assert!(snap.failing.is_some());
            assert!(
                snap.keep_origins.is_empty(),
                "the URL answered once already"
            );
        }
    }

    #[test]
    fn a_repeated_failure_is_not_a_change_and_recovery_is() {
        let mut st = HttpState::new(URL, "node1");
        st.apply(body(POD_A), Timestamp::now());
        assert!(st.apply(Fetched::Failed("down".into()), Timestamp::now()));
        assert!(!st.apply(Fetched::Failed("down".into()), Timestamp::now()));
        assert!(st.apply(Fetched::Failed("other".into()), Timestamp::now()));
        // 304: the last body (still good) stands; the error is gone.
        assert!(st.apply(Fetched::NotModified, Timestamp::now()));
        let snap = st.snapshot();
        assert!(snap.errors.is_empty() && snap.failing.is_none());
        assert_eq!(names(&snap), vec!["default/a-node1"]);
    }

    #[test]
    fn a_bad_body_after_a_fetch_error_stays_reported_until_a_good_body() {
        let mut st = HttpState::new(URL, "node1");
        st.apply(body(POD_A), Timestamp::now());
        st.apply(body("garbage: ["), Timestamp::now());
        st.apply(Fetched::Failed("down".into()), Timestamp::now());
        assert_eq!(st.snapshot().errors.len(), 2);
        st.apply(Fetched::NotModified, Timestamp::now());
        assert_eq!(st.snapshot().errors.len(), 1, "the body is still bad");
        st.apply(body(POD_B), Timestamp::now());
        assert!(st.snapshot().errors.is_empty());
    }

    #[test]
    fn until_the_url_answered_once_its_containers_are_kept() {
        let mut st = HttpState::new(URL, "node1");
        st.apply(
            Fetched::Failed("connection refused".into()),
            Timestamp::now(),
        );
        let snap = st.snapshot();
        assert!(snap.pods.is_empty());
        assert_eq!(snap.keep_origins, vec![format!("url:{URL}")]);
        st.apply(body("garbage: ["), Timestamp::now());
        assert_eq!(st.snapshot().keep_origins.len(), 1, "garbage is no answer");
        st.apply(body(""), Timestamp::now());
        assert!(st.snapshot().keep_origins.is_empty());
    }

    #[test]
    fn validators_of_the_last_body_are_remembered() {
        let mut st = HttpState::new(URL, "node1");
        st.apply(
            Fetched::Body {
                body: POD_A.into(),
                etag: Some("\"v1\"".into()),
                last_modified: Some("Wed, 21 Oct 2015 07:28:00 GMT".into()),
            },
            Timestamp::now(),
        );
        assert_eq!(st.etag(), Some("\"v1\""));
        assert_eq!(st.last_modified(), Some("Wed, 21 Oct 2015 07:28:00 GMT"));
    }

    #[test]
    fn the_same_error_is_logged_once_then_every_few_minutes_and_again_on_change_or_recovery() {
        let mut n = NoiseFilter::new(Duration::from_secs(300));
        let t0 = Instant::now();
        assert_eq!(n.observe(None, t0), LogNow::Nothing);
        assert_eq!(n.observe(Some("e1"), t0), LogNow::Failing("e1".into()));
        assert_eq!(
            n.observe(Some("e1"), t0 + Duration::from_secs(20)),
            LogNow::Nothing
        );
        assert_eq!(
            n.observe(Some("e1"), t0 + Duration::from_secs(299)),
            LogNow::Nothing
        );
        assert_eq!(
            n.observe(Some("e1"), t0 + Duration::from_secs(300)),
            LogNow::StillFailing("e1".into())
        );
        assert_eq!(
            n.observe(Some("e1"), t0 + Duration::from_secs(320)),
            LogNow::Nothing
        );
        assert_eq!(
            n.observe(Some("e2"), t0 + Duration::from_secs(321)),
            LogNow::Failing("e2".into())
        );
        assert_eq!(
            n.observe(None, t0 + Duration::from_secs(322)),
            LogNow::Recovered
        );
        assert_eq!(
            n.observe(None, t0 + Duration::from_secs(323)),
            LogNow::Nothing
        );
    }

    // ---- against a real HTTP server on loopback ----

    #[derive(Default)]
    struct Served {
        status: u16,
        body: Vec<u8>,
        etag: Option<String>,
        delay: Duration,
        /// Header values seen on the last request, by name.
        seen: Vec<(String, String)>,
    }

    async fn serve(state: Arc<Mutex<Served>>) -> String {
        use axum::http::{HeaderMap as H, StatusCode as S};
        use axum::response::IntoResponse;
        let handler = move |headers: H| {
            let state = state.clone();
            async move {
                let (status, body, etag, delay) = {
                    let mut s = state.lock().expect("lock");
                    s.seen = headers
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                        .collect();
                    (s.status, s.body.clone(), s.etag.clone(), s.delay)
                };
                tokio::time::sleep(delay).await;
                let inm = headers
                    .get("if-none-match")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                if etag.is_some() && inm == etag {
                    return S::NOT_MODIFIED.into_response();
                }
                let mut resp = (S::from_u16(status).expect("status"), body).into_response();
                if let Some(e) = etag {
                    resp.headers_mut()
                        .insert("etag", e.parse().expect("etag value"));
                }
                resp
            }
        };
        let app = axum::Router::new().route("/pods", axum::routing::get(handler));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        format!("http://{addr}/pods")
    }

    fn served(status: u16, body: &str) -> Arc<Mutex<Served>> {
        Arc::new(Mutex::new(Served {
            status,
            body: body.as_bytes().to_vec(),
            ..Default::default()
        }))
    }

    #[tokio::test]
    async fn custom_headers_reach_the_server_and_a_repeated_name_sends_both_values() {
        let state = served(200, POD_A);
        let url = serve(state.clone()).await;
        let headers = vec![
            ("X-Token".to_string(), "secret".to_string()),
            ("X-Multi".to_string(), "one".to_string()),
            ("X-Multi".to_string(), "two".to_string()),
        ];
        let f = Fetcher::new(&url, &headers, Duration::from_secs(5)).expect("fetcher");
        let got = f.fetch(None, None).await;
        assert!(matches!(got, Fetched::Body { .. }), "{got:?}");
        let seen = state.lock().expect("lock").seen.clone();
        assert!(
            seen.contains(&("x-token".into(), "secret".into())),
            "{seen:?}"
        );
        let multi: Vec<_> = seen.iter().filter(|(k, _)| k == "x-multi").collect();
        assert_eq!(multi.len(), 2, "{seen:?}");
    }

    #[tokio::test]
    async fn an_etag_is_sent_back_and_a_304_is_not_modified() {
        let state = served(200, POD_A);
        state.lock().expect("lock").etag = Some("\"v1\"".into());
        let url = serve(state.clone()).await;
        let f = Fetcher::new(&url, &[], Duration::from_secs(5)).expect("fetcher");
        let mut st = HttpState::new(&url, "node1");
        assert!(st.apply(
            f.fetch(st.etag(), st.last_modified()).await,
            Timestamp::now()
        ));
        assert_eq!(st.etag(), Some("\"v1\""));
        let again = f.fetch(st.etag(), st.last_modified()).await;
        assert_eq!(again, Fetched::NotModified);
        let seen = state.lock().expect("lock").seen.clone();
        assert!(
            seen.contains(&("if-none-match".into(), "\"v1\"".into())),
            "{seen:?}"
        );
        assert!(!st.apply(again, Timestamp::now()));
        assert_eq!(names(&st.snapshot()), vec!["default/a-node1"]);
    }

    #[tokio::test]
    async fn non_200_statuses_timeouts_refused_connections_and_oversize_bodies_fail() {
        let state = served(500, "oops");
        let url = serve(state.clone()).await;
        let f = Fetcher::new(&url, &[], Duration::from_millis(300)).expect("fetcher");
        let Fetched::Failed(e) = f.fetch(None, None).await else {
            panic!("500 must fail")
        };
        assert!(e.contains("500"), "{e}");

        state.lock().expect("lock").status = 204;
        assert!(matches!(f.fetch(None, None).await, Fetched::Failed(_)));

        {
            let mut s = state.lock().expect("lock");
            s.status = 200;
            s.delay = Duration::from_secs(2);
        }
        let Fetched::Failed(e) = f.fetch(None, None).await else {
            panic!("slow must fail")
        };
        assert!(e.contains("within"), "{e}");

        {
            let mut s = state.lock().expect("lock");
            s.delay = Duration::ZERO;
            s.body = vec![b'#'; 4096];
        }
        let small = f.clone().with_max_body(1024);
        let Fetched::Failed(e) = small.fetch(None, None).await else {
            panic!("oversize must fail")
        };
        assert!(e.contains("larger than"), "{e}");

        // A port nothing listens on.
        let dead = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        let f = Fetcher::new(
            &format!("http://127.0.0.1:{dead}/pods"),
            &[],
            Duration::from_secs(2),
        )
        .expect("fetcher");
        let Fetched::Failed(e) = f.fetch(None, None).await else {
            panic!("refused must fail")
        };
        assert!(e.contains("cannot connect"), "{e}");
    }

    #[tokio::test]
    async fn the_source_sends_a_snapshot_after_a_failed_first_fetch_and_again_when_it_recovers() {
        let state = served(503, "");
        let url = serve(state.clone()).await;
        let f = Fetcher::new(&url, &[], Duration::from_secs(2)).expect("fetcher");
        let source = HttpSource::new(f, "node1", Duration::from_millis(50));
        let (tx, mut rx) = mpsc::channel(4);
        let cancel = CancellationToken::new();
        let task = tokio::spawn(source.run(tx, cancel.clone()));
        let first = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("first snapshot in time")
            .expect("snapshot");
        assert!(first.failing.is_some());
        assert_eq!(first.keep_origins, vec![format!("url:{url}")]);
        state.lock().expect("lock").status = 200;
        state.lock().expect("lock").body = POD_A.into();
        let next = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("recovery in time")
            .expect("snapshot");
        assert_eq!(names(&next), vec!["default/a-node1"]);
        assert!(next.failing.is_none() && next.keep_origins.is_empty());
        cancel.cancel();
        task.await.expect("source stops");
    }

    #[tokio::test]
    async fn a_password_in_the_url_is_sent_but_never_shown() {
        let state = served(200, POD_A);
        let url = serve(state.clone()).await;
        let with_password = url.replacen("http://", "http://user:s3cr3t@", 1);
        let f = Fetcher::new(&with_password, &[], Duration::from_secs(5)).expect("fetcher");
        let shown = url.replacen("http://", "http://user:xxxxx@", 1);
        assert_eq!(f.url(), shown);
        assert!(matches!(f.fetch(None, None).await, Fetched::Body { .. }));
        let debug = format!("{f:?}");
        assert!(
            !debug.contains("s3cr3t") && debug.contains("user:xxxxx@"),
            "{debug}"
        );
        let scrubbed = f.scrub(format!("error sending request for url ({with_password})"));
        assert_eq!(scrubbed, format!("error sending request for url ({shown})"));

        let mut st = HttpState::new(f.url(), "node1");
        st.apply(body(POD_A), Timestamp::now());
        st.apply(Fetched::Failed("down".into()), Timestamp::now());
        let snap = st.snapshot();
        let everything = format!("{snap:?}");
        assert!(!everything.contains("s3cr3t"), "{everything}");
        assert_eq!(snap.pods[0].origin.key(), format!("url:{shown}"));
    }
}
