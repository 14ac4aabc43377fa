//! Generic list, get and watch over a [`watch::Store`] of any kind, as the
//! API server serves them.
//!
//! * List: the items of a namespace (or all) passing `labelSelector` and
//!   `fieldSelector`, with `metadata.resourceVersion`; or, when the `Accept`
//!   header asks for `as=Table`, the kind's `meta.k8s.io/v1` `Table` with
//!   rows' `object` as `includeObject` says.
//! * Watch (`watch=true|1`): newline-delimited `WatchEvent`s — `ADDED`,
//!   `MODIFIED`, `DELETED`, and `BOOKMARK` every [`BOOKMARK_EVERY`] when
//!   `allowWatchBookmarks` — from `resourceVersion` (or the current objects
//!   when unset), ended after `timeoutSeconds` (default [`WATCH_TIMEOUT`]),
//!   at shutdown, or when the watcher falls behind (the client watches
//!   again). An object that stops matching the selectors is `DELETED` for
//!   the watcher, one that starts matching `ADDED`, as the API server does.
//!   In the Table form each event's object is a `Table` with one row.
//!   A resume point too old for the history is `410 Gone` (`Expired`).
//!
//! A kind plugs in with a [`Kind`]: its resource name and Table printer;
//! its field-selector table comes from [`crate::k8s::selector::Selectable`].

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures_util::Stream;
use k8s_openapi::jiff::Timestamp;
use serde_json::{json, Value};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::query::{IncludeObject, ListParams};
use super::{status_error, ApiError, ApiState};
use crate::k8s::selector::{FieldSelector, LabelSelector};
use crate::watch::{self, Change, ChangeType, Object};

/// How often a watch with `allowWatchBookmarks` gets a `BOOKMARK`.
pub const BOOKMARK_EVERY: Duration = Duration::from_secs(30);
/// How long a watch without `timeoutSeconds` lasts (the API server picks
/// 30–60 minutes); clients watch again.
pub const WATCH_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// A kind's Table printer: the objects and the time ages are counted to.
pub type TablePrinter<T> = fn(&[T], Timestamp) -> Value;

/// What the API needs to serve one kind.
pub struct Kind<T> {
    /// The resource's plural name, for messages (`pods`).
    pub resource: &'static str,
    /// The kind's `Table` of some objects (rows' `object` holding each
    /// object's `PartialObjectMetadata`).
    pub table: TablePrinter<T>,
}

fn bad_request(message: String) -> ApiError {
    status_error(StatusCode::BAD_REQUEST, "BadRequest", message)
}

fn wants_table(headers: &HeaderMap) -> bool {
    super::kube::wants_table(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()))
}

/// Which objects a request sees.
struct Filter {
    namespace: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
}

impl Filter {
    fn matches<T: Object>(&self, o: &T) -> bool {
        self.namespace
            .as_deref()
            .is_none_or(|ns| o.meta().namespace.as_deref() == Some(ns))
            && self.labels.matches(o.labels())
            && self.fields.matches(o)
    }
}

/// How objects are rendered: themselves, or one-row Tables.
#[derive(Clone, Copy)]
struct Render<T: 'static> {
    table: Option<(TablePrinter<T>, IncludeObject)>,
}

impl<T: Object> Render<T> {
    fn objects(&self, items: &[&T], version: u64) -> Value {
        match self.table {
            None => {
                let items: Vec<Value> = items.iter().map(|o| to_value(*o)).collect();
                json!({
                    "kind": format!("{}List", T::KIND),
                    "apiVersion": T::API_VERSION,
                    "metadata": {"resourceVersion": version.to_string()},
                    "items": items,
                })
            }
            Some((table, include)) => {
                let owned: Vec<T> = items.iter().map(|o| (*o).clone()).collect();
                let mut t = table(&owned, Timestamp::now());
                t["metadata"] = json!({"resourceVersion": version.to_string()});
                if let Some(rows) = t["rows"].as_array_mut() {
                    for (row, o) in rows.iter_mut().zip(items) {
                        match include {
                            IncludeObject::Metadata => {}
                            IncludeObject::Object => row["object"] = to_value(*o),
                            IncludeObject::None => {
                                if let Some(r) = row.as_object_mut() {
                                    r.remove("object");
                                }
                            }
                        }
                    }
                }
                t
            }
        }
    }

    fn object(&self, o: &T) -> Value {
        match self.table {
            None => to_value(o),
            Some(_) => self.objects(&[o], watch::version_of(o)),
        }
    }
}

