//! The client commands: `rkubelet get` (pods, events, nodes, namespaces,
//! configmaps, secrets), `describe pod`, `logs`.
//!
//! `get`, `describe` and `logs` talk to a running daemon's read-only API
//! (`--server`, default `http://127.0.0.1:10255`, also from
//! `RKUBELET_SERVER`; `logs` turns to the authenticated port when the
//! read-only port serves none); [`secure`] (`restart`), [`stream`] (`exec`,
//! `attach`), [`cp`] and [`portforward`] use the authenticated port through a
//! kubeconfig. They print like
//! kubectl. A pod may be named with or without the node suffix (`web` finds
//! `web-node1`). `get` passes `-l` and `--field-selector` to the server and,
//! with `-w`, follows the server's watch from the list's resourceVersion.
//! Failures print one line and exit non-zero.

pub mod cp;
pub mod describe;
pub mod describe_apps;
pub mod docs;
pub mod portforward;
pub mod secure;
pub mod stream;
pub mod top;
pub mod validate;

use std::io::Write;

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{Event, Pod};
use k8s_openapi::jiff::Timestamp;
use k8s_openapi::List;

use crate::cli::{ClientArgs, DescribeArgs, GetArgs, LogsArgs, Output};
use crate::k8s::meta::namespace_of;

/// A client command failure: printed as one line, exit code 1.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CtlError(pub String);

type Result<T> = std::result::Result<T, CtlError>;

struct Client {
    http: reqwest::Client,
    server: String,
}

impl Client {
    fn new(args: &ClientArgs) -> Result<Self> {
        let http = crate::http_client::client_builder()
            .build()
            .map_err(|e| CtlError(format!("cannot build an HTTP client: {e}")))?;
        Ok(Client {
            http,
            server: args.server.trim_end_matches('/').to_string(),
        })
    }

    async fn get(&self, path: &str) -> Result<reqwest::Response> {
        self.get_as(path, "application/json").await
    }

    /// GET with an `Accept` header (a `Table` is asked for with
    /// [`TABLE_ACCEPT`]).
    async fn get_as(&self, path: &str, accept: &str) -> Result<reqwest::Response> {
        let resp = self.send(path, accept).await?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        Err(failure(resp).await)
    }

    /// A watch stream, or `None` when the server answers `410 Gone`: the
    /// resourceVersion left its history (list again).
    async fn open_watch(&self, path: &str, accept: &str) -> Result<Option<reqwest::Response>> {
        let resp = self.send(path, accept).await?;
        match resp.status() {
            s if s.is_success() => Ok(Some(resp)),
            reqwest::StatusCode::GONE => Ok(None),
            _ => Err(failure(resp).await),
        }
    }

    async fn send(&self, path: &str, accept: &str) -> Result<reqwest::Response> {
        let url = format!("{}{path}", self.server);
        let request = self.http.get(&url).header(reqwest::header::ACCEPT, accept);
        request.send().await.map_err(|e| {
            CtlError(format!(
                "cannot reach rkubelet at {}: {e}; is it running? (set --server or RKUBELET_SERVER)",
                self.server
            ))
        })
    }

    async fn json<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.get(path)
            .await?
            .json()
            .await
            .map_err(|e| CtlError(format!("unexpected answer from {}{path}: {e}", self.server)))
    }

    async fn pods(&self, namespace: Option<&str>) -> Result<Vec<Pod>> {
        let path = match namespace {
            Some(ns) => format!("/api/v1/namespaces/{ns}/pods"),
            None => "/api/v1/pods".to_string(),
        };
        Ok(self.json::<List<Pod>>(&path).await?.items)
    }

    /// Finds a pod by name, accepting the manifest name without the node suffix.
    async fn find(&self, namespace: &str, name: &str) -> Result<Pod> {
        let pods = self.pods(Some(namespace)).await?;
        let matches = |p: &&Pod| {
            let full = p.metadata.name.as_deref().unwrap_or_default();
            let node = p
                .spec
                .as_ref()
                .and_then(|s| s.node_name.as_deref())
                .unwrap_or_default();
            full == name || full == format!("{name}-{node}")
        };
        pods.iter().find(matches).cloned().ok_or_else(|| {
            CtlError(format!(
                "Error from server (NotFound): pods {name:?} not found"
            ))
        })
    }
}

