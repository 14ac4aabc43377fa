//! Validated daemon settings, built from the command line.
//!
//! [`Config::from_args`] is where bad usage is caught (exit code 64 in
//! `main`); everything downstream can trust these values.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::backoff::BackoffPolicy;
use crate::cli::{DaemonArgs, LogFormat};

/// A flag value that cannot work, with a message saying what to do.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Everything the daemon needs, validated.
#[derive(Debug, Clone)]
pub struct Config {
    pub manifest_dir: PathBuf,
    pub file_check_frequency: Duration,
    /// Lower-cased node name.
    pub node_name: String,
    pub root_dir: PathBuf,
    pub docker_endpoint: String,
    pub infra_image: String,
    /// `None` when the read-only API is disabled.
    pub api_address: Option<SocketAddr>,
    pub log_format: LogFormat,
    pub backoff: BackoffPolicy,
    pub relist_period: Duration,
}

/// Is `s` a DNS-1123 subdomain (what Kubernetes requires of node names)?
fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn host_name() -> Result<String, UsageError> {
    nix::unistd::gethostname()
        .map_err(|e| {
            UsageError(format!(
                "cannot read the host name ({e}); pass --hostname-override"
            ))
        })?
        .into_string()
        .map_err(|_| UsageError("the host name is not UTF-8; pass --hostname-override".into()))
}

impl Config {
    /// Validates the flags. Fails with a message naming the flag.
    pub fn from_args(args: &DaemonArgs) -> Result<Config, UsageError> {
        let node_name = match &args.hostname_override {
            Some(n) => n.trim().to_lowercase(),
            None => host_name()?.trim().to_lowercase(),
        };
        if !is_dns1123_subdomain(&node_name) {
            return Err(UsageError(format!(
                "node name {node_name:?} is not a valid DNS-1123 subdomain; pass --hostname-override"
            )));
        }
        if args.file_check_frequency.is_zero() {
            return Err(UsageError(
                "--file-check-frequency must be greater than 0".into(),
            ));
        }
        if args.crash_loop_backoff_base.is_zero()
            || args.crash_loop_backoff_max < args.crash_loop_backoff_base
        {
            return Err(UsageError(
                "--crash-loop-backoff-base must be > 0 and ≤ --crash-loop-backoff-max".into(),
            ));
        }
        if args.pod_infra_container_image.trim().is_empty() {
            return Err(UsageError(
                "--pod-infra-container-image must not be empty".into(),
            ));
        }
        let docker_endpoint = match &args.docker_endpoint {
            Some(e) => e.clone(),
            None => std::env::var("DOCKER_HOST")
                .ok()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "unix:///var/run/docker.sock".into()),
        };
        if !(docker_endpoint.starts_with("unix://")
            || docker_endpoint.starts_with("tcp://")
            || docker_endpoint.starts_with("http://"))
        {
            return Err(UsageError(format!(
                "--docker-endpoint {docker_endpoint:?} must start with unix:// or tcp://"
            )));
        }
        let api_address =
            (args.read_only_port != 0).then(|| SocketAddr::new(args.address, args.read_only_port));
        Ok(Config {
            manifest_dir: args.config.clone(),
            file_check_frequency: args.file_check_frequency,
            node_name,
            root_dir: args.root_dir.clone(),
            docker_endpoint,
            infra_image: args.pod_infra_container_image.clone(),
            api_address,
            log_format: args.log_format,
            backoff: BackoffPolicy {
                base: args.crash_loop_backoff_base,
                max: args.crash_loop_backoff_max,
            },
            relist_period: args.relist_period,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use clap::Parser;

    fn config(args: &[&str]) -> Result<Config, UsageError> {
        let mut argv = vec!["rkubelet"];
        argv.extend_from_slice(args);
        let cli = Cli::try_parse_from(argv).expect("flags parse");
        Config::from_args(&cli.daemon)
    }

    #[test]
    fn defaults_are_the_kubelets() {
        let c = config(&["--hostname-override", "Node1"]).expect("valid");
        assert_eq!(c.manifest_dir, PathBuf::from("/etc/kubelet.d"));
        assert_eq!(c.node_name, "node1");
        assert_eq!(c.file_check_frequency, Duration::from_secs(20));
        assert_eq!(
            c.api_address,
            Some("127.0.0.1:10255".parse().expect("addr"))
        );
        assert_eq!(c.backoff, BackoffPolicy::default());
    }

    #[test]
    fn pod_manifest_path_is_an_alias_of_config() {
        let c =
            config(&["--pod-manifest-path", "/tmp/x", "--hostname-override", "n"]).expect("valid");
        assert_eq!(c.manifest_dir, PathBuf::from("/tmp/x"));
    }

    #[test]
    fn port_zero_disables_the_api() {
        let c = config(&["--read-only-port", "0", "--hostname-override", "n"]).expect("valid");
        assert_eq!(c.api_address, None);
    }

    #[test]
    fn invalid_node_names_are_usage_errors() {
        let e = config(&["--hostname-override", "bad_name"]).expect_err("invalid");
        assert!(e.to_string().contains("--hostname-override"), "{e}");
    }

    #[test]
    fn bad_durations_fail_to_parse_with_examples() {
        let e = Cli::try_parse_from(["rkubelet", "--file-check-frequency", "soon"])
            .expect_err("invalid");
        assert!(e.to_string().contains("20s"), "{e}");
    }

    #[test]
    fn backoff_base_above_max_is_rejected() {
        let e = config(&[
            "--hostname-override",
            "n",
            "--crash-loop-backoff-base",
            "10s",
            "--crash-loop-backoff-max",
            "1s",
        ])
        .expect_err("invalid");
        assert!(e.to_string().contains("backoff"), "{e}");
    }
}