/// An object's JSON with its `kind` and `apiVersion`.
fn to_value<T: Object>(o: &T) -> Value {
    let mut v = serde_json::to_value(o).unwrap_or(Value::Null);
    if let Some(m) = v.as_object_mut() {
        m.insert("kind".into(), T::KIND.into());
        m.insert("apiVersion".into(), T::API_VERSION.into());
    }
    v
}

/// Where the API keeps the objects of one kind.
pub type StoreOf<T> = fn(&ApiState) -> &watch::Store<T>;

/// The routes of a namespaced kind: its list (and watch) over all
/// namespaces (`/api/v1/{resource}`) and in one
/// (`/api/v1/namespaces/{ns}/{resource}`), and one object
/// (`…/{resource}/{name}`), all served from `store`.
pub fn namespaced_routes<T: Object>(kind: &'static Kind<T>, store: StoreOf<T>) -> Router<ApiState> {
    let list = move |s: ApiState, ns: Option<String>, q: Option<String>, headers: HeaderMap| {
        let stop = s.shutdown.clone();
        list_or_watch(store(&s), kind, ns.as_deref(), q.as_deref(), &headers, stop)
    };
    let r = kind.resource;
    Router::new()
        .route(
            &format!("/api/v1/{r}"),
            get(
                move |State(s): State<ApiState>, RawQuery(q): RawQuery, headers: HeaderMap| async move {
                    list(s, None, q, headers)
                },
            ),
        )
        .route(
            &format!("/api/v1/namespaces/{{ns}}/{r}"),
            get(
                move |State(s): State<ApiState>,
                      Path(ns): Path<String>,
                      RawQuery(q): RawQuery,
                      headers: HeaderMap| async move { list(s, Some(ns), q, headers) },
            ),
        )
        .route(
            &format!("/api/v1/namespaces/{{ns}}/{r}/{{name}}"),
            get(
                move |State(s): State<ApiState>,
                      Path((ns, name)): Path<(String, String)>,
                      RawQuery(q): RawQuery,
                      headers: HeaderMap| async move {
                    get_one(store(&s), kind, Some(&ns), &name, q.as_deref(), &headers)
                },
            ),
        )
}

/// `GET` a collection: a list, a Table, or a watch stream.
pub fn list_or_watch<T: Object>(
    store: &watch::Store<T>,
    kind: &Kind<T>,
    namespace: Option<&str>,
    raw_query: Option<&str>,
    headers: &HeaderMap,
    shutdown: CancellationToken,
) -> Response {
    let params = match ListParams::parse(raw_query, T::FIELDS) {
        Ok(p) => p,
        Err(e) => return bad_request(e.to_string()).into_response(),
    };
    let filter = Filter {
        namespace: namespace.map(String::from),
        labels: params.labels.clone(),
        fields: params.fields.clone(),
    };
    let render = Render {
        table: wants_table(headers).then_some((kind.table, params.include_object)),
    };
    if !params.watch {
        let (items, version) = store.list();
        let items: Vec<&T> = items
            .iter()
            .map(|o| &**o)
            .filter(|o| filter.matches(*o))
            .collect();
        return Json(render.objects(&items, version)).into_response();
    }
    let w = match store.watch(params.resource_version) {
        Ok(w) => w,
        Err(e) => {
            return status_error(StatusCode::GONE, "Expired", e.to_string()).into_response();
        }
    };
    let timeout = params.timeout.unwrap_or(WATCH_TIMEOUT);
    let stream = events(
        w,
        filter,
        render,
        Watching {
            timeout,
            bookmarks: params.bookmarks,
            shutdown,
        },
    );
    (
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response()
}

/// `GET` one object by name, of a namespace (`None` for cluster-scoped
/// kinds), as a one-row Table when asked.
pub fn get_one<T: Object>(
    store: &watch::Store<T>,
    kind: &Kind<T>,
    namespace: Option<&str>,
    name: &str,
    raw_query: Option<&str>,
    headers: &HeaderMap,
) -> Response {
    for (key, value) in super::query::pairs(raw_query) {
        let refused = match key.as_str() {
            "watch" if !matches!(value.as_str(), "0" | "false" | "False" | "f") => {
                "watch one object with the collection and fieldSelector=metadata.name=NAME"
            }
            "resourceVersion" if !value.is_empty() && value.parse::<u64>().is_err() => {
                "a resourceVersion is a non-negative integer"
            }
            _ => continue,
        };
        return bad_request(format!("{key}={value} is not supported here: {refused}"))
            .into_response();
    }
    let (items, _) = store.list();
    let found = items.into_iter().find(|o| {
        o.meta().namespace.as_deref() == namespace && o.meta().name.as_deref() == Some(name)
    });
    let Some(o) = found else {
        return status_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("{} {name:?} not found", kind.resource),
        )
        .into_response();
    };
    let render = Render {
        table: wants_table(headers).then_some((kind.table, IncludeObject::Metadata)),
    };
    Json(render.object(&o)).into_response()
}