/// The server's `Status` answer as one line.
async fn failure(resp: reqwest::Response) -> CtlError {
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    let message = body["message"]
        .as_str()
        .map(String::from)
        .unwrap_or_else(|| status.to_string());
    let reason = body["reason"].as_str().unwrap_or("Error").to_string();
    CtlError(format!("Error from server ({reason}): {message}"))
}

/// What `Accept` kubectl sends to get a server-side `Table`.
const TABLE_ACCEPT: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";

/// A resource type `rkubelet get` knows, under any of kubectl's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Resource {
    /// The API's plural (`configmaps`).
    plural: &'static str,
    /// The singular, as `-o name` prints it (`configmap`).
    singular: &'static str,
    namespaced: bool,
    /// The group version's path (`/api/v1`, `/apis/apps/v1`).
    api: &'static str,
}

const RESOURCES: [(Resource, &[&str]); 11] = [
    (
        Resource {
            plural: "pods",
            singular: "pod",
            namespaced: true,
            api: "/api/v1",
        },
        &["po"],
    ),
    (
        Resource {
            plural: "events",
            singular: "event",
            namespaced: true,
            api: "/api/v1",
        },
        &["ev"],
    ),
    (
        Resource {
            plural: "nodes",
            singular: "node",
            namespaced: false,
            api: "/api/v1",
        },
        &["no"],
    ),
    (
        Resource {
            plural: "namespaces",
            singular: "namespace",
            namespaced: false,
            api: "/api/v1",
        },
        &["ns"],
    ),
    (
        Resource {
            plural: "configmaps",
            singular: "configmap",
            namespaced: true,
            api: "/api/v1",
        },
        &["cm"],
    ),
    (
        Resource {
            plural: "secrets",
            singular: "secret",
            namespaced: true,
            api: "/api/v1",
        },
        &[],
    ),
    (
        Resource {
            plural: "deployments",
            singular: "deployment.apps",
            namespaced: true,
            api: "/apis/apps/v1",
        },
        &["deploy", "deployment"],
    ),
    (
        Resource {
            plural: "replicasets",
            singular: "replicaset.apps",
            namespaced: true,
            api: "/apis/apps/v1",
        },
        &["rs", "replicaset"],
    ),
    (
        Resource {
            plural: "daemonsets",
            singular: "daemonset.apps",
            namespaced: true,
            api: "/apis/apps/v1",
        },
        &["ds", "daemonset"],
    ),
    (
        Resource {
            plural: "jobs",
            singular: "job.batch",
            namespaced: true,
            api: "/apis/batch/v1",
        },
        &["job", "jobs.batch"],
    ),
    (
        Resource {
            plural: "cronjobs",
            singular: "cronjob.batch",
            namespaced: true,
            api: "/apis/batch/v1",
        },
        &["cj", "cronjob", "cronjobs.batch"],
    ),
];

fn resource(name: &str) -> Result<Resource> {
    let name = name.to_lowercase();
    RESOURCES
        .iter()
        .find(|(r, short)| r.plural == name || r.singular == name || short.contains(&name.as_str()))
        .map(|(r, _)| *r)
        .ok_or_else(|| {
            CtlError(format!(
                "error: the server doesn't have a resource type {name:?} (rkubelet serves pods, events, nodes, namespaces, configmaps, secrets, deployments, replicasets, daemonsets, jobs, cronjobs)"
            ))
        })
}

/// The plural of a resource `describe` knows.
fn check_resource(name: &str) -> Result<&'static str> {
    match resource(name)?.plural {
        p @ ("pods" | "deployments" | "replicasets" | "daemonsets") => Ok(p),
        _ => Err(CtlError(format!(
            "error: rkubelet describes pods, deployments, replicasets and daemonsets, not \
             {name:?} (use kubectl describe)"
        ))),
    }
}

fn namespace(args: &ClientArgs) -> &str {
    args.namespace
        .as_deref()
        .unwrap_or(crate::k8s::meta::DEFAULT_NAMESPACE)
}

