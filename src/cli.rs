//! Command-line interface: the daemon's kubelet-style flags and sub-commands.
//!
//! Only parsing lives here; [`crate::config::Config::from_args`] validates and
//! turns the flags into settings.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// A duration flag value that is not a duration.
#[derive(Debug, thiserror::Error)]
#[error("{reason} (examples: 500ms, 20s, 5m)")]
pub struct DurationError {
    /// The value as given.
    pub value: String,
    pub reason: humantime::DurationError,
}

fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    humantime::parse_duration(s).map_err(|reason| DurationError {
        value: s.to_string(),
        reason,
    })
}

/// A standalone static-pod kubelet: runs the Pods in a manifest directory on
/// Docker, with no API server.
#[derive(Debug, Clone, Parser)]
#[command(name = "rkubelet", version, about, long_about = None, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub daemon: DaemonArgs,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Sub-commands; without one, rkubelet runs the daemon.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Run the daemon (the default when no sub-command is given).
    Run,
    /// Parse, validate and admit manifests against this node without running
    /// anything; prints one verdict per object, exits 1 if any is not OK.
    Validate(ValidateArgs),
    /// Display pods, like `kubectl get pods`.
    Get(GetArgs),
    /// Show a pod's, Deployment's, ReplicaSet's or DaemonSet's details and
    /// events, like `kubectl describe`.
    Describe(DescribeArgs),
    /// Print a container's logs, like `kubectl logs`.
    Logs(LogsArgs),
    /// Show CPU and memory of pods (from /stats/summary), like `kubectl top pods`.
    Top(TopArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell),
    /// e.g. `rkubelet completion bash > /etc/bash_completion.d/rkubelet`.
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff); the package installs it as rkubelet(8).
    #[command(hide = true)]
    Man,
    /// Print a kubeconfig for this node's authenticated port (server, CA,
    /// token): `rkubelet kubeconfig > ~/.kube/config && kubectl get pods`.
    Kubeconfig(KubeconfigArgs),
    /// Restart a pod: its containers are stopped gracefully and brought back
    /// (or, with --recreate, the pod starts afresh with a new sandbox).
    Restart(RestartArgs),
    /// Create a Job from a CronJob now, like `kubectl create job NAME
    /// --from=cronjob/CRONJOB`: `rkubelet create job NAME --from=cronjob/X`.
    Create(CreateArgs),
    /// Run a command in a container, like `kubectl exec` (exits with its code).
    Exec(ExecArgs),
    /// Connect to a container's main process, like `kubectl attach`.
    Attach(StreamArgs),
    /// Forward local ports to a pod, like `kubectl port-forward`.
    PortForward(PortForwardArgs),
    /// Copy files to and from a container, like `kubectl cp` (POD:PATH).
    Cp(CpArgs),
}

/// `rkubelet validate`'s arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct ValidateArgs {
    /// Manifest files, directories (their *.yaml, *.yml, *.json files) or
    /// http(s) URLs.
    #[arg(required = true, value_name = "PATH|URL")]
    pub targets: Vec<String>,

    /// Node name to check against instead of the host name.
    #[arg(long, value_name = "NAME")]
    pub hostname_override: Option<String>,

    /// The node's extra labels, as for the daemon.
    #[arg(long, value_name = "KEY=VALUE,...")]
    pub node_labels: Vec<String>,

    /// Extra header for URL targets, 'Name: Value' (repeatable).
    #[arg(long = "manifest-url-header", value_name = "NAME:VALUE")]
    pub manifest_url_header: Vec<String>,
}

/// `rkubelet kubeconfig`'s arguments: the daemon's own flags.
#[derive(Debug, Clone, clap::Args)]
pub struct KubeconfigArgs {
    /// The daemon's --root-dir (its generated CA and token live there).
    #[arg(long, value_name = "DIR", default_value = "/var/lib/rkubelet")]
    pub root_dir: PathBuf,
    /// The daemon's --address.
    #[arg(long, value_name = "IP", default_value = "127.0.0.1")]
    pub address: IpAddr,
    /// The daemon's --port.
    #[arg(long, value_name = "PORT", default_value_t = 10250)]
    pub port: u16,
    /// The daemon's --token-auth-file, if it runs with one (its first token
    /// is used).
    #[arg(long, value_name = "FILE")]
    pub token_auth_file: Option<PathBuf>,
    /// The CA of the daemon's --tls-cert-file, if it runs with one.
    #[arg(long, value_name = "FILE")]
    pub certificate_authority: Option<PathBuf>,
}

