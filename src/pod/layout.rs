//! Every path under `--root-dir/pods`, in one place.
//!
//! ```text
//! <root-dir>/pods/<uid>/                                     pod_dir
//!   volumes/kubernetes.io~<plugin>/<volume>/                 volume_dir
//!   etc-hosts                                                hosts_file_path
//!   probe-results.json                                       probe_results_path
//!   containers/<container>/<restartCount>/termination-log    termination_log_path
//! ```
//!
//! Pure path arithmetic: creating, writing and removing these is the
//! worker's (`worker::volumes`, `worker::pod_worker`, `worker::manager`).

use std::path::{Path, PathBuf};

/// The directory holding one directory per pod (named by UID).
pub fn pods_dir(root_dir: &Path) -> PathBuf {
    root_dir.join("pods")
}

/// Directory of a pod's volumes and state under the root dir.
pub fn pod_dir(root_dir: &Path, uid: &str) -> PathBuf {
    pods_dir(root_dir).join(uid)
}

/// Directory of volume `name` handled by `plugin` (`empty-dir`, `configmap`…).
pub fn volume_dir(pod_dir: &Path, plugin: &str, name: &str) -> PathBuf {
    pod_dir
        .join("volumes")
        .join(format!("kubernetes.io~{plugin}"))
        .join(name)
}

/// The pod's managed hosts file.
pub fn hosts_file_path(pod_dir: &Path) -> PathBuf {
    pod_dir.join("etc-hosts")
}

/// The startup and readiness results of the pod's running containers, kept
/// so an rkubelet restart does not reset them.
pub fn probe_results_path(pod_dir: &Path) -> PathBuf {
    pod_dir.join("probe-results.json")
}

/// The directory of one container's instances (one subdirectory per
/// restart count).
pub fn container_dir(pod_dir: &Path, container: &str) -> PathBuf {
    pod_dir.join("containers").join(container)
}

/// Host file mounted at a container instance's `terminationMessagePath`:
/// `<pod_dir>/containers/<container>/<restart_count>/termination-log`.
pub fn termination_log_path(pod_dir: &Path, container: &str, restart_count: u32) -> PathBuf {
    container_dir(pod_dir, container)
        .join(restart_count.to_string())
        .join("termination-log")
}

/// The restart count a container gets when it has no instance left (its
/// pod's sandbox was recreated): one above the highest instance directory
/// under [`container_dir`] (`entries` are the directory's names), or 0 when
/// there is none. The kubelet derives it from the log directory the same way.
pub fn restart_count_after(entries: impl IntoIterator<Item = String>) -> u32 {
    entries
        .into_iter()
        .filter_map(|n| n.parse::<u32>().ok())
        .map(|n| n.saturating_add(1))
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_is_below_the_pod_directory() {
        let pod = pod_dir(Path::new("/var/lib/rkubelet"), "u1");
        assert_eq!(pod, Path::new("/var/lib/rkubelet/pods/u1"));
        assert_eq!(
            volume_dir(&pod, "empty-dir", "data"),
            Path::new("/var/lib/rkubelet/pods/u1/volumes/kubernetes.io~empty-dir/data")
        );
        assert_eq!(
            hosts_file_path(&pod),
            Path::new("/var/lib/rkubelet/pods/u1/etc-hosts")
        );
    }

    #[test]
    fn the_termination_log_path_is_per_container_instance() {
        let p = termination_log_path(Path::new("/r/pods/u"), "app", 3);
        assert_eq!(p, Path::new("/r/pods/u/containers/app/3/termination-log"));
        assert!(p.starts_with(container_dir(Path::new("/r/pods/u"), "app")));
    }

    #[test]
    fn a_recreated_container_counts_on_from_its_highest_instance_directory() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(restart_count_after(names(&[])), 0);
        assert_eq!(restart_count_after(names(&["3", "4", "x", ".tmp"])), 5);
        assert_eq!(restart_count_after(names(&["0"])), 1);
    }
}