/// The selectors of `get`, as a query string (with a leading `&` if any).
fn selector_query(args: &GetArgs, name: Option<&str>) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    if let Some(l) = &args.selector {
        q.append_pair("labelSelector", l);
    }
    let mut fields: Vec<String> = args.field_selector.iter().cloned().collect();
    if let Some(n) = name {
        fields.push(format!("metadata.name={n}"));
    }
    if !fields.is_empty() {
        q.append_pair("fieldSelector", &fields.join(","));
    }
    q.finish()
}

fn write_out(out: &mut dyn Write, s: &str) -> Result<()> {
    out.write_all(s.as_bytes())
        .and_then(|_| out.flush())
        .map_err(|e| CtlError(format!("cannot write output: {e}")))
}

fn encode(value: &serde_json::Value, output: Option<Output>) -> Result<String> {
    if output == Some(Output::Json) {
        serde_json::to_string_pretty(value)
            .map(|s| s + "\n")
            .map_err(|e| e.to_string())
    } else {
        serde_yaml::to_string(value).map_err(|e| e.to_string())
    }
    .map_err(|e| CtlError(format!("cannot encode: {e}")))
}

/// The collection path of `r` for `get` (`-n`/`-A`), with `query`.
fn collection_path(args: &GetArgs, r: Resource, query: &str) -> String {
    let base = if r.namespaced && !args.all_namespaces {
        format!(
            "{}/namespaces/{}/{}",
            r.api,
            namespace(&args.client),
            r.plural
        )
    } else {
        format!("{}/{}", r.api, r.plural)
    };
    if query.is_empty() {
        base
    } else {
        format!("{base}?{query}")
    }
}

/// `rkubelet get events|nodes|namespaces|configmaps|secrets [NAME]`: the
/// server's objects or its `Table`, printed like kubectl; with `-w`, every
/// later change.
async fn get_other(args: &GetArgs, r: Resource, out: &mut dyn Write) -> Result<()> {
    let client = Client::new(&args.client)?;
    let ns = namespace(&args.client);
    let path = match &args.name {
        Some(name) if r.namespaced => format!("{}/namespaces/{ns}/{}/{name}", r.api, r.plural),
        Some(name) => format!("{}/{}/{name}", r.api, r.plural),
        None => collection_path(args, r, &selector_query(args, None)),
    };
    let wide = args.output == Some(Output::Wide);
    let with_namespace = r.namespaced && args.all_namespaces;
    let as_table = !matches!(
        args.output,
        Some(Output::Json) | Some(Output::Yaml) | Some(Output::Name)
    );
    let value: serde_json::Value = if as_table {
        let path = path.as_str();
        (client.get_as(path, TABLE_ACCEPT).await?.json().await).map_err(|e| {
            CtlError(format!(
                "unexpected answer from {}{path}: {e}",
                client.server
            ))
        })?
    } else {
        client.json(&path).await?
    };
    let version = value["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let print_one = |object: &serde_json::Value| -> Result<String> {
        match args.output {
            Some(Output::Json) | Some(Output::Yaml) => encode(object, args.output),
            Some(Output::Name) => Ok(format!(
                "{}/{}\n",
                r.singular,
                object["metadata"]["name"].as_str().unwrap_or_default()
            )),
            _ => Ok(crate::k8s::print::server_table(
                object,
                wide,
                with_namespace,
            )),
        }
    };
    match args.output {
        Some(Output::Json) | Some(Output::Yaml) => write_out(out, &print_one(&value)?)?,
        Some(Output::Name) => {
            let items = match value["items"].as_array() {
                Some(items) => items.clone(),
                None => vec![value.clone()],
            };
            for i in &items {
                write_out(out, &print_one(i)?)?;
            }
        }
        _ => {
            if value["rows"].as_array().is_none_or(|r| r.is_empty()) {
                let where_ = if r.namespaced && !args.all_namespaces {
                    format!(" in {ns} namespace")
                } else {
                    String::new()
                };
                eprintln!("No resources found{where_}.");
            } else {
                write_out(out, &print_one(&value)?)?;
            }
        }
    }
    if !args.watch {
        return Ok(());
    }
    let path = collection_path(args, r, &selector_query(args, args.name.as_deref()));
    let accept = if as_table {
        TABLE_ACCEPT
    } else {
        "application/json"
    };
    follow(&client, &path, accept, version, |event| {
        let text = print_one(&event["object"])?;
        let text = if as_table {
            without_header(&text)
        } else {
            text
        };
        write_out(out, &text)
    })
    .await
}