/// How a client command reaches the authenticated port.
#[derive(Debug, Clone, clap::Args)]
pub struct SecureClientArgs {
    /// Kubeconfig for the authenticated port (default: $KUBECONFIG,
    /// ~/.kube/config, else the daemon's files under /var/lib/rkubelet).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
}

/// `rkubelet attach`'s arguments (and `exec`'s, with a command).
#[derive(Debug, Clone, clap::Args)]
pub struct StreamArgs {
    /// The pod, with or without the node suffix.
    pub pod: String,
    /// The container (default: the pod's first).
    #[arg(short = 'c', long)]
    pub container: Option<String>,
    /// Pass stdin to the container.
    #[arg(short = 'i', long)]
    pub stdin: bool,
    /// Stdin is a terminal (raw mode locally, a TTY in the container).
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Namespace of the pod (default: `default`).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    #[command(flatten)]
    pub secure: SecureClientArgs,
}

/// `rkubelet cp`'s arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct CpArgs {
    /// The source: POD:PATH or a local path.
    pub src: String,
    /// The destination: POD:PATH or a local path.
    pub dest: String,
    /// The container (default: the pod's first).
    #[arg(short = 'c', long)]
    pub container: Option<String>,
    /// Namespace of the pod (default: `default`).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    #[command(flatten)]
    pub secure: SecureClientArgs,
}

/// `rkubelet port-forward`'s arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct PortForwardArgs {
    /// The pod, with or without the node suffix (`pod/NAME` too).
    #[arg(value_parser = |s: &str| Ok::<_, String>(s.trim_start_matches("pod/").trim_start_matches("pods/").to_string()))]
    pub pod: String,
    /// LOCAL:REMOTE, or PORT for both (repeatable).
    #[arg(required = true, value_name = "[LOCAL:]REMOTE")]
    pub ports: Vec<String>,
    /// Namespace of the pod (default: `default`).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    #[command(flatten)]
    pub secure: SecureClientArgs,
}

/// `rkubelet exec`'s arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct ExecArgs {
    #[command(flatten)]
    pub stream: StreamArgs,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// `rkubelet create`'s arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct CreateArgs {
    /// What to create: `job`.
    pub resource: String,
    /// The new Job's name.
    pub name: String,
    /// The CronJob whose template the Job runs: `cronjob/NAME`.
    #[arg(long)]
    pub from: String,
    /// Namespace of the CronJob and the Job (default: `default`).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    #[command(flatten)]
    pub secure: SecureClientArgs,
}

/// `rkubelet restart`'s arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct RestartArgs {
    /// The resource type: `pod`, `deployment`, `replicaset` or `daemonset`
    /// (or their short names).
    pub resource: String,
    /// The object's name (a pod's with or without the node suffix).
    pub name: String,
    /// Stop and remove every container and the sandbox; the pod starts
    /// afresh (restart counts begin again at 0).
    #[arg(long)]
    pub recreate: bool,
    /// Namespace of the pod (default: `default`).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    #[command(flatten)]
    pub secure: SecureClientArgs,
}

/// How a client command reaches the daemon.
#[derive(Debug, Clone, clap::Args)]
pub struct ClientArgs {
    /// The daemon's read-only API.
    #[arg(
        long,
        env = "RKUBELET_SERVER",
        default_value = "http://127.0.0.1:10255"
    )]
    pub server: String,

    /// Namespace of the pods (default: `default`).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
}

/// `get` output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Wide,
    Json,
    Yaml,
    Name,
}

#[derive(Debug, Clone, clap::Args)]
pub struct GetArgs {
    /// The resource type: `pods` (`po`), `events` (`ev`), `nodes` (`no`),
    /// `namespaces` (`ns`), `configmaps` (`cm`), `secrets`, `deployments`
    /// (`deploy`), `replicasets` (`rs`), `daemonsets` (`ds`) or `jobs`.
    pub resource: String,
    /// One object (a pod with or without the node suffix).
    pub name: Option<String>,
    /// Output format.
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<Output>,
    /// Pods of every namespace.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// A label selector, as kubectl's (`app=web`, `env in (a,b)`, `!canary`).
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// A field selector, as kubectl's (`status.phase=Running`).
    #[arg(long)]
    pub field_selector: Option<String>,
    /// After listing, print each change as it happens (until interrupted).
    #[arg(short = 'w', long)]
    pub watch: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Clone, clap::Args)]
