//! `rkubelet top pods`: CPU and memory per pod from `/stats/summary`, in
//! `kubectl top pods`' columns (CPU in millicores, memory as working set in
//! MiB).

use std::io::Write;

use serde_json::Value;

use super::{Client, CtlError, Result};
use crate::cli::TopArgs;

/// Millicores and MiB of one pod: `None` until it has a CPU rate (two
/// samples, ≥ 10 s apart).
fn usage(pod: &Value) -> Option<(u64, u64)> {
    let cores = pod["cpu"]["usageNanoCores"].as_u64()?;
    let ws = pod["memory"]["workingSetBytes"].as_u64()?;
    Some((cores / 1_000_000, ws / (1024 * 1024)))
}

/// The table for a Summary; fails when no pod has usage yet (as kubectl).
pub fn render(summary: &Value, namespace: Option<&str>, out: &mut dyn Write) -> Result<()> {
    let pods = summary["pods"].as_array().cloned().unwrap_or_default();
    let mut rows = Vec::new();
    for pod in &pods {
        let ns = pod["podRef"]["namespace"].as_str().unwrap_or("default");
        if namespace.is_some_and(|n| n != ns) {
            continue;
        }
        let name = pod["podRef"]["name"].as_str().unwrap_or_default();
        if let Some((m, mib)) = usage(pod) {
            rows.push((ns.to_string(), name.to_string(), m, mib));
        }
    }
    if rows.is_empty() {
        return Err(CtlError(
            "error: metrics not available yet (CPU needs two samples, 10 s apart; try again)"
                .into(),
        ));
    }
    rows.sort();
    let mut tw = tabwriter::TabWriter::new(Vec::new()).padding(3);
    let all = namespace.is_none();
    let io = |e: std::io::Error| CtlError(format!("cannot write: {e}"));
    if all {
        writeln!(tw, "NAMESPACE\tNAME\tCPU(cores)\tMEMORY(bytes)").map_err(io)?;
    } else {
        writeln!(tw, "NAME\tCPU(cores)\tMEMORY(bytes)").map_err(io)?;
    }
    for (ns, name, m, mib) in rows {
        if all {
            writeln!(tw, "{ns}\t{name}\t{m}m\t{mib}Mi").map_err(io)?;
        } else {
            writeln!(tw, "{name}\t{m}m\t{mib}Mi").map_err(io)?;
        }
    }
    let table = tw
        .into_inner()
        .map_err(|e| CtlError(format!("cannot write: {e}")))?;
    out.write_all(&table).map_err(io)
}

/// `rkubelet top pods [-n NS | -A]`.
pub async fn run(args: &TopArgs, out: &mut dyn Write) -> Result<()> {
    if !matches!(args.resource.as_str(), "pods" | "pod" | "po") {
        return Err(CtlError(format!(
            "error: rkubelet top shows pods only, not {:?}",
            args.resource
        )));
    }
    let client = Client::new(&args.client)?;
    let summary: Value = client.json("/stats/summary").await?;
    let ns = if args.all_namespaces {
        None
    } else {
        Some(args.client.namespace.as_deref().unwrap_or("default"))
    };
    render(&summary, ns, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pods_print_in_millicores_and_mebibytes_like_kubectl_top() {
        let summary = json!({"pods": [
            {"podRef": {"name": "web-n1", "namespace": "default"},
             "cpu": {"usageNanoCores": 12_500_000u64},
             "memory": {"workingSetBytes": 3u64 * 1024 * 1024 + 5}},
            {"podRef": {"name": "new-n1", "namespace": "default"}, "containers": []},
            {"podRef": {"name": "sys-n1", "namespace": "kube-system"},
             "cpu": {"usageNanoCores": 1u64}, "memory": {"workingSetBytes": 0u64}},
        ]});
        let mut out = Vec::new();
        render(&summary, Some("default"), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "NAME     CPU(cores)   MEMORY(bytes)\nweb-n1   12m          3Mi\n"
        );
        let mut out = Vec::new();
        render(&summary, None, &mut out).unwrap();
        assert!(String::from_utf8(out)
            .unwrap()
            .contains("kube-system   sys-n1"));
        assert!(render(&json!({"pods": []}), None, &mut Vec::new()).is_err());
    }
}