struct Watching {
    timeout: Duration,
    bookmarks: bool,
    shutdown: CancellationToken,
}

/// The `WatchEvent` for a change as this watcher sees it, if it sees it.
fn event_of<T: Object>(change: &Change<T>, filter: &Filter, render: &Render<T>) -> Option<Bytes> {
    let now = filter.matches(&*change.object);
    let before = change
        .previous
        .as_deref()
        .is_some_and(|p| filter.matches(p));
    let type_ = match (change.type_, before, now) {
        (ChangeType::Added, _, true) => ChangeType::Added,
        (ChangeType::Modified, true, true) => ChangeType::Modified,
        (ChangeType::Modified, false, true) => ChangeType::Added,
        (ChangeType::Modified, true, false) => ChangeType::Deleted,
        (ChangeType::Deleted, true, _) => ChangeType::Deleted,
        _ => return None,
    };
    line(json!({"type": type_.as_str(), "object": render.object(&change.object)}))
}

fn line(v: Value) -> Option<Bytes> {
    let mut bytes = serde_json::to_vec(&v).ok()?;
    bytes.push(b'\n');
    Some(Bytes::from(bytes))
}

fn bookmark<T: Object>(version: u64) -> Option<Bytes> {
    line(json!({"type": "BOOKMARK", "object": {
        "kind": T::KIND, "apiVersion": T::API_VERSION,
        "metadata": {"resourceVersion": version.to_string()}
    }}))
}

struct Stepper<T: 'static> {
    w: watch::Watch<T>,
    filter: Filter,
    render: Render<T>,
    how: Watching,
    deadline: Instant,
    next_bookmark: Instant,
}

impl<T: Object> Stepper<T> {
    /// The next line of the stream, or `None` to end it.
    async fn step(&mut self) -> Option<Bytes> {
        loop {
            tokio::select! {
                _ = self.how.shutdown.cancelled() => return None,
                _ = tokio::time::sleep_until(self.deadline) => return None,
                _ = tokio::time::sleep_until(self.next_bookmark), if self.how.bookmarks => {
                    self.next_bookmark = Instant::now() + BOOKMARK_EVERY;
                    if let Some(b) = self.w.seen().and_then(bookmark::<T>) {
                        return Some(b);
                    }
                }
                change = self.w.next() => match change {
                    Ok(c) => {
                        if let Some(b) = event_of(&c, &self.filter, &self.render) {
                            return Some(b);
                        }
                    }
                    Err(lagged) => {
                        tracing::debug!(kind = T::KIND, error = %lagged, "watch ended");
                        return None;
                    }
                }
            }
        }
    }
}