pub struct TopArgs {
    /// The resource type: `pods`.
    pub resource: String,
    /// Pods of every namespace.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Clone, clap::Args)]
pub struct DescribeArgs {
    /// The resource type: `pod`, `deployment`, `replicaset` or `daemonset`
    /// (or their short names).
    pub resource: String,
    /// The object's name (a pod's with or without the node suffix).
    pub name: String,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Clone, clap::Args)]
pub struct LogsArgs {
    /// The pod, with or without the node suffix.
    pub pod: String,
    /// The container (required when the pod has several).
    #[arg(short = 'c', long)]
    pub container: Option<String>,
    /// Keep streaming new output.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// The previous (dead) instance of the container.
    #[arg(short = 'p', long)]
    pub previous: bool,
    /// Only the last N lines.
    #[arg(long)]
    pub tail: Option<i64>,
    /// Prefix each line with its timestamp.
    #[arg(long)]
    pub timestamps: bool,
    /// Only lines newer than this duration (5s, 2m, 1h).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration, conflicts_with = "since_time")]
    pub since: Option<std::time::Duration>,
    /// Only lines written at or after this RFC 3339 time.
    #[arg(long, value_name = "TIME")]
    pub since_time: Option<String>,
    /// At most this many bytes of log.
    #[arg(long, value_name = "BYTES")]
    pub limit_bytes: Option<i64>,
    #[command(flatten)]
    pub client: ClientArgs,
    /// Used when the read-only port serves no logs (its default).
    #[command(flatten)]
    pub secure: SecureClientArgs,
}

/// The authenticated port's flags, named like the kubelet's.
#[derive(Debug, Clone, clap::Args)]
pub struct SecureArgs {
    /// Port of the authenticated HTTPS API (the read API plus logs, exec,
    /// attach, port-forward, restart); 0 disables it.
    #[arg(long, value_name = "PORT", default_value_t = 10250)]
    pub port: u16,

    /// Serving certificate (PEM, chain allowed) of the authenticated port.
    /// Default: a self-signed one generated under --root-dir/pki.
    #[arg(long, value_name = "FILE", requires = "tls_private_key_file")]
    pub tls_cert_file: Option<PathBuf>,

    /// The key of --tls-cert-file (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert_file")]
    pub tls_private_key_file: Option<PathBuf>,

    /// Accept client certificates signed by this CA (PEM); the user is the
    /// certificate's CN.
    #[arg(long, value_name = "FILE")]
    pub client_ca_file: Option<PathBuf>,

    /// Bearer tokens, one per line: token,user,uid[,"group1,group2"].
    /// Default: a token generated under --root-dir/auth/tokens.csv (0600).
    #[arg(long, value_name = "FILE")]
    pub token_auth_file: Option<PathBuf>,
}

