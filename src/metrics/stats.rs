//! `/stats/summary`: per-pod and per-container CPU and memory from Docker's
//! stats, in the kubelet's Summary API shape (`stats/v1alpha1`), so
//! `kubectl top`-style tools and `rkubelet top pods` have data.
//!
//! Cost is bounded: samples are cached and refreshed **at most every
//! [`REFRESH`]** and only when someone asks (an unread endpoint costs
//! nothing); a refresh asks Docker once per running container, a few at a
//! time, and concurrent requests share it. CPU usage in nano-cores is the
//! difference between two refreshes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{self, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::runtime::{ContainerRuntime, ContainerStats};

/// The least time between two refreshes of the samples.
pub const REFRESH: Duration = Duration::from_secs(10);
/// Stats calls in flight at once during a refresh.
const PARALLEL: usize = 4;

/// One container's latest sample.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub stats: ContainerStats,
    pub at: Timestamp,
    /// CPU use since the previous sample, in billionths of a core.
    pub nano_cores: Option<u64>,
}

#[derive(Default)]
struct Cache {
    taken: Option<Instant>,
    /// By container id.
    samples: HashMap<String, (Instant, Sample)>,
}

/// Cached Docker stats of the running containers.
pub struct StatsCache {
    runtime: Arc<dyn ContainerRuntime>,
    cache: tokio::sync::Mutex<Cache>,
}

impl StatsCache {
    pub fn new(runtime: Arc<dyn ContainerRuntime>) -> StatsCache {
        StatsCache {
            runtime,
            cache: tokio::sync::Mutex::default(),
        }
    }

    /// The samples of `ids` (running containers), refreshed first when the
    /// last refresh is older than [`REFRESH`]. A container started since has
    /// no sample until the next refresh; one whose stats fail is left out.
    pub async fn samples(&self, ids: &[String]) -> HashMap<String, Sample> {
        let mut cache = self.cache.lock().await;
        if cache.taken.is_none_or(|t| t.elapsed() >= REFRESH) {
            let fetched: Vec<(String, Option<ContainerStats>)> = stream::iter(ids.iter().cloned())
                .map(|id| async move {
                    let s = self.runtime.stats(&id).await.ok();
                    (id, s)
                })
                .buffer_unordered(PARALLEL)
                .collect()
                .await;
            let now = Instant::now();
            let mut samples = HashMap::new();
            for (id, stats) in fetched {
                let Some(stats) = stats else { continue };
                let nano_cores = cache.samples.get(&id).and_then(|(then, prev)| {
                    let secs = now.duration_since(*then).as_secs_f64();
                    let used = stats
                        .cpu_usage_nanos
                        .checked_sub(prev.stats.cpu_usage_nanos)?;
                    (secs > 0.0).then(|| (used as f64 / secs) as u64)
                });
                let sample = Sample {
                    stats,
                    at: Timestamp::now(),
                    nano_cores,
                };
                samples.insert(id, (now, sample));
            }
            cache.samples = samples;
            cache.taken = Some(now);
        }
        ids.iter()
            .filter_map(|id| cache.samples.get(id).map(|(_, s)| (id.clone(), *s)))
            .collect()
    }
}

/// The running containers of `pods`: (pod index, container name, id).
pub fn running_containers(pods: &[Pod]) -> Vec<(usize, String, String)> {
    let mut out = Vec::new();
    for (i, pod) in pods.iter().enumerate() {
        let Some(status) = &pod.status else { continue };
        for c in status.container_statuses.iter().flatten() {
            let running = c.state.as_ref().is_some_and(|s| s.running.is_some());
            if let (true, Some(id)) = (running, &c.container_id) {
                let id = id.trim_start_matches("docker://").to_string();
                out.push((i, c.name.clone(), id));
            }
        }
    }
    out
}

fn cpu_json(at: Timestamp, total: u64, nano_cores: Option<u64>) -> Value {
    let mut v = json!({"time": at.to_string(), "usageCoreNanoSeconds": total});
    if let Some(n) = nano_cores {
        v["usageNanoCores"] = json!(n);
    }
    v
}

fn memory_json(at: Timestamp, s: &ContainerStats) -> Value {
    let mut v = json!({
        "time": at.to_string(),
        "usageBytes": s.memory_usage_bytes,
        "workingSetBytes": s.memory_working_set_bytes,
    });
    if let Some(rss) = s.memory_rss_bytes {
        v["rssBytes"] = json!(rss);
    }
    v
}

