//! `rkubelet describe pod`: a human summary in kubectl's layout (pure).

use std::fmt::Write;

use k8s_openapi::api::core::v1::{ContainerState, ContainerStatus, Event, Pod};
use k8s_openapi::jiff::Timestamp;

use crate::k8s::meta::namespace_of;
use crate::k8s::print::event_age;

fn state_lines(out: &mut String, title: &str, st: &ContainerState) {
    if let Some(r) = &st.running {
        let _ = writeln!(out, "    {title}:          Running");
        if let Some(t) = &r.started_at {
            let _ = writeln!(out, "      Started:      {}", t.0);
        }
    } else if let Some(w) = &st.waiting {
        let _ = writeln!(out, "    {title}:          Waiting");
        let _ = writeln!(
            out,
            "      Reason:       {}",
            w.reason.as_deref().unwrap_or("")
        );
        if let Some(m) = w.message.as_deref().filter(|m| !m.is_empty()) {
            let _ = writeln!(out, "      Message:      {m}");
        }
    } else if let Some(t) = &st.terminated {
        let _ = writeln!(out, "    {title}:          Terminated");
        let _ = writeln!(
            out,
            "      Reason:       {}",
            t.reason.as_deref().unwrap_or("")
        );
        if let Some(m) = t.message.as_deref().filter(|m| !m.is_empty()) {
            let _ = writeln!(out, "      Message:      {m}");
        }
        let _ = writeln!(out, "      Exit Code:    {}", t.exit_code);
        if let Some(s) = &t.started_at {
            let _ = writeln!(out, "      Started:      {}", s.0);
        }
        if let Some(f) = &t.finished_at {
            let _ = writeln!(out, "      Finished:     {}", f.0);
        }
    }
}

fn kv_lines(
    out: &mut String,
    title: &str,
    map: Option<&std::collections::BTreeMap<String, String>>,
) {
    let items: Vec<String> = map
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if items.is_empty() {
        let _ = writeln!(out, "{title:<14}<none>");
    } else {
        for (i, item) in items.iter().enumerate() {
            let label = if i == 0 { title } else { "" };
            let _ = writeln!(out, "{label:<14}{item}");
        }
    }
}

fn port_str(port: &k8s_openapi::apimachinery::pkg::util::intstr::IntOrString) -> String {
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    match port {
        IntOrString::Int(n) => n.to_string(),
        IntOrString::String(s) => s.clone(),
    }
}

/// kubectl's one-line summary of a probe.
pub fn probe_line(p: &k8s_openapi::api::core::v1::Probe) -> String {
    let handler = if let Some(e) = &p.exec {
        format!("exec [{}]", e.command.clone().unwrap_or_default().join(" "))
    } else if let Some(h) = &p.http_get {
        let port = port_str(&h.port);
        format!(
            "http-get {}://{}:{}{}",
            h.scheme.as_deref().unwrap_or("HTTP").to_lowercase(),
            h.host.as_deref().unwrap_or(""),
            port,
            h.path.as_deref().unwrap_or("/")
        )
    } else if let Some(t) = &p.tcp_socket {
        let port = port_str(&t.port);
        format!("tcp-socket {}:{}", t.host.as_deref().unwrap_or(""), port)
    } else if let Some(g) = &p.grpc {
        format!(
            "grpc <pod>:{} {}",
            g.port,
            g.service.as_deref().unwrap_or("")
        )
    } else {
        "unknown".into()
    };
    let params = crate::k8s::probe::Params::of(p);
    format!(
        "{handler} delay={}s timeout={}s period={}s #success={} #failure={}",
        params.initial_delay.as_secs(),
        params.timeout.as_secs(),
        params.period.as_secs(),
        params.success_threshold,
        params.failure_threshold
    )
}

/// Renders `describe pod` for a pod, its events and its last probe results at `now`.
pub fn describe_pod_with_probes(
    pod: &Pod,
    events: &[Event],
    probes: &[crate::k8s::probe::ProbeReport],
    now: Timestamp,
) -> String {
    let mut out = describe_pod(pod, events, now);
    if !probes.is_empty() {
        let mut section = String::from("Last Probe Results:\n");
        for p in probes {
            let _ = writeln!(
                section,
                "  {}/{}: {} (at {}) {}",
                p.container,
                p.kind,
                p.result,
                p.last_probe.as_deref().unwrap_or("never"),
                p.last_output.lines().next().unwrap_or("")
            );
        }
        // Before the events, like kubectl's sections.
        match out.find("Events:") {
            Some(i) => out.insert_str(i, &section),
            None => out.push_str(&section),
        }
    }
    out
}

