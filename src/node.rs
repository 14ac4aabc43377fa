//! This node: its name, labels, architecture, capacity and host IP.
//!
//! Owns what rkubelet knows about the machine it runs on: the node name
//! (`--hostname-override`, else the host name, lower-cased and checked to be
//! a DNS-1123 subdomain), the built-in labels (`kubernetes.io/hostname`,
//! `kubernetes.io/os`, `kubernetes.io/arch` in Go's naming) plus
//! `--node-labels`, the capacity the downward API falls back to (CPUs,
//! `MemTotal`, the root filesystem's size), the primary IPv4 address, the
//! kernel version and the OS image (`nodeInfo` of the node object).
//! The readers here do the IO; [`NodeInfo`] and [`NodeCapacity`] are the
//! data the pure core receives. Admission predicates live in
//! [`crate::admission`].

use std::collections::BTreeMap;
use std::sync::OnceLock;

use crate::k8s::names::{self, LabelError};
pub use crate::pod::downward::NodeCapacity;

/// The built-in label holding the node name.
pub const LABEL_HOSTNAME: &str = "kubernetes.io/hostname";
/// The built-in label holding the operating system (`linux`).
pub const LABEL_OS: &str = "kubernetes.io/os";
/// The built-in label holding the CPU architecture in Go's naming (`amd64`, …).
pub const LABEL_ARCH: &str = "kubernetes.io/arch";

/// Why the node name cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeNameError {
    /// The host name cannot be read.
    #[error("cannot read the host name ({reason}); pass --hostname-override")]
    Unreadable { reason: String },
    /// The host name is not UTF-8.
    #[error("the host name is not UTF-8; pass --hostname-override")]
    NotUtf8,
    /// The (lower-cased) host name is not a DNS-1123 subdomain.
    #[error(
        "host name {name:?} (lower-cased) is not a valid DNS-1123 subdomain; \
         pass --hostname-override"
    )]
    Invalid { name: String },
    /// The (lower-cased) `--hostname-override` is not a DNS-1123 subdomain.
    #[error(
        "--hostname-override {given:?}: {name:?} (lower-cased) is not a valid DNS-1123 \
         subdomain (lower-case letters, digits, '-' and '.')"
    )]
    InvalidOverride { given: String, name: String },
}

/// The machine's host name.
///
/// Fails when it cannot be read or is not UTF-8.
pub fn host_name() -> Result<String, NodeNameError> {
    nix::unistd::gethostname()
        .map_err(|e| NodeNameError::Unreadable {
            reason: e.to_string(),
        })?
        .into_string()
        .map_err(|_| NodeNameError::NotUtf8)
}

/// The node name: `--hostname-override`, else the host name, lower-cased.
///
/// Fails when it is not a DNS-1123 subdomain or the host name is unreadable.
pub fn resolve_name(hostname_override: Option<&str>) -> Result<String, NodeNameError> {
    if let Some(given) = hostname_override {
        let name = given.trim().to_lowercase();
        if !names::is_dns1123_subdomain(&name) {
            let given = given.to_string();
            return Err(NodeNameError::InvalidOverride { given, name });
        }
        return Ok(name);
    }
    let name = host_name()?.trim().to_lowercase();
    if !names::is_dns1123_subdomain(&name) {
        return Err(NodeNameError::Invalid { name });
    }
    Ok(name)
}

/// Go's name (`GOARCH`) for a Rust target architecture
/// (`std::env::consts::ARCH`), which is what `kubernetes.io/arch` holds.
pub fn go_arch(rust_arch: &str, little_endian: bool) -> String {
    match rust_arch {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "arm" => "arm",
        "powerpc64" if little_endian => "ppc64le",
        "powerpc64" => "ppc64",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        "loongarch64" => "loong64",
        "mips64" if little_endian => "mips64le",
        "mips64" => "mips64",
        "mips" if little_endian => "mipsle",
        other => other,
    }
    .to_string()
}

/// This machine's `kubernetes.io/arch`.
pub fn host_arch() -> String {
    go_arch(std::env::consts::ARCH, cfg!(target_endian = "little"))
}

/// What admission needs to know about this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    /// The node name (lower-cased).
    pub name: String,
    /// Built-in labels plus `--node-labels`.
    pub labels: BTreeMap<String, String>,
    /// `--register-with-taints` (none by default).
    pub taints: Vec<crate::k8s::taints::NodeTaint>,
}

