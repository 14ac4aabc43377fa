//! Validated daemon settings, built from the command line.
//!
//! [`Config::from_args`] is where bad usage is caught (exit code 64 in
//! `main`); everything downstream can trust these values.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::backoff::BackoffPolicy;
use crate::cli::{DaemonArgs, LogFormat};
use crate::http_client::{self, HeaderError, UrlError};
use crate::node::{self, NodeInfo, NodeLabelError, NodeNameError};

/// A flag value that cannot work, with a message saying what to do.
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    /// The node name (`--hostname-override` or the host name).
    #[error(transparent)]
    NodeName(#[from] NodeNameError),
    #[error(transparent)]
    NodeLabel(#[from] NodeLabelError),
    #[error(transparent)]
    NodeTaint(#[from] crate::k8s::taints::TaintError),
    #[error(transparent)]
    ManifestUrl(#[from] UrlError),
    #[error(transparent)]
    ManifestUrlHeader(#[from] HeaderError),
    /// Another flag (or flags) with a value that cannot work.
    #[error("{message}")]
    Flag {
        /// The flag, e.g. `--max-parallel-starts`.
        flag: &'static str,
        message: String,
    },
}

impl UsageError {
    fn flag(flag: &'static str, message: impl Into<String>) -> UsageError {
        UsageError::Flag {
            flag,
            message: message.into(),
        }
    }
}

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
    /// `--read-only-port-logs`: serve container logs on the read-only port.
    pub read_only_port_logs: bool,
    /// The authenticated port; `None` with `--port 0`.
    pub secure: Option<crate::api::secure::SecureSettings>,
    pub log_format: LogFormat,
    /// `--v`: the log verbosity ([`crate::logging`]).
    pub verbosity: u8,
    /// `--image-credential-file` ([`crate::registry`]).
    pub image_credential_file: Option<PathBuf>,
    /// `--serialize-image-pulls`.
    pub serialize_image_pulls: bool,
    /// `--image-pull-progress-period` (hidden; 2 s).
    pub image_pull_progress_period: Duration,
    pub backoff: BackoffPolicy,
    pub relist_period: Duration,
    /// `--max-parallel-starts`: container creations + starts in flight at once.
    pub max_parallel_starts: usize,
    /// `--max-parallel-teardowns`: sandbox stops + pod removals in flight at once.
    pub max_parallel_teardowns: usize,
    /// `--max-pods`: pods this node runs at once.
    pub max_pods: usize,
    /// `--manifest-url`, checked to be http(s).
    pub manifest_url: Option<String>,
    /// `--manifest-url-header`s as (name, value), in the order given.
    pub manifest_url_headers: Vec<(String, String)>,
    pub http_check_frequency: Duration,
    pub http_timeout: Duration,
    /// Every label of this node: the built-in ones plus `--node-labels`.
    pub node_labels: BTreeMap<String, String>,
    /// `--register-with-taints`.
    pub node_taints: Vec<crate::k8s::taints::NodeTaint>,
}

/// The default of `--max-parallel-starts`: twice the number of CPUs rkubelet
/// may run on (measured: starts are CPU-bound in dockerd, so a few per core
/// keep it busy while one waits on I/O, and more only queue inside Docker).
pub fn default_max_parallel_starts() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()) * 2
}

/// The node's labels: built-in ones for `node_name` plus `--node-labels`.
pub fn node_labels(
    node_name: &str,
    flags: &[String],
) -> Result<BTreeMap<String, String>, NodeLabelError> {
    let extra = node::parse_labels(flags)?;
    Ok(NodeInfo::with_labels(node_name, &extra).labels)
}

impl Config {
    /// This node's name and labels, for admission.
    pub fn node(&self) -> NodeInfo {
        NodeInfo {
            name: self.node_name.clone(),
            labels: self.node_labels.clone(),
            taints: self.node_taints.clone(),
        }
    }

    /// Validates the flags. Fails with a message naming the flag.
    pub fn from_args(args: &DaemonArgs) -> Result<Config, UsageError> {
        let node_name = node::resolve_name(args.hostname_override.as_deref())?;
        let node_labels = node_labels(&node_name, &args.node_labels)?;
        let node_taints = crate::k8s::taints::parse(&args.register_with_taints)?;
        if let Some(url) = &args.manifest_url {
            http_client::check_url(url)?;
        }
        let manifest_url_headers = args
            .manifest_url_header
            .iter()
            .map(|h| http_client::parse_header(h))
            .collect::<Result<Vec<_>, _>>()?;
        if args.http_check_frequency.is_zero() || args.http_timeout.is_zero() {
            return Err(UsageError::flag(
                "--http-check-frequency",
                "--http-check-frequency and --http-timeout must be greater than 0",
            ));
        }
        if args.file_check_frequency.is_zero() {
            return Err(UsageError::flag(
                "--file-check-frequency",
                "--file-check-frequency must be greater than 0",
            ));
        }
        if args.crash_loop_backoff_base.is_zero()
            || args.crash_loop_backoff_max < args.crash_loop_backoff_base
        {
            return Err(UsageError::flag(
                "--crash-loop-backoff-base",
                "--crash-loop-backoff-base must be > 0 and ≤ --crash-loop-backoff-max",
            ));
        }
        if args.pod_infra_container_image.trim().is_empty() {
            return Err(UsageError::flag(
                "--pod-infra-container-image",
                "--pod-infra-container-image must not be empty",
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
            return Err(UsageError::flag(
                "--docker-endpoint",
                format!("--docker-endpoint {docker_endpoint:?} must start with unix:// or tcp://"),
            ));
        }
        let max_parallel_starts = args
            .max_parallel_starts
            .unwrap_or_else(default_max_parallel_starts);
        if max_parallel_starts == 0 {
            return Err(UsageError::flag(
                "--max-parallel-starts",
                "--max-parallel-starts must be at least 1",
            ));
        }
        // As many as start slots by default: with 100 pods removed at once
        // on 2 CPUs, 2 slots took twice as long as 4; 4 and 8 were alike.
        let max_parallel_teardowns = args
            .max_parallel_teardowns
            .unwrap_or(2 * max_parallel_starts);
        if max_parallel_teardowns == 0 {
            return Err(UsageError::flag(
                "--max-parallel-teardowns",
                "--max-parallel-teardowns must be at least 1",
            ));
        }
        if args.max_pods == 0 {
            return Err(UsageError::flag(
                "--max-pods",
                "--max-pods must be at least 1",
            ));
        }
        let api_address =
            (args.read_only_port != 0).then(|| SocketAddr::new(args.address, args.read_only_port));
        let secure = (args.secure.port != 0).then(|| crate::api::secure::SecureSettings {
            address: SocketAddr::new(args.address, args.secure.port),
            tls_cert_file: args.secure.tls_cert_file.clone(),
            tls_private_key_file: args.secure.tls_private_key_file.clone(),
            client_ca_file: args.secure.client_ca_file.clone(),
            token_auth_file: args.secure.token_auth_file.clone(),
        });
        if let (Some(api), Some(secure)) = (api_address, &secure) {
            if api.port() == secure.address.port() {
                return Err(UsageError::flag(
                    "--port",
                    format!(
                        "--port and --read-only-port are both {}; give them different ports",
                        api.port()
                    ),
                ));
            }
        }
        Ok(Config {
            manifest_dir: args.config.clone(),
            file_check_frequency: args.file_check_frequency,
            node_name,
            // Docker bind-mounts files from here: a relative --root-dir
            // would be resolved by the daemon, not against our working
            // directory, so it is made absolute once.
            root_dir: std::path::absolute(&args.root_dir).map_err(|e| {
                UsageError::flag(
                    "--root-dir",
                    format!("cannot resolve {}: {e}", args.root_dir.display()),
                )
            })?,
            docker_endpoint,
            infra_image: args.pod_infra_container_image.clone(),
            api_address,
            read_only_port_logs: args.read_only_port_logs,
            secure,
            log_format: args.log_format,
            verbosity: args.verbosity,
            image_credential_file: args.image_credential_file.clone(),
            serialize_image_pulls: args.serialize_image_pulls,
            image_pull_progress_period: args.image_pull_progress_period,
            backoff: BackoffPolicy {
                base: args.crash_loop_backoff_base,
                max: args.crash_loop_backoff_max,
            },
            relist_period: args.relist_period,
            max_parallel_starts,
            max_parallel_teardowns,
            max_pods: args.max_pods,
            manifest_url: args.manifest_url.clone(),
            manifest_url_headers,
            http_check_frequency: args.http_check_frequency,
            http_timeout: args.http_timeout,
            node_labels,
            node_taints,
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
    fn a_relative_root_dir_is_made_absolute_for_docker_bind_mounts() {
        let c = config(&["--hostname-override", "n", "--root-dir", "state/rk"]).expect("valid");
        assert!(c.root_dir.is_absolute(), "{}", c.root_dir.display());
        assert!(c.root_dir.ends_with("state/rk"), "{}", c.root_dir.display());
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
        assert_eq!(c.max_parallel_starts, default_max_parallel_starts());
        assert!(c.max_parallel_starts >= 2);
        assert_eq!(c.max_parallel_teardowns, 2 * c.max_parallel_starts);
        let c = config(&[
            "--max-parallel-starts",
            "3",
            "--max-parallel-teardowns",
            "8",
        ])
        .expect("valid");
        assert_eq!((c.max_parallel_starts, c.max_parallel_teardowns), (3, 8));
        let e = config(&["--max-parallel-teardowns", "0"]).expect_err("zero");
        assert!(e.to_string().contains("--max-parallel-teardowns"), "{e}");
    }

    #[test]
    fn parallel_starts_can_be_bounded_but_not_to_zero() {
        let c = config(&["--hostname-override", "n", "--max-parallel-starts", "3"]).expect("valid");
        assert_eq!(c.max_parallel_starts, 3);
        let e = config(&["--hostname-override", "n", "--max-parallel-starts", "0"])
            .expect_err("invalid");
        assert!(e.to_string().contains("--max-parallel-starts"), "{e}");
        assert!(matches!(
            e,
            UsageError::Flag {
                flag: "--max-parallel-starts",
                ..
            }
        ));
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
    fn the_authenticated_port_is_loopback_10250_by_default_and_0_disables_it() {
        let c = config(&["--hostname-override", "n"]).expect("valid");
        let secure = c.secure.expect("enabled by default");
        assert_eq!(secure.address, "127.0.0.1:10250".parse().expect("addr"));
        assert!(!c.read_only_port_logs);
        let c = config(&["--port", "0", "--hostname-override", "n"]).expect("valid");
        assert!(c.secure.is_none());
        let e = config(&[
            "--port",
            "9000",
            "--read-only-port",
            "9000",
            "--hostname-override",
            "n",
        ])
        .expect_err("same port twice");
        assert!(e.to_string().contains("--read-only-port"), "{e}");
    }

    #[test]
    fn invalid_node_names_are_usage_errors() {
        let e = config(&["--hostname-override", "bad_name"]).expect_err("invalid");
        assert!(matches!(
            e,
            UsageError::NodeName(NodeNameError::InvalidOverride { .. })
        ));
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

    #[test]
    fn manifest_url_flags_are_validated_and_repeated_headers_kept_in_order() {
        let c = config(&[
            "--hostname-override",
            "n",
            "--manifest-url",
            "https://example.com/pods.yaml",
            "--manifest-url-header",
            "X-A: 1",
            "--manifest-url-header",
            "X-A:2",
            "--http-check-frequency",
            "500ms",
        ])
        .expect("valid");
        assert_eq!(
            c.manifest_url.as_deref(),
            Some("https://example.com/pods.yaml")
        );
        assert_eq!(
            c.manifest_url_headers,
            vec![("X-A".into(), "1".into()), ("X-A".into(), "2".into())]
        );
        assert_eq!(c.http_check_frequency, Duration::from_millis(500));
        assert_eq!(c.http_timeout, Duration::from_secs(10));
        let d = config(&["--hostname-override", "n"]).expect("valid");
        assert_eq!(d.http_check_frequency, Duration::from_secs(20));
        assert_eq!(d.manifest_url, None);

        for bad in [
            vec!["--manifest-url", "ftp://x/y"],
            vec!["--manifest-url-header", "novalue"],
            vec!["--http-check-frequency", "0s"],
        ] {
            let mut args = vec!["--hostname-override", "n"];
            args.extend(bad.iter().copied());
            let e = config(&args).expect_err("invalid");
            assert!(e.to_string().contains("--"), "{e}");
        }
    }

    #[test]
    fn node_labels_are_the_built_in_ones_plus_the_flags() {
        let c = config(&[
            "--hostname-override",
            "Edge1",
            "--node-labels",
            "disktype=ssd,zone=a",
            "--node-labels",
            "rack=r1",
        ])
        .expect("valid");
        assert_eq!(c.node_labels["kubernetes.io/hostname"], "edge1");
        assert_eq!(c.node_labels["kubernetes.io/os"], "linux");
        assert!(c.node_labels.contains_key("kubernetes.io/arch"));
        assert_eq!(c.node_labels["disktype"], "ssd");
        assert_eq!(c.node_labels["rack"], "r1");
        assert_eq!(c.node().name, "edge1");
        let e = config(&["--hostname-override", "n", "--node-labels", "bad"]).expect_err("bad");
        assert!(e.to_string().contains("--node-labels"), "{e}");
    }
    #[test]
    fn register_with_taints_gives_the_node_its_taints() {
        let c = config(&[
            "--hostname-override",
            "n",
            "--register-with-taints",
            "dedicated=edge:NoSchedule,gpu:NoExecute",
        ])
        .expect("valid");
        let taints: Vec<String> = c.node().taints.iter().map(|t| t.to_string()).collect();
        assert_eq!(taints, ["dedicated=edge:NoSchedule", "gpu:NoExecute"]);
        assert!(config(&["--hostname-override", "n"])
            .expect("valid")
            .node()
            .taints
            .is_empty());
        let e = config(&["--hostname-override", "n", "--register-with-taints", "x=y"])
            .expect_err("no effect");
        assert!(e.to_string().contains("--register-with-taints"), "{e}");
    }
}