/// Renders `describe pod` for a pod and its events at `now`.
pub fn describe_pod(pod: &Pod, events: &[Event], now: Timestamp) -> String {
    let mut out = String::new();
    let spec = pod.spec.clone().unwrap_or_default();
    let status = pod.status.clone().unwrap_or_default();
    let md = &pod.metadata;
    let _ = writeln!(out, "{:<14}{}", "Name:", md.name.as_deref().unwrap_or(""));
    let _ = writeln!(out, "{:<14}{}", "Namespace:", namespace_of(md));
    let _ = writeln!(
        out,
        "{:<14}{}/{}",
        "Node:",
        spec.node_name.as_deref().unwrap_or("<none>"),
        status.host_ip.as_deref().unwrap_or("")
    );
    if let Some(t) = &status.start_time {
        let _ = writeln!(out, "{:<14}{}", "Start Time:", t.0);
    }
    kv_lines(&mut out, "Labels:", md.labels.as_ref());
    kv_lines(&mut out, "Annotations:", md.annotations.as_ref());
    let phase = if md.deletion_timestamp.is_some() {
        "Terminating".to_string()
    } else {
        status.phase.clone().unwrap_or_default()
    };
    let _ = writeln!(out, "{:<14}{}", "Status:", phase);
    if let Some(r) = &status.reason {
        let _ = writeln!(out, "{:<14}{}", "Reason:", r);
    }
    if let Some(m) = &status.message {
        let _ = writeln!(out, "{:<14}{}", "Message:", m);
    }
    let _ = writeln!(
        out,
        "{:<14}{}",
        "IP:",
        status.pod_ip.as_deref().unwrap_or("")
    );
    let sections: [(
        &str,
        Vec<k8s_openapi::api::core::v1::Container>,
        Vec<ContainerStatus>,
    ); 2] = [
        (
            "Init Containers:",
            spec.init_containers.clone().unwrap_or_default(),
            status.init_container_statuses.clone().unwrap_or_default(),
        ),
        (
            "Containers:",
            spec.containers.clone(),
            status.container_statuses.clone().unwrap_or_default(),
        ),
    ];
    for (title, specs, statuses) in sections {
        if specs.is_empty() {
            continue;
        }
        let _ = writeln!(out, "{title}");
        for c in &specs {
            let st = statuses.iter().find(|s| s.name == c.name);
            let _ = writeln!(out, "  {}:", c.name);
            if let Some(id) = st.and_then(|s| s.container_id.as_deref()) {
                let _ = writeln!(out, "    Container ID:   {id}");
            }
            let _ = writeln!(
                out,
                "    Image:          {}",
                c.image.as_deref().unwrap_or("")
            );
            if let Some(id) = st.map(|s| s.image_id.as_str()).filter(|s| !s.is_empty()) {
                let _ = writeln!(out, "    Image ID:       {id}");
            }
            let ports: Vec<String> = c
                .ports
                .iter()
                .flatten()
                .map(|p| {
                    format!(
                        "{}/{}",
                        p.container_port,
                        p.protocol.as_deref().unwrap_or("TCP")
                    )
                })
                .collect();
            let _ = writeln!(
                out,
                "    Port:           {}",
                if ports.is_empty() {
                    "<none>".into()
                } else {
                    ports.join(", ")
                }
            );
            if let Some(cmd) = &c.command {
                let _ = writeln!(out, "    Command:        {}", cmd.join(" "));
            }
            if let Some(args) = &c.args {
                let _ = writeln!(out, "    Args:           {}", args.join(" "));
            }
            for (label, probe) in [
                ("Liveness", &c.liveness_probe),
                ("Readiness", &c.readiness_probe),
                ("Startup", &c.startup_probe),
            ] {
                if let Some(p) = probe {
                    let _ = writeln!(out, "    {:<16}{}", format!("{label}:"), probe_line(p));
                }
            }
            if let Some(s) = st {
                if let Some(state) = &s.state {
                    state_lines(&mut out, "State", state);
                }
                if let Some(last) = &s.last_state {
                    state_lines(&mut out, "Last State", last);
                }
                let _ = writeln!(out, "    Ready:          {}", s.ready);
                let _ = writeln!(out, "    Restart Count:  {}", s.restart_count);
            }
            let env: Vec<String> = c
                .env
                .iter()
                .flatten()
                .map(|e| {
                    format!(
                        "{}: {}",
                        e.name,
                        e.value.as_deref().unwrap_or("(from a reference)")
                    )
                })
                .collect();
            let _ = writeln!(
                out,
                "    Environment:    {}",
                if env.is_empty() {
                    "<none>".to_string()
                } else {
                    env.join(", ")
                }
            );
        }
    }
    let _ = writeln!(out, "Conditions:\n  Type                        Status");
    for c in status.conditions.iter().flatten() {
        let _ = writeln!(out, "  {:<28}{}", c.type_, c.status);
    }
    let _ = writeln!(
        out,
        "{:<14}{}",
        "QoS Class:",
        status.qos_class.as_deref().unwrap_or("")
    );
    if events.is_empty() {
        let _ = writeln!(out, "Events:       <none>");
    } else {
        let _ = writeln!(out, "Events:\n  Type     Reason     Age    From     Message\n  ----     ------     ----   ----     -------");
        for e in events {
            let age = event_age(e, now);
            let age = match e.count {
                Some(n) if n > 1 => format!("{age} (x{n})"),
                _ => age,
            };
            let _ = writeln!(
                out,
                "  {:<8} {:<10} {:<6} {:<8} {}",
                e.type_.as_deref().unwrap_or(""),
                e.reason.as_deref().unwrap_or(""),
                age,
                "kubelet",
                e.message.as_deref().unwrap_or("")
            );
        }
    }
    out
}