/// The watch stream: events until the timeout, shutdown or lagging.
fn events<T: Object>(
    w: watch::Watch<T>,
    filter: Filter,
    render: Render<T>,
    how: Watching,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send {
    let now = Instant::now();
    let stepper = Stepper {
        w,
        filter,
        render,
        deadline: now + how.timeout,
        next_bookmark: now + BOOKMARK_EVERY,
        how,
    };
    futures_util::stream::unfold(stepper, |mut s| async move {
        let b = s.step().await?;
        Some((Ok(b), s))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use k8s_openapi::api::core::v1::Pod;
    use std::sync::Arc;

    use crate::k8s::selector::Selectable;
    use crate::watch::{Store, Versions};

    fn pod(name: &str, app: &str, phase: &str) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default", "labels": {"app": app}},
            "spec": {"containers": [{"name": "a"}]},
            "status": {"phase": phase}
        }))
        .expect("pod")
    }

    fn filter(labels: &str) -> Filter {
        Filter {
            namespace: Some("default".into()),
            labels: LabelSelector::parse(labels).expect("labels"),
            fields: FieldSelector::parse("", Pod::FIELDS).expect("fields"),
        }
    }

    fn plain() -> Render<Pod> {
        Render { table: None }
    }

    fn how(timeout: Duration, bookmarks: bool) -> Watching {
        Watching {
            timeout,
            bookmarks,
            shutdown: CancellationToken::new(),
        }
    }

    fn parse(b: &Bytes) -> Value {
        assert!(b.ends_with(b"\n"), "one event per line");
        serde_json::from_slice(b).expect("a WatchEvent")
    }

    #[tokio::test]
    async fn objects_moving_out_of_and_into_the_selector_are_deleted_and_added() {
        let s: Store<Pod> = Store::new(Arc::new(Versions::default()));
        let w = s.watch(Some(0)).expect("watch");
        s.put("u", pod("p", "web", "Pending"));
        s.put("u", pod("p", "web", "Running"));
        s.put("u", pod("p", "db", "Running"));
        s.put("u", pod("p", "web", "Running"));
        s.put("other", pod("q", "db", "Running"));
        s.remove("u");
        let stream = events(
            w,
            filter("app=web"),
            plain(),
            how(Duration::from_secs(60), false),
        );
        let got: Vec<Value> = stream
            .take(5)
            .map(|b| parse(&b.expect("bytes")))
            .collect()
            .await;
        let types: Vec<&str> = got.iter().filter_map(|e| e["type"].as_str()).collect();
        assert_eq!(types, ["ADDED", "MODIFIED", "DELETED", "ADDED", "DELETED"]);
        assert_eq!(got[1]["object"]["kind"], "Pod");
        assert_eq!(got[1]["object"]["status"]["phase"], "Running");
        let versions: Vec<u64> = got
            .iter()
            .filter_map(|e| e["object"]["metadata"]["resourceVersion"].as_str())
            .filter_map(|v| v.parse().ok())
            .collect();
        assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");
    }

    #[tokio::test]
    async fn table_watches_send_one_row_tables_with_the_object_asked_for() {
        let s: Store<Pod> = Store::new(Arc::new(Versions::default()));
        s.put("u", pod("p", "web", "Running"));
        for (include, has_object, kind) in [
            (IncludeObject::Metadata, true, "PartialObjectMetadata"),
            (IncludeObject::Object, true, "Pod"),
            (IncludeObject::None, false, ""),
        ] {
            let render = Render {
                table: Some((super::super::kube::pod_table as TablePrinter<Pod>, include)),
            };
            let w = s.watch(None).expect("watch");
            let mut stream = Box::pin(events(
                w,
                filter(""),
                render,
                how(Duration::from_secs(60), false),
            ));
            let e = parse(&stream.next().await.expect("an event").expect("bytes"));
            assert_eq!(e["type"], "ADDED");
            assert_eq!(e["object"]["kind"], "Table");
            let rows = e["object"]["rows"].as_array().expect("rows");
            assert_eq!(rows.len(), 1);
            assert_eq!(rows[0]["cells"][0], "p");
            assert_eq!(rows[0].get("object").is_some(), has_object);
            if has_object {
                assert_eq!(rows[0]["object"]["kind"], kind);
            }
            assert!(e["object"]["metadata"]["resourceVersion"]
                .as_str()
                .is_some());
        }
    }

    #[tokio::test(start_paused = true)]
    async fn bookmarks_come_while_idle_and_the_watch_ends_at_its_timeout() {
        let s: Store<Pod> = Store::new(Arc::new(Versions::default()));
        let v = s.put("u", pod("p", "web", "Running")).expect("v");
        let w = s.watch(Some(v)).expect("watch");
        let started = Instant::now();
        let stream = events(
            w,
            filter(""),
            plain(),
            how(BOOKMARK_EVERY * 2 + Duration::from_secs(1), true),
        );
        let got: Vec<Value> = stream.map(|b| parse(&b.expect("bytes"))).collect().await;
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got.iter().all(|e| e["type"] == "BOOKMARK"));
        assert_eq!(
            got[0]["object"]["metadata"]["resourceVersion"],
            v.to_string()
        );
        assert_eq!(got[0]["object"]["kind"], "Pod");
        assert!(started.elapsed() >= BOOKMARK_EVERY * 2);
    }

    #[tokio::test]
    async fn shutdown_ends_open_watches() {
        let s: Store<Pod> = Store::new(Arc::new(Versions::default()));
        let w = s.watch(None).expect("watch");
        let h = how(Duration::from_secs(600), false);
        let stop = h.shutdown.clone();
        let mut stream = Box::pin(events(w, filter(""), plain(), h));
        stop.cancel();
        let end = tokio::time::timeout(Duration::from_secs(5), stream.next()).await;
        assert!(matches!(end, Ok(None)));
    }
}