/// A printed table without its header line.
fn without_header(text: &str) -> String {
    text.split_once('\n')
        .map(|(_, rest)| rest.to_string())
        .unwrap_or_default()
}

/// Follows the watch of the collection at `path` from `version`, calling
/// `print` with each event but bookmarks. When the server ends a watch it
/// watches again from the last change seen; after `410 Gone` (that change
/// left the server's history) it starts over without a resourceVersion, so
/// the server sends every current object (`ADDED`) and then the changes, as
/// a relist would. Ends only on an error.
async fn follow(
    client: &Client,
    path: &str,
    accept: &str,
    version: String,
    mut print: impl FnMut(&serde_json::Value) -> Result<()>,
) -> Result<()> {
    let mut version = version;
    let sep = if path.contains('?') { '&' } else { '?' };
    loop {
        let from = if version.is_empty() {
            String::new()
        } else {
            format!("&resourceVersion={version}")
        };
        let url = format!("{path}{sep}watch=1{from}");
        let Some(resp) = client.open_watch(&url, accept).await? else {
            version.clear();
            continue;
        };
        let mut stream = resp.bytes_stream();
        let mut buf: Vec<u8> = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| CtlError(format!("watch stream broke: {e}")))?;
            buf.extend_from_slice(&chunk);
            while let Some(at) = buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buf.drain(..=at).collect();
                let event: serde_json::Value = serde_json::from_slice(&line)
                    .map_err(|e| CtlError(format!("unexpected watch event: {e}")))?;
                if let Some(v) = event["object"]["metadata"]["resourceVersion"].as_str() {
                    version = v.to_string();
                }
                if event["type"] != "BOOKMARK" {
                    print(&event)?;
                }
            }
        }
    }
}

/// `rkubelet get pods|events|nodes|namespaces|configmaps|secrets [NAME]
/// [-o wide|json|yaml|name] [-n NS | -A] [-l SEL] [--field-selector SEL]
/// [-w]`.
pub async fn get(args: &GetArgs, out: &mut dyn Write) -> Result<()> {
    let r = resource(&args.resource)?;
    if r.plural != "pods" {
        return get_other(args, r, out).await;
    }
    let client = Client::new(&args.client)?;
    let ns = (!args.all_namespaces || args.name.is_some()).then(|| namespace(&args.client));
    let (pods, version) = match &args.name {
        Some(name) => {
            let pod = client.find(namespace(&args.client), name).await?;
            let v = pod.metadata.resource_version.clone().unwrap_or_default();
            (vec![pod], v)
        }
        None => {
            let query = selector_query(args, None);
            let list: List<Pod> = client.json(&pods_path(ns, &query)).await?;
            (
                list.items,
                list.metadata.resource_version.unwrap_or_default(),
            )
        }
    };
    match args.output {
        Some(Output::Json) | Some(Output::Yaml) => {
            let value = if args.name.is_some() {
                serde_json::to_value(&pods[0])
            } else {
                serde_json::to_value(List {
                    items: pods.clone(),
                    metadata: Default::default(),
                })
            }
            .map_err(|e| CtlError(format!("cannot encode: {e}")))?;
            write_out(out, &encode(&value, args.output)?)?;
        }
        Some(Output::Name) => {
            let names: String = pods
                .iter()
                .map(|p| format!("pod/{}\n", p.metadata.name.as_deref().unwrap_or_default()))
                .collect();
            write_out(out, &names)?;
        }
        _ => {
            if pods.is_empty() {
                let where_ = if args.all_namespaces {
                    String::new()
                } else {
                    format!(" in {} namespace", namespace(&args.client))
                };
                eprintln!("No resources found{where_}.");
            } else {
                write_out(out, &pod_rows(args, &pods, true))?;
            }
        }
    }
    if args.watch {
        let name = pods
            .first()
            .filter(|_| args.name.is_some())
            .and_then(|p| p.metadata.name.clone());
        return watch(&client, args, ns, name.as_deref(), &version, out).await;
    }
    Ok(())
}

fn pods_path(ns: Option<&str>, query: &str) -> String {
    let base = match ns {
        Some(ns) => format!("/api/v1/namespaces/{ns}/pods"),
        None => "/api/v1/pods".to_string(),
    };
    if query.is_empty() {
        base
    } else {
        format!("{base}?{query}")
    }
}

