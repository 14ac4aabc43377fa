//! The Debian package: `packaging/build-deb` builds it from the test binary,
//! its contents are what an operator needs, its maintainer scripts enable
//! but never start the service and stop it without killing pods, and
//! `lintian` reports nothing (the remaining tags are overridden with reasons
//! in `packaging/lintian-overrides`).

use std::path::{Path, PathBuf};
use std::process::Command;

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Builds the .deb into a temp dir; (dir, path of the .deb).
fn build() -> (tempfile::TempDir, PathBuf) {
    let out = tempfile::tempdir().expect("tempdir");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    run(Command::new(repo.join("packaging/build-deb"))
        .current_dir(repo)
        .env("RKUBELET_BIN", env!("CARGO_BIN_EXE_rkubelet"))
        .env("RKUBELET_DEB_OUT", out.path()));
    let deb = std::fs::read_dir(out.path())
        .expect("read out dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .expect("build-deb made a .deb");
    (out, deb)
}

fn control_file(deb: &Path, name: &str) -> String {
    run(Command::new("dpkg-deb").arg("--info").arg(deb).arg(name))
}

#[test]
fn the_deb_carries_binary_unit_defaults_man_page_completions_and_docs_and_lintian_is_clean() {
    let (_dir, deb) = build();
    let contents = run(Command::new("dpkg-deb").arg("--contents").arg(&deb));
    for path in [
        "./usr/bin/rkubelet",
        "./lib/systemd/system/rkubelet.service",
        "./etc/default/rkubelet",
        "./etc/kubelet.d/README",
        "./usr/share/man/man8/rkubelet.8.gz",
        "./usr/share/bash-completion/completions/rkubelet",
        "./usr/share/zsh/vendor-completions/_rkubelet",
        "./usr/share/fish/vendor_completions.d/rkubelet.fish",
        "./usr/share/doc/rkubelet/copyright",
        "./usr/share/doc/rkubelet/changelog.gz",
        "./usr/share/doc/rkubelet/examples/static-web.yaml",
        "./usr/share/lintian/overrides/rkubelet",
    ] {
        assert!(
            contents.lines().any(|l| l.ends_with(path)),
            "{path} missing from the package:\n{contents}"
        );
    }
    // Nothing in /etc/kubelet.d that rkubelet would read as a manifest.
    assert!(!contents
        .lines()
        .any(|l| l.contains("./etc/kubelet.d/") && (l.ends_with(".yaml") || l.ends_with(".json"))));

    let conffiles = control_file(&deb, "conffiles");
    assert!(conffiles.contains("/etc/default/rkubelet"), "{conffiles}");
    let control = control_file(&deb, "control");
    assert!(control.contains("Depends: libc6"), "{control}");
    assert!(control.contains("docker.io | docker-ce"), "{control}");

    // Install enables and never starts; removal stops (pods stay: KillMode).
    let postinst = control_file(&deb, "postinst");
    assert!(
        postinst.contains("deb-systemd-helper enable rkubelet.service"),
        "{postinst}"
    );
    let starts = postinst
        .lines()
        .filter(|l| !l.trim_start().starts_with("echo"))
        .any(|l| l.contains(" start rkubelet") || l.contains("--now"));
    assert!(!starts, "postinst starts the service:\n{postinst}");
    let prerm = control_file(&deb, "prerm");
    assert!(prerm.contains("stop rkubelet.service"), "{prerm}");
    let unit_dir = tempfile::tempdir().expect("tempdir");
    run(Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(unit_dir.path()));
    let unit = std::fs::read_to_string(unit_dir.path().join("lib/systemd/system/rkubelet.service"))
        .expect("unit in the package");
    assert!(unit.lines().any(|l| l == "KillMode=process"));
    let defaults =
        std::fs::read_to_string(unit_dir.path().join("etc/default/rkubelet")).expect("defaults");
    assert!(
        defaults.lines().any(|l| l == "RKUBELET_ARGS=\"\""),
        "{defaults}"
    );
    // The packaged binary prints the same completions as `rkubelet completion bash`.
    let packaged = std::fs::read_to_string(
        unit_dir
            .path()
            .join("usr/share/bash-completion/completions/rkubelet"),
    )
    .expect("bash completion");
    let printed = run(Command::new(env!("CARGO_BIN_EXE_rkubelet")).args(["completion", "bash"]));
    assert_eq!(packaged, printed);
    // The man page is a real roff page for section 8.
    let man = run(Command::new("sh").arg("-c").arg(format!(
        "gzip -dc {}",
        unit_dir
            .path()
            .join("usr/share/man/man8/rkubelet.8.gz")
            .display()
    )));
    assert!(man.contains(".TH rkubelet 8"), "{man}");

    let lintian = Command::new("lintian")
        .arg("--pedantic")
        .arg(&deb)
        .output()
        .expect("lintian (Debian package lintian; scripts/test installs it)");
    let report = String::from_utf8_lossy(&lintian.stdout);
    let tags: Vec<&str> = report
        .lines()
        .filter(|l| ["E:", "W:", "I:", "P:"].iter().any(|p| l.starts_with(p)))
        .collect();
    assert!(
        tags.is_empty() && lintian.status.success(),
        "lintian tags (fix them, or override with a reason in packaging/lintian-overrides):\n{}{}",
        report,
        String::from_utf8_lossy(&lintian.stderr)
    );
}