/// The daemon's flags, named like the kubelet's.
#[derive(Debug, Clone, clap::Args)]
pub struct DaemonArgs {
    /// Directory of static pod manifests (*.yaml, *.yml, *.json; not recursive), or one manifest file.
    #[arg(
        long = "config",
        visible_alias = "pod-manifest-path",
        value_name = "DIR",
        default_value = "/etc/kubelet.d",
        env = "RKUBELET_CONFIG"
    )]
    pub config: PathBuf,

    /// How often the manifest directory is fully rescanned (inotify reacts at once).
    #[arg(long, value_name = "DURATION", default_value = "20s", value_parser = parse_duration)]
    pub file_check_frequency: Duration,

    /// URL (http or https) to fetch more pod manifests from, besides --config.
    /// For credentials prefer --manifest-url-header (e.g. 'Authorization:
    /// Bearer …'): a password in the URL (https://user:pass@host/…) works
    /// and is redacted everywhere rkubelet shows the URL, but stays visible
    /// in the process's command line.
    #[arg(long, value_name = "URL")]
    pub manifest_url: Option<String>,

    /// Extra header sent with every --manifest-url request, 'Name: Value'
    /// (repeatable; a name given twice sends both values).
    #[arg(long = "manifest-url-header", value_name = "NAME:VALUE")]
    pub manifest_url_header: Vec<String>,

    /// How often --manifest-url is fetched.
    #[arg(long, value_name = "DURATION", default_value = "20s", value_parser = parse_duration)]
    pub http_check_frequency: Duration,

    /// Time limit of one --manifest-url fetch.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration,
          hide = true)]
    pub http_timeout: Duration,

    /// Labels of this node, checked by pods' nodeSelector and node affinity
    /// (repeatable). kubernetes.io/hostname, /os and /arch are built in.
    #[arg(long, value_name = "KEY=VALUE,...")]
    pub node_labels: Vec<String>,

    /// Taints of this node, as the kubelet's flag (repeatable):
    /// KEY[=VALUE]:EFFECT with effect NoSchedule, PreferNoSchedule or
    /// NoExecute. DaemonSet pods must tolerate NoSchedule/NoExecute ones;
    /// other controller pods NoExecute ones (static pods are exempt).
    #[arg(long, value_name = "KEY[=VALUE]:EFFECT,...")]
    pub register_with_taints: Vec<String>,

    /// Node name to use instead of the host name (lower-cased).
    #[arg(long, value_name = "NAME")]
    pub hostname_override: Option<String>,

    /// Directory for pod volumes and state.
    #[arg(long, value_name = "DIR", default_value = "/var/lib/rkubelet")]
    pub root_dir: PathBuf,

    /// Docker daemon endpoint (unix:// or tcp://). Default: $DOCKER_HOST, else
    /// unix:///var/run/docker.sock.
    #[arg(long, value_name = "URL")]
    pub docker_endpoint: Option<String>,

    /// The pause image holding each pod's namespaces. When absent locally,
    /// rkubelet provisions its own (no registry needed).
    #[arg(long, value_name = "IMAGE", default_value = crate::runtime::pause::DEFAULT_IMAGE)]
    pub pod_infra_container_image: String,

    /// Address the read-only and authenticated APIs listen on.
    #[arg(long, value_name = "IP", default_value = "127.0.0.1")]
    pub address: IpAddr,

    /// Port of the read-only API (/healthz, /pods, /manifests, the read-only
    /// Kubernetes API; no exec, no logs); 0 disables it.
    #[arg(long, value_name = "PORT", default_value_t = 10255)]
    pub read_only_port: u16,

    /// Also serve container logs on the read-only port (unauthenticated:
    /// any local user can read them). Off by default, as with the kubelet.
    #[arg(long)]
    pub read_only_port_logs: bool,

    #[command(flatten)]
    pub secure: SecureArgs,

    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log verbosity, as the kubelet's: 0-1 info, 2-3 more rkubelet detail,
    /// 4-5 debug, 6+ trace including dependencies. RKUBELET_LOG (a tracing
    /// filter such as `info,rkubelet=debug`) overrides it.
    #[arg(short = 'v', long = "v", value_name = "LEVEL", default_value_t = 0)]
    pub verbosity: u8,

    /// Crash-loop backoff: the first restart after a crash is immediate, the
    /// second waits this long, each later one twice the one before.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub crash_loop_backoff_base: Duration,

    /// Cap of the crash-loop backoff; a container that then runs longer than
    /// twice this is forgiven (its next restart is immediate again).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    pub crash_loop_backoff_max: Duration,

    /// Most container creations + starts in flight at once, over all pods
    /// (Docker's starts are CPU-bound; more in flight only adds contention).
    /// Default: twice the number of CPUs.
    #[arg(long, value_name = "N")]
    pub max_parallel_starts: Option<usize>,

    /// Most pods being taken down at once, over all pods (stops, network
    /// teardown and removal are CPU work inside Docker). A pod whose
    /// containers take more than a second to exit gives its slot back while
    /// they do. Default: twice --max-parallel-starts.
    #[arg(long, value_name = "N")]
    pub max_parallel_teardowns: Option<usize>,

    /// Registry credentials of the node (a Docker config.json with "auths"),
    /// used when a pod's imagePullSecrets have none for the image's registry.
    /// Default: $HOME/.docker/config.json, else /root/.docker/config.json.
    #[arg(long, value_name = "FILE")]
    pub image_credential_file: Option<PathBuf>,

    /// Pull one image at a time (as the kubelet); false pulls in parallel.
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub serialize_image_pulls: bool,

    /// Least time between two progress reports of an image pull (tests
    /// shorten it).
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_duration,
          hide = true)]
    pub image_pull_progress_period: Duration,

    /// Most pods this node runs at once, as the kubelet's --max-pods; pods
    /// beyond it stay Pending ("Too many pods") until others go.
    #[arg(long, value_name = "N", default_value_t = 110)]
    pub max_pods: usize,

    /// How often all containers are relisted as a safety net for missed events.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration,
          hide = true)]
    pub relist_period: Duration,
}