/// Pods as kubectl's table, with or without its header line.
fn pod_rows(args: &GetArgs, pods: &[Pod], header: bool) -> String {
    let now = Timestamp::now();
    let rows: Vec<crate::k8s::print::PodRow> = pods
        .iter()
        .map(|p| crate::k8s::print::pod_row(p, now))
        .collect();
    let text = crate::k8s::print::table(
        &rows,
        args.output == Some(Output::Wide),
        args.all_namespaces,
    );
    if header {
        text
    } else {
        text.split_once('\n')
            .map(|(_, rest)| rest.to_string())
            .unwrap_or_default()
    }
}

/// `get pods -w`: prints every change after `version` (see [`follow`]).
async fn watch(
    client: &Client,
    args: &GetArgs,
    ns: Option<&str>,
    name: Option<&str>,
    version: &str,
    out: &mut dyn Write,
) -> Result<()> {
    let path = pods_path(ns, &selector_query(args, name));
    follow(
        client,
        &path,
        "application/json",
        version.to_string(),
        |event| {
            let pod: Pod = serde_json::from_value(event["object"].clone())
                .map_err(|e| CtlError(format!("unexpected watch event: {e}")))?;
            let text = match args.output {
                Some(Output::Json) | Some(Output::Yaml) => encode(&event["object"], args.output)?,
                Some(Output::Name) => {
                    format!("pod/{}\n", pod.metadata.name.as_deref().unwrap_or_default())
                }
                _ => pod_rows(args, &[pod], false),
            };
            write_out(out, &text)
        },
    )
    .await
}

/// `rkubelet describe pod NAME`.
pub async fn describe(args: &DescribeArgs, out: &mut dyn Write) -> Result<()> {
    let plural = check_resource(&args.resource)?;
    let client = Client::new(&args.client)?;
    if plural != "pods" {
        let text = describe_workload(&client, plural, namespace(&args.client), &args.name).await?;
        return out
            .write_all(text.as_bytes())
            .map_err(|e| CtlError(format!("cannot write output: {e}")));
    }
    let pod = client.find(namespace(&args.client), &args.name).await?;
    let ns = namespace_of(&pod).to_string();
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let events: List<Event> = client
        .json(&format!("/api/v1/namespaces/{ns}/events"))
        .await?;
    let events: Vec<Event> = events
        .items
        .into_iter()
        .filter(|e| e.involved_object.uid.as_deref() == Some(&uid))
        .collect();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let probes: Vec<crate::k8s::probe::ProbeReport> = client
        .json(&format!("/api/v1/namespaces/{ns}/pods/{name}/probes"))
        .await
        .unwrap_or_default();
    let text = describe::describe_pod_with_probes(&pod, &events, &probes, Timestamp::now());
    out.write_all(text.as_bytes())
        .map_err(|e| CtlError(format!("cannot write output: {e}")))
}

/// `describe deployment|replicaset|daemonset NAME`: the object, what it
/// owns (ReplicaSets or pods) and its events, printed as kubectl does.
async fn describe_workload(client: &Client, plural: &str, ns: &str, name: &str) -> Result<String> {
    use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet};
    let path = format!("/apis/apps/v1/namespaces/{ns}/{plural}/{name}");
    let events: List<Event> = client
        .json(&format!("/api/v1/namespaces/{ns}/events"))
        .await?;
    let kind = match plural {
        "deployments" => "Deployment",
        "replicasets" => "ReplicaSet",
        _ => "DaemonSet",
    };
    let events: Vec<Event> = (events.items.into_iter())
        .filter(|e| {
            e.involved_object.kind.as_deref() == Some(kind)
                && e.involved_object.name.as_deref() == Some(name)
        })
        .collect();
    let owned_by = |md: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| {
        (md.owner_references.iter().flatten()).any(|o| o.kind == kind && o.name == name)
    };
    let now = Timestamp::now();
    Ok(match plural {
        "deployments" => {
            let d: Deployment = client.json(&path).await?;
            let rss: List<ReplicaSet> = client
                .json(&format!("/apis/apps/v1/namespaces/{ns}/replicasets"))
                .await?;
            let rss: Vec<ReplicaSet> = (rss.items.into_iter())
                .filter(|rs| owned_by(&rs.metadata))
                .collect();
            describe_apps::describe_deployment(&d, &rss, &events, now)
        }
        _ => {
            let pods: Vec<Pod> = (client.pods(Some(ns)).await?.into_iter())
                .filter(|p| owned_by(&p.metadata))
                .collect();
            if plural == "replicasets" {
                let rs: ReplicaSet = client.json(&path).await?;
                describe_apps::describe_replica_set(&rs, &pods, &events, now)
            } else {
                let ds: DaemonSet = client.json(&path).await?;
                describe_apps::describe_daemon_set(&ds, &pods, &events, now)
            }
        }
    })
}