impl NodeInfo {
    /// A node with only the built-in labels.
    pub fn new(name: &str) -> NodeInfo {
        NodeInfo {
            name: name.to_string(),
            labels: builtin_labels(name),
            taints: Vec::new(),
        }
    }

    /// A node with the built-in labels plus `extra` (which must not set a
    /// built-in one; [`parse_labels`] ensures that).
    pub fn with_labels(name: &str, extra: &BTreeMap<String, String>) -> NodeInfo {
        let mut node = NodeInfo::new(name);
        node.labels
            .extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
        node
    }
}

/// `kubernetes.io/hostname`, `kubernetes.io/os` and `kubernetes.io/arch`.
pub fn builtin_labels(node_name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_HOSTNAME.to_string(), node_name.to_string()),
        (LABEL_OS.to_string(), std::env::consts::OS.to_string()),
        (LABEL_ARCH.to_string(), host_arch()),
    ])
}

/// A `--node-labels` entry rkubelet refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeLabelError {
    /// An entry without `=`.
    #[error("--node-labels: {pair:?} is not key=value (example: disktype=ssd,zone=a)")]
    NotKeyValue { pair: String },
    /// An invalid key or value.
    #[error("--node-labels: {0}")]
    Invalid(#[from] LabelError),
    /// One of the labels the node sets itself.
    #[error(
        "--node-labels: {key} is set by rkubelet itself (hostname from \
         --hostname-override, os and arch from the machine)"
    )]
    BuiltIn { key: String },
    /// A key given twice.
    #[error("--node-labels: {key} is given twice")]
    Duplicate { key: String },
}

/// Parses `--node-labels k=v,k2=v2` (the flag may be repeated: pass every
/// occurrence).
///
/// Fails on a malformed pair, an invalid key or value, a key given twice, or
/// a built-in label (those come from the node itself).
pub fn parse_labels<S: AsRef<str>>(
    flags: &[S],
) -> Result<BTreeMap<String, String>, NodeLabelError> {
    let mut labels = BTreeMap::new();
    for flag in flags {
        for pair in flag.as_ref().split(',').map(str::trim) {
            if pair.is_empty() {
                continue;
            }
            let Some((key, value)) = pair.split_once('=') else {
                return Err(NodeLabelError::NotKeyValue {
                    pair: pair.to_string(),
                });
            };
            let (key, value) = (key.trim(), value.trim());
            names::check_label_key(key)?;
            names::check_label_value(key, value)?;
            if [LABEL_HOSTNAME, LABEL_OS, LABEL_ARCH].contains(&key) {
                return Err(NodeLabelError::BuiltIn {
                    key: key.to_string(),
                });
            }
            if labels.insert(key.to_string(), value.to_string()).is_some() {
                return Err(NodeLabelError::Duplicate {
                    key: key.to_string(),
                });
            }
        }
    }
    Ok(labels)
}

/// This machine's CPUs, memory (`MemTotal`) and root filesystem size, read
/// once. Unreadable values fall back to [`NodeCapacity::default`].
pub fn capacity() -> NodeCapacity {
    static CAPACITY: OnceLock<NodeCapacity> = OnceLock::new();
    *CAPACITY.get_or_init(|| {
        let fallback = NodeCapacity::default();
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get() as i64)
            .unwrap_or(1);
        let memory = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| mem_total_bytes(&m))
            .unwrap_or(fallback.memory_bytes);
        let storage = nix::sys::statvfs::statvfs("/")
            .map(|s| (s.blocks() as i64).saturating_mul(s.fragment_size() as i64))
            .unwrap_or(fallback.ephemeral_storage_bytes);
        NodeCapacity {
            cpu_milli: cpus * 1000,
            memory_bytes: memory,
            ephemeral_storage_bytes: storage,
        }
    })
}

/// `MemTotal` of a `/proc/meminfo` text, in bytes.
fn mem_total_bytes(meminfo: &str) -> Option<i64> {
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
        .map(|kb| kb * 1024)
}

/// The node's primary IPv4 address (the default route's interface), else
/// loopback.
pub fn host_ip() -> String {
    let route = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    let iface = route
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.len() > 2 && f[1] == "00000000")
        .map(|f| f[0].to_string());
    if let (Some(iface), Ok(addrs)) = (iface, nix::ifaddrs::getifaddrs()) {
        for a in addrs {
            if a.interface_name != iface {
                continue;
            }
            if let Some(sin) = a.address.as_ref().and_then(|s| s.as_sockaddr_in()) {
                return sin.ip().to_string();
            }
        }
    }
    "127.0.0.1".to_string()
}

