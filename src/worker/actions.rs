//! Handlers that act on a running container: lifecycle hooks now, probes next.
//!
//! `exec` runs through the runtime (Docker exec) with rkubelet enforcing the
//! timeout; `httpGet` goes from the host to the pod IP (the host for
//! `hostNetwork` pods, or `host` when given), 200 ≤ status < 400 is success;
//! `sleep` just waits. Named ports are resolved against the container's
//! `ports`. Every handler ends within its timeout.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, HTTPGetAction, LifecycleHandler};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::runtime::ContainerRuntime;

/// Where a handler runs: the container and its pod's address.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub container_id: &'a str,
    pub container: &'a Container,
    /// The pod IP (sandbox IP, or the host's for hostNetwork pods).
    pub pod_ip: &'a str,
}

/// Resolves a numeric or named port against the container's ports.
pub fn resolve_port(port: &IntOrString, container: &Container) -> Result<u16, String> {
    match port {
        IntOrString::Int(n) => u16::try_from(*n)
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("invalid port {n}")),
        IntOrString::String(name) => {
            if let Ok(n) = name.parse::<u16>() {
                return Ok(n);
            }
            container
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(name.as_str()))
                .and_then(|p| u16::try_from(p.container_port).ok())
                .ok_or_else(|| format!("no port named {name:?} in container {:?}", container.name))
        }
    }
}

/// The URL an `httpGet` action targets.
pub fn http_url(action: &HTTPGetAction, target: &Target<'_>) -> Result<String, String> {
    let port = resolve_port(&action.port, target.container)?;
    let scheme = action
        .scheme
        .as_deref()
        .unwrap_or("HTTP")
        .to_ascii_lowercase();
    let host = action
        .host
        .as_deref()
        .filter(|h| !h.is_empty())
        .unwrap_or(target.pod_ip);
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    let path = action.path.as_deref().unwrap_or("/");
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    Ok(format!("{scheme}://{host}:{port}{path}"))
}

/// Runs a lifecycle hook; `Err` carries a message for the event.
pub async fn run_hook(
    runtime: &dyn ContainerRuntime,
    handler: &LifecycleHandler,
    target: Target<'_>,
    timeout: Duration,
) -> Result<(), String> {
    if let Some(exec) = &handler.exec {
        let cmd = exec.command.clone().unwrap_or_default();
        let result = runtime
            .exec(target.container_id, &cmd, timeout)
            .await
            .map_err(|e| format!("exec {cmd:?} failed: {e}"))?;
        if result.timed_out {
            return Err(format!(
                "command {cmd:?} timed out after {}",
                humantime::format_duration(timeout)
            ));
        }
        return match result.exit_code {
            Some(0) => Ok(()),
            code => Err(format!(
                "command {cmd:?} exited with {}: {}",
                code.map_or("no exit code".to_string(), |c| c.to_string()),
                result.output.trim_end()
            )),
        };
    }
    if let Some(action) = &handler.http_get {
        let url = http_url(action, &target)?;
        let mut request = crate::http_client::client_builder()
            .timeout(timeout)
            .danger_accept_invalid_certs(true)
            .build()
            .map_err(|e| format!("cannot build an HTTP client: {e}"))?
            .get(&url);
        for h in action.http_headers.iter().flatten() {
            request = request.header(h.name.as_str(), h.value.as_str());
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("Get {url:?}: {e}"))?;
        let status = response.status().as_u16();
        return if (200..400).contains(&status) {
            Ok(())
        } else {
            Err(format!(
                "HTTP lifecycle hook ({url}) for Container {:?} returned status {status}",
                target.container.name
            ))
        };
    }
    if let Some(sleep) = &handler.sleep {
        let wanted = Duration::from_secs(sleep.seconds.max(0) as u64);
        tokio::time::sleep(wanted.min(timeout)).await;
        return Ok(());
    }
    Err("the hook has no exec, httpGet or sleep action".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ContainerPort, ExecAction, SleepAction};

    fn container() -> Container {
        Container {
            name: "web".into(),
            ports: Some(vec![ContainerPort {
                name: Some("http".into()),
                container_port: 8080,
                ..Default::default()
            }]),
            ..Default::default()
        }
    }

    #[test]
    fn named_and_numeric_ports_resolve() {
        let c = container();
        assert_eq!(
            resolve_port(&IntOrString::String("http".into()), &c),
            Ok(8080)
        );
        assert_eq!(resolve_port(&IntOrString::Int(81), &c), Ok(81));
        assert_eq!(resolve_port(&IntOrString::String("82".into()), &c), Ok(82));
        assert!(resolve_port(&IntOrString::String("nope".into()), &c).is_err());
        assert!(resolve_port(&IntOrString::Int(0), &c).is_err());
    }

    #[test]
    fn http_urls_default_to_the_pod_ip_http_and_root() {
        let c = container();
        let t = Target {
            container_id: "x",
            container: &c,
            pod_ip: "172.17.0.2",
        };
        let mut a = HTTPGetAction {
            port: IntOrString::String("http".into()),
            ..Default::default()
        };
        assert_eq!(http_url(&a, &t).as_deref(), Ok("http://172.17.0.2:8080/"));
        a.host = Some("127.0.0.1".into());
        a.path = Some("healthz".into());
        a.scheme = Some("HTTPS".into());
        assert_eq!(
            http_url(&a, &t).as_deref(),
            Ok("https://127.0.0.1:8080/healthz")
        );
        let t6 = Target {
            pod_ip: "fd00::2",
            ..t
        };
        a.host = None;
        assert_eq!(
            http_url(&a, &t6).as_deref(),
            Ok("https://[fd00::2]:8080/healthz")
        );
    }

    #[tokio::test]
    async fn exec_hooks_fail_on_a_non_zero_exit_and_sleep_hooks_are_bounded() {
        use crate::runtime::fake::FakeRuntime;
        use crate::runtime::{ContainerRuntime, SandboxConfig};
        let fake = FakeRuntime::new();
        let labels = crate::runtime::labels::PodRef {
            name: "p".into(),
            namespace: "default".into(),
            uid: "u".into(),
            source: String::new(),
            grace_period_seconds: 1,
        }
        .sandbox_labels(0);
        let id = fake
            .run_sandbox(&SandboxConfig {
                name: "s".into(),
                labels,
                ..Default::default()
            })
            .await
            .expect("sandbox");
        let c = container();
        let t = Target {
            container_id: &id,
            container: &c,
            pod_ip: "10.0.0.2",
        };
        let exec = |cmd: &str| LifecycleHandler {
            exec: Some(ExecAction {
                command: Some(vec![cmd.into()]),
            }),
            ..Default::default()
        };
        let d = Duration::from_secs(1);
        assert_eq!(run_hook(&fake, &exec("true"), t, d).await, Ok(()));
        assert!(run_hook(&fake, &exec("false"), t, d).await.is_err());
        let sleep = LifecycleHandler {
            sleep: Some(SleepAction { seconds: 60 }),
            ..Default::default()
        };
        let started = std::time::Instant::now();
        assert_eq!(
            run_hook(&fake, &sleep, t, Duration::from_millis(50)).await,
            Ok(())
        );
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
