//! `rkubelet completion SHELL` (shell completions, `clap_complete`) and the
//! hidden `rkubelet man` (the roff man page, `clap_mangen`), both generated
//! from the clap definitions in [`crate::cli`]; the .deb ships their output.

use std::io::Write;

use clap::CommandFactory;

use crate::cli::Cli;

/// Writes the completion script for `shell`. Fails only when `out` does
/// (generated in memory first: clap_complete panics on a write error such
/// as a closed pipe).
pub fn completion(shell: clap_complete::Shell, out: &mut dyn Write) -> std::io::Result<()> {
    let mut cmd = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "rkubelet", &mut script);
    out.write_all(&script)
}

/// Writes the man page (section 8: a system daemon). Fails only when
/// `out` does.
pub fn man(out: &mut dyn Write) -> std::io::Result<()> {
    let cmd = Cli::command().name("rkubelet");
    clap_mangen::Man::new(cmd)
        .section("8")
        .manual("System Administration")
        .render(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bash_completion_knows_the_flags_and_sub_commands() {
        let mut out = Vec::new();
        completion(clap_complete::Shell::Bash, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("complete -F _rkubelet"), "{text}");
        assert!(text.contains("--pod-manifest-path"));
        assert!(text.contains("validate"));
    }

    #[test]
    fn the_man_page_is_section_8_and_documents_the_flags() {
        let mut out = Vec::new();
        man(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with(".ie \\n(.g .ds Aq") || text.contains(".TH rkubelet 8"),
            "{text}"
        );
        assert!(text.contains(".TH rkubelet 8"));
        assert!(text.contains("read\\-only\\-port"));
    }
}
