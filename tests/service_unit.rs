//! The systemd unit (`systemd/rkubelet.service`): `systemd-analyze verify`
//! accepts it, it is `Type=notify` with a watchdog and an environment file,
//! and `systemd-analyze security` rates its hardening at most 5.0 (README,
//! "Running as a service", records the score).

use std::path::Path;
use std::process::Command;

fn unit() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/rkubelet.service");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn systemd_analyze(args: &[&str]) -> (bool, String) {
    let out = Command::new("systemd-analyze")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run systemd-analyze ({e}): install Debian's systemd (scripts/test does)")
        });
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// The unit with ExecStart pointing at the freshly built binary, in a temp
/// dir (verify checks that the command exists).
fn unit_copy() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = unit().replace("/usr/bin/rkubelet", env!("CARGO_BIN_EXE_rkubelet"));
    let path = dir.path().join("rkubelet.service");
    std::fs::write(&path, text).expect("write unit");
    (dir, path.display().to_string())
}

#[test]
fn systemd_analyze_verify_accepts_the_unit_and_finds_its_man_page() {
    let (dir, path) = unit_copy();
    // The man page the unit's Documentation= names, as the package installs it.
    let man8 = dir.path().join("man/man8");
    std::fs::create_dir_all(&man8).expect("man dir");
    let page = Command::new(env!("CARGO_BIN_EXE_rkubelet"))
        .arg("man")
        .output()
        .expect("rkubelet man");
    assert!(page.status.success());
    std::fs::write(man8.join("rkubelet.8"), &page.stdout).expect("write man page");
    let out = Command::new("systemd-analyze")
        .args(["verify", &path])
        .env("MANPATH", dir.path().join("man"))
        .output()
        .expect("systemd-analyze (Debian package systemd; scripts/test installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.trim().is_empty(),
        "systemd-analyze verify:\n{text}"
    );
}

#[test]
fn the_unit_is_type_notify_with_a_watchdog_and_an_optional_environment_file() {
    let unit = unit();
    let has = |line: &str| unit.lines().any(|l| l.trim() == line);
    assert!(has("Type=notify"), "{unit}");
    assert!(has("NotifyAccess=main"), "{unit}");
    assert!(
        unit.lines().any(|l| l.starts_with("WatchdogSec=")),
        "{unit}"
    );
    assert!(has("EnvironmentFile=-/etc/default/rkubelet"), "{unit}");
    assert!(
        unit.lines().any(
            |l| l.starts_with("ExecStart=/usr/bin/rkubelet ") && l.ends_with(" $RKUBELET_ARGS")
        ),
        "{unit}"
    );
    // Stopping rkubelet must not kill the pods' containers.
    assert!(has("KillMode=process"), "{unit}");
}

#[test]
fn systemd_analyze_security_rates_the_unit_at_most_5() {
    let (_dir, path) = unit_copy();
    let (_, out) = systemd_analyze(&["security", "--offline=true", "--no-pager", &path]);
    let score: f64 = out
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for rkubelet.service:")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no overall exposure level in:\n{out}"));
    assert!(score <= 5.0, "exposure {score} > 5.0:\n{out}");
}