/// The running kernel's release (`uname -r`), empty when unreadable.
pub fn kernel_version() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The operating system's `PRETTY_NAME` (`/etc/os-release`), else `Linux`.
pub fn os_image() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| pretty_name(&t))
        .unwrap_or_else(|| "Linux".into())
}

/// `PRETTY_NAME` of an os-release text, unquoted.
fn pretty_name(os_release: &str) -> Option<String> {
    os_release
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim().trim_matches('"').trim_matches('\'').to_string())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_os_image_is_the_unquoted_pretty_name() {
        let text = "NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n";
        assert_eq!(
            pretty_name(text).as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
        assert_eq!(pretty_name("NAME=x\n"), None);
    }

    #[test]
    fn built_in_labels_are_hostname_os_and_go_arch() {
        let n = NodeInfo::new("edge-7");
        assert_eq!(n.labels[LABEL_HOSTNAME], "edge-7");
        assert_eq!(n.labels[LABEL_OS], "linux");
        assert_eq!(n.labels[LABEL_ARCH], host_arch());
        assert_eq!(n.labels.len(), 3);
    }

    #[test]
    fn rust_architectures_map_to_go_names() {
        assert_eq!(go_arch("x86_64", true), "amd64");
        assert_eq!(go_arch("aarch64", true), "arm64");
        assert_eq!(go_arch("x86", true), "386");
        assert_eq!(go_arch("arm", true), "arm");
        assert_eq!(go_arch("powerpc64", true), "ppc64le");
        assert_eq!(go_arch("powerpc64", false), "ppc64");
        assert_eq!(go_arch("s390x", false), "s390x");
        assert_eq!(go_arch("riscv64", true), "riscv64");
        assert_eq!(go_arch("loongarch64", true), "loong64");
    }

    #[test]
    fn node_labels_parse_from_comma_separated_repeatable_flags() {
        let l =
            parse_labels(&["disktype=ssd, zone=a", "example.com/rack=r1,empty="]).expect("valid");
        assert_eq!(l["disktype"], "ssd");
        assert_eq!(l["zone"], "a");
        assert_eq!(l["example.com/rack"], "r1");
        assert_eq!(l["empty"], "");
        assert_eq!(parse_labels::<&str>(&[]).expect("valid").len(), 0);
    }

    #[test]
    fn bad_node_labels_are_refused_with_the_flag_named() {
        for bad in [
            "noequals",
            "=v",
            "a b=c",
            "Bad_Prefix.com/x=y",
            "k=bad value",
            "k=-dash",
            "kubernetes.io/hostname=x",
            "kubernetes.io/arch=arm64",
            "a=1,a=2",
        ] {
            let e = parse_labels(&[bad]).expect_err(bad).to_string();
            assert!(e.starts_with("--node-labels"), "{bad}: {e}");
        }
        assert_eq!(
            parse_labels(&["a=1,a=2"]),
            Err(NodeLabelError::Duplicate { key: "a".into() })
        );
    }

    #[test]
    fn node_names_are_lower_cased_dns_subdomains() {
        assert_eq!(resolve_name(Some(" Node1 ")), Ok("node1".into()));
        let e = resolve_name(Some("UX_Node")).expect_err("invalid");
        assert_eq!(
            e,
            NodeNameError::InvalidOverride {
                given: "UX_Node".into(),
                name: "ux_node".into()
            }
        );
    }

    /// A bad `--hostname-override` is named as given and lower-cased; the
    /// message does not ask for the flag that was passed.
    #[test]
    fn a_bad_override_says_its_lower_cased_value_is_not_a_subdomain() {
        let e = resolve_name(Some("UX_Node")).expect_err("invalid");
        let message = e.to_string();
        assert!(!message.contains("pass --hostname-override"), "{message}");
        assert!(message.contains("\"ux_node\" (lower-cased)"), "{message}");
        assert!(message.contains("DNS-1123 subdomain"), "{message}");
        let bad_host = NodeNameError::Invalid {
            name: "my_host".into(),
        };
        assert!(bad_host.to_string().contains("pass --hostname-override"));
    }

    #[test]
    fn mem_total_is_read_in_bytes() {
        let meminfo = "MemTotal:       16318412 kB\nMemFree:         1000 kB\n";
        assert_eq!(mem_total_bytes(meminfo), Some(16318412 * 1024));
        assert_eq!(mem_total_bytes("nothing"), None);
    }
}
