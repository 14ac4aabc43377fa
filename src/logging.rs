//! Log verbosity: the kubelet's `-v`/`--v=N` mapped onto `tracing` filters,
//! and the subscriber set-up.
//!
//! | `--v` | rkubelet                                   | dependencies |
//! |-------|--------------------------------------------|--------------|
//! | 0–1   | info                                       | info         |
//! | 2–3   | debug for the manager, sources, registry, service | info  |
//! | 4–5   | debug everywhere                           | info         |
//! | 6+    | trace                                      | trace (but see below) |
//!
//! `RKUBELET_LOG` (an `EnvFilter` directive list) replaces the mapping
//! entirely, so an operator keeps full control.
//!
//! **Secrets never reach the log.** rkubelet logs no environment values,
//! Secret data or registry credentials at any level. One dependency does:
//! bollard dumps every Docker API request and response body at `debug`
//! (container create bodies carry the environment; pulls carry registry
//! auth). It is therefore held at `info` at every `--v` and under an
//! `RKUBELET_LOG` that does not name `bollard` itself; only
//! `RKUBELET_LOG=...,bollard=debug` (an explicit, documented choice)
//! unlocks it.
//!
//! This module owns no state; [`init`] is called once by `main`.

use std::io::IsTerminal;

use crate::cli::LogFormat;

/// Targets that log request or response bodies (environment values,
/// credentials) below `info`; capped unless `RKUBELET_LOG` names them.
const BODY_DUMPERS: &[&str] = &["bollard"];

/// rkubelet's modules that give "more detail" at `--v=2`/`3`: steady-state
/// decisions (sync, sources, pulls, service notifications), not per-container
/// chatter.
const DETAIL_MODULES: &[&str] = &[
    "rkubelet::app",
    "rkubelet::worker::manager",
    "rkubelet::source",
    "rkubelet::service",
    "rkubelet::metrics",
    "rkubelet::registry",
];

/// The `EnvFilter` directives for `--v=verbosity`.
pub fn directives_for(verbosity: u8) -> String {
    let mut d = match verbosity {
        0..=1 => "info".to_string(),
        2..=3 => {
            let mut d = "info".to_string();
            for m in DETAIL_MODULES {
                d.push_str(&format!(",{m}=debug"));
            }
            d
        }
        4..=5 => "info,rkubelet=debug".to_string(),
        _ => "trace".to_string(),
    };
    cap_body_dumpers(&mut d);
    d
}

/// The directives to use: `RKUBELET_LOG` when set (with the body dumpers
/// capped unless it names them), else [`directives_for`].
pub fn directives(verbosity: u8, rkubelet_log: Option<&str>) -> String {
    match rkubelet_log.map(str::trim).filter(|s| !s.is_empty()) {
        Some(env) => {
            let mut d = env.to_string();
            cap_body_dumpers(&mut d);
            d
        }
        None => directives_for(verbosity),
    }
}

/// Appends `target=info` for each body-dumping target the directives do not
/// name (a target directive beats a bare level in `EnvFilter`).
fn cap_body_dumpers(directives: &mut String) {
    for target in BODY_DUMPERS {
        let named = directives.split(',').any(|d| {
            let name = d.trim().split(['=', '[']).next().unwrap_or_default();
            name == *target || name.starts_with(&format!("{target}::"))
        });
        if !named {
            directives.push_str(&format!(",{target}=info"));
        }
    }
}

/// Installs the global subscriber on stderr. An invalid `RKUBELET_LOG`
/// falls back to the `--v` mapping with a warning.
pub fn init(format: LogFormat, verbosity: u8) {
    let env = std::env::var("RKUBELET_LOG").ok();
    let wanted = directives(verbosity, env.as_deref());
    let (filter, bad) = match tracing_subscriber::EnvFilter::try_new(&wanted) {
        Ok(f) => (f, None),
        Err(e) => (
            tracing_subscriber::EnvFilter::new(directives_for(verbosity)),
            Some(e),
        ),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    if let Some(e) = bad {
        tracing::warn!(error = %e, "RKUBELET_LOG is not a valid filter; using --v instead");
    }
    tracing::debug!(verbosity, filter = %wanted, "logging");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_zero_and_one_are_info_with_bollard_capped() {
        assert_eq!(directives_for(0), "info,bollard=info");
        assert_eq!(directives_for(1), directives_for(0));
    }

    #[test]
    fn levels_two_and_three_add_rkubelet_detail_but_not_everything() {
        let d = directives_for(2);
        assert!(d.starts_with("info,"));
        assert!(d.contains("rkubelet::worker::manager=debug"));
        assert!(!d.contains("rkubelet=debug"));
        assert_eq!(directives_for(3), d);
    }

    #[test]
    fn level_four_is_rkubelet_debug_and_dependencies_stay_at_info() {
        assert_eq!(directives_for(4), "info,rkubelet=debug,bollard=info");
    }

    #[test]
    fn level_six_traces_dependencies_except_the_body_dumpers() {
        assert_eq!(directives_for(6), "trace,bollard=info");
        assert_eq!(directives_for(9), directives_for(6));
    }

    #[test]
    fn rkubelet_log_replaces_the_mapping_and_caps_bollard_unless_named() {
        assert_eq!(directives(6, Some("debug")), "debug,bollard=info");
        assert_eq!(
            directives(0, Some("warn,bollard=debug")),
            "warn,bollard=debug"
        );
        assert_eq!(
            directives(0, Some("bollard::docker=trace")),
            "bollard::docker=trace"
        );
        assert_eq!(directives(4, Some("  ")), directives_for(4));
    }

    #[test]
    fn every_mapping_is_a_valid_filter() {
        for v in 0..=10 {
            assert!(tracing_subscriber::EnvFilter::try_new(directives_for(v)).is_ok());
        }
    }
}