/// Percent-encodes a query value (RFC 3339 times carry `+` and `:`).
fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// `rkubelet logs POD [-c CONTAINER] [-f] [-p] [--tail N] [--timestamps]
/// [--since D | --since-time T] [--limit-bytes N]`.
pub async fn logs(args: &LogsArgs, out: &mut dyn Write) -> Result<()> {
    let client = Client::new(&args.client)?;
    let pod = client.find(namespace(&args.client), &args.pod).await?;
    let ns = namespace_of(&pod).to_string();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let mut query = vec![
        format!("follow={}", args.follow),
        format!("previous={}", args.previous),
        format!("timestamps={}", args.timestamps),
    ];
    if let Some(c) = &args.container {
        query.push(format!("container={c}"));
    }
    if let Some(t) = args.tail.filter(|t| *t >= 0) {
        query.push(format!("tailLines={t}"));
    }
    if let Some(d) = args.since {
        // kubectl rounds up to whole seconds, at least one.
        let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
        query.push(format!("sinceSeconds={}", secs.max(1)));
    }
    if let Some(t) = &args.since_time {
        query.push(format!("sinceTime={}", urlencode(t)));
    }
    if let Some(n) = args.limit_bytes {
        query.push(format!("limitBytes={n}"));
    }
    let path = format!(
        "/api/v1/namespaces/{ns}/pods/{name}/log?{}",
        query.join("&")
    );
    // The read-only port serves logs only with --read-only-port-logs; then
    // ask the authenticated port (its kubeconfig, or root's own files).
    let resp = match client.send(&path, "application/json").await? {
        r if r.status() == reqwest::StatusCode::FORBIDDEN => {
            let secure = secure::client(&args.secure).map_err(|e| {
                CtlError(format!(
                    "the read-only port does not serve logs, and the authenticated port cannot be used: {e}"
                ))
            })?;
            secure.get(&path).await?
        }
        r if r.status().is_success() => r,
        r => return Err(failure(r).await),
    };
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| CtlError(format!("log stream broke: {e}")))?;
        out.write_all(&chunk)
            .map_err(|e| CtlError(format!("cannot write output: {e}")))?;
        out.flush()
            .map_err(|e| CtlError(format!("cannot write output: {e}")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_types_are_known_by_kubectls_names_and_short_names() {
        for (name, plural) in [
            ("po", "pods"),
            ("Pod", "pods"),
            ("ev", "events"),
            ("event", "events"),
            ("no", "nodes"),
            ("ns", "namespaces"),
            ("namespace", "namespaces"),
            ("cm", "configmaps"),
            ("configmap", "configmaps"),
            ("secret", "secrets"),
            ("deploy", "deployments"),
            ("rs", "replicasets"),
            ("ds", "daemonsets"),
            ("DaemonSet", "daemonsets"),
            ("job", "jobs"),
            ("jobs.batch", "jobs"),
            ("Job", "jobs"),
        ] {
            assert_eq!(resource(name).expect(name).plural, plural, "{name}");
        }
        assert_eq!(resource("deploy").expect("deploy").api, "/apis/apps/v1");
        let e = resource("statefulsets").expect_err("unknown");
        assert!(e.0.contains("doesn't have a resource type"), "{e}");
        assert!(check_resource("po").is_ok());
        assert!(check_resource("nodes").is_err());
        assert!(!resource("nodes").expect("nodes").namespaced);
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(
            urlencode("2026-01-01T00:00:00.5+01:00"),
            "2026-01-01T00%3A00%3A00.5%2B01%3A00"
        );
    }
}
