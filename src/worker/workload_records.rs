//! The one small file of workload facts Docker labels cannot hold.
//!
//! Owns `<root-dir>/workloads.json`: per served workload object its
//! `metadata.generation` with the fingerprint of the spec it counts, and
//! per Deployment the pod templates of its ReplicaSets that still have pods
//! (plus the current one), by `pod-template-hash`. With them a restarted
//! rkubelet counts generations on where it stood (also after a change that
//! made no pod, such as a scale-down or `paused`) and rebuilds the pods of
//! an older template exactly, so a rollout interrupted by a crash and a
//! manifest edit goes on by the rolling-update rules instead of dropping
//! the old pods at once. What the file holds is decided by
//! [`super::workloads::Controllers::records`]; this module reads and writes
//! it: written atomically (temporary file, `fsync`, rename), so a crash
//! leaves the old or the new content; a missing or unreadable file counts
//! as empty (the pods' Docker labels still give the generations).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::PodTemplateSpec;

/// The file's name under `--root-dir`.
pub const FILE: &str = "workloads.json";

/// What rkubelet keeps about its workloads across restarts.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Records {
    /// By served object key (`Kind/namespace/name`): the fingerprint of the
    /// spec its generation was counted for, and the generation.
    #[serde(default)]
    pub generations: BTreeMap<String, (String, i64)>,
    /// By Deployment key (`Deployment/namespace/name`): the templates of
    /// its ReplicaSets by `pod-template-hash`.
    #[serde(default)]
    pub templates: BTreeMap<String, BTreeMap<String, PodTemplateSpec>>,
}

/// Where the records of the rkubelet with `root_dir` live.
pub fn path(root_dir: &Path) -> PathBuf {
    root_dir.join(FILE)
}

/// Reads the records; none when the file does not exist. A file that does
/// not parse is an error (the caller logs it and starts empty).
pub fn load(root_dir: &Path) -> Result<Records, String> {
    let path = path(root_dir);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| format!("{}: not valid workload records: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Records::default()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Replaces the records atomically.
pub fn save(root_dir: &Path, records: &Records) -> std::io::Result<()> {
    let path = path(root_dir);
    let tmp = root_dir.join(format!(".{FILE}.tmp"));
    std::fs::create_dir_all(root_dir)?;
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&serde_json::to_vec(records).map_err(std::io::Error::other)?)?;
    f.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    // The rename itself survives a crash once the directory is synced.
    std::fs::File::open(root_dir).and_then(|d| d.sync_all())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_a_missing_file_is_empty() {
        let dir = tempfile::tempdir().expect("tmp");
        assert_eq!(load(dir.path()), Ok(Records::default()));
        let template: PodTemplateSpec = serde_json::from_value(serde_json::json!({
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "i:1"}]}
        }))
        .expect("template");
        let records = Records {
            generations: [("Deployment/default/web".into(), ("ab12".into(), 4))].into(),
            templates: [(
                "Deployment/default/web".into(),
                [("h1".to_string(), template.clone())].into(),
            )]
            .into(),
        };
        save(dir.path(), &records).expect("save");
        let back = load(dir.path()).expect("load");
        assert_eq!(back, records);
        assert_eq!(
            serde_json::to_string(&back.templates["Deployment/default/web"]["h1"]).ok(),
            serde_json::to_string(&template).ok(),
            "the template serializes as before (its pods' UIDs hash it)"
        );
        std::fs::write(path(dir.path()), "{junk").expect("write");
        let err = load(dir.path()).expect_err("junk");
        assert!(
            err.contains("workloads.json: not valid workload records"),
            "{err}"
        );
    }
}