/// The Summary: the node and, for each pod with running containers, the
/// containers' samples and their sums.
pub fn summary(
    node: &str,
    started: Timestamp,
    pods: &[Pod],
    samples: &HashMap<String, Sample>,
) -> Value {
    let now = Timestamp::now();
    let running = running_containers(pods);
    let mut items = Vec::new();
    for (i, pod) in pods.iter().enumerate() {
        let mut containers = Vec::new();
        let (mut cpu, mut cores, mut usage, mut ws, mut rss) = (0u64, None, 0u64, 0u64, None);
        for (_, name, id) in running.iter().filter(|(p, _, _)| *p == i) {
            let Some(s) = samples.get(id) else { continue };
            cpu += s.stats.cpu_usage_nanos;
            if let Some(n) = s.nano_cores {
                cores = Some(cores.unwrap_or(0) + n);
            }
            usage += s.stats.memory_usage_bytes;
            ws += s.stats.memory_working_set_bytes;
            if let Some(r) = s.stats.memory_rss_bytes {
                rss = Some(rss.unwrap_or(0) + r);
            }
            containers.push(json!({
                "name": name,
                "cpu": cpu_json(s.at, s.stats.cpu_usage_nanos, s.nano_cores),
                "memory": memory_json(s.at, &s.stats),
            }));
        }
        let meta = &pod.metadata;
        let total = ContainerStats {
            cpu_usage_nanos: cpu,
            memory_usage_bytes: usage,
            memory_working_set_bytes: ws,
            memory_rss_bytes: rss,
        };
        let mut item = json!({
            "podRef": {
                "name": meta.name,
                "namespace": meta.namespace,
                "uid": meta.uid,
            },
            "containers": containers,
        });
        if let Some(t) = pod.status.as_ref().and_then(|s| s.start_time.as_ref()) {
            item["startTime"] = json!(t.0.to_string());
        }
        if !containers_empty(&item) {
            item["cpu"] = cpu_json(now, cpu, cores);
            item["memory"] = memory_json(now, &total);
        }
        items.push(item);
    }
    json!({
        "node": {"nodeName": node, "startTime": started.to_string()},
        "pods": items,
    })
}

fn containers_empty(item: &Value) -> bool {
    item["containers"].as_array().is_none_or(|a| a.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        ContainerState, ContainerStateRunning, ContainerStatus, PodStatus,
    };

    fn pod(name: &str, containers: &[(&str, &str)]) -> Pod {
        let mut p = Pod::default();
        p.metadata.name = Some(name.into());
        p.metadata.namespace = Some("default".into());
        p.metadata.uid = Some(format!("uid-{name}"));
        p.status = Some(PodStatus {
            container_statuses: Some(
                containers
                    .iter()
                    .map(|(n, id)| ContainerStatus {
                        name: n.to_string(),
                        container_id: Some(format!("docker://{id}")),
                        state: Some(ContainerState {
                            running: Some(ContainerStateRunning::default()),
                            ..Default::default()
                        }),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        });
        p
    }

    fn sample(cpu: u64, mem: u64, cores: Option<u64>) -> Sample {
        Sample {
            stats: ContainerStats {
                cpu_usage_nanos: cpu,
                memory_usage_bytes: mem + 10,
                memory_working_set_bytes: mem,
                memory_rss_bytes: None,
            },
            at: Timestamp::UNIX_EPOCH,
            nano_cores: cores,
        }
    }

    #[test]
    fn the_summary_sums_containers_per_pod_in_the_kubelet_shape() {
        let pods = [pod("a", &[("x", "1"), ("y", "2")]), pod("b", &[("z", "3")])];
        let samples = HashMap::from([
            ("1".to_string(), sample(100, 1000, Some(5))),
            ("2".to_string(), sample(50, 500, Some(7))),
        ]);
        let v = summary("node1", Timestamp::UNIX_EPOCH, &pods, &samples);
        assert_eq!(v["node"]["nodeName"], "node1");
        let a = &v["pods"][0];
        assert_eq!(a["podRef"]["name"], "a");
        assert_eq!(a["containers"].as_array().unwrap().len(), 2);
        assert_eq!(a["cpu"]["usageNanoCores"], 12);
        assert_eq!(a["cpu"]["usageCoreNanoSeconds"], 150);
        assert_eq!(a["memory"]["workingSetBytes"], 1500);
        assert_eq!(a["containers"][0]["memory"]["usageBytes"], 1010);
        // No sample for b's container yet: listed without usage.
        assert!(v["pods"][1]["cpu"].is_null());
    }
}
