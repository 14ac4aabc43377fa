//! Compiles the pause program (`pause/pause.c`) into a static binary in
//! `OUT_DIR`, which `src/runtime/pause.rs` embeds. Needs a C compiler and a
//! static libc: `apt-get install gcc libc6-dev` (`CC` picks another compiler).

use std::env;
use std::path::PathBuf;
use std::process::{exit, Command};

fn main() {
    println!("cargo:rerun-if-changed=pause/pause.c");
    println!("cargo:rerun-if-env-changed=CC");

    let out_dir = match env::var_os("OUT_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => fail("OUT_DIR is not set; build.rs must run under cargo"),
    };
    let cc = env::var("CC").unwrap_or_else(|_| "gcc".to_string());
    let output = out_dir.join("pause");
    let version = env::var("CARGO_PKG_VERSION").unwrap_or_else(|_| "unknown".to_string());

    // The default pause image's tag carries a hash of the program's source,
    // so a changed pause program is provisioned as a new image instead of
    // silently reusing an old one with the same crate version.
    let source = std::fs::read("pause/pause.c")
        .unwrap_or_else(|e| fail(&format!("cannot read pause/pause.c: {e}")));
    println!(
        "cargo:rustc-env=RKUBELET_PAUSE_SOURCE_HASH={:08x}",
        fnv1a(&source) as u32
    );

    let result = Command::new(&cc)
        .args(["-Os", "-static", "-s", "-Wall", "-Wextra", "-Werror"])
        .arg(format!("-DPAUSE_VERSION=\"{version}\""))
        .arg("-o")
        .arg(&output)
        .arg("pause/pause.c")
        .output();
    match result {
        Ok(out) if out.status.success() => {}
        Ok(out) => fail(&format!(
            "`{cc} -Os -static -s pause/pause.c` failed ({}):\n{}\n\
             a static libc is needed: apt-get install gcc libc6-dev",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim_end()
        )),
        Err(e) => fail(&format!(
            "cannot run the C compiler `{cc}` to build the pause program: {e}\n\
             install one with: apt-get install gcc libc6-dev (or set CC)"
        )),
    }
}

/// FNV-1a, 64 bit: a stable content hash without a build dependency.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn fail(message: &str) -> ! {
    eprintln!("error: building pause/pause.c: {message}");
    println!(
        "cargo:warning=building pause/pause.c: {}",
        message.lines().next().unwrap_or(message)
    );
    exit(1)
}
