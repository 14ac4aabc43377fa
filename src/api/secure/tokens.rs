//! Bearer tokens for the authenticated port.
//!
//! The file format is the kube-apiserver's (and kubelet's) `--token-auth-file`:
//! CSV rows `token,user,uid[,"group1,group2"]`, no header, `#` comments
//! ignored. Without `--token-auth-file`, rkubelet generates one token for
//! `root` and keeps it in `--root-dir`/`auth/tokens.csv` (mode 0600), which is
//! also what `rkubelet kubeconfig` reads. Tokens are compared in constant time.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Who a token or client certificate belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
}

/// A token file that cannot be used, naming the file and the line.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("--token-auth-file {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("--token-auth-file {path}, line {line}: {reason}")]
    Row {
        path: PathBuf,
        line: u64,
        reason: String,
    },
}

/// The tokens the port accepts.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    users: BTreeMap<String, User>,
    /// The first token, in file order (what `rkubelet kubeconfig` prints).
    first: Option<String>,
}

impl Tokens {
    /// Parses token-file content. Fails naming the line of a row with fewer
    /// than three fields or an empty token or user.
    pub fn parse(path: &Path, content: &str) -> Result<Tokens, TokenError> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .comment(Some(b'#'))
            .trim(csv::Trim::All)
            .from_reader(content.as_bytes());
        let mut tokens = Tokens::default();
        for record in reader.records() {
            let record = record.map_err(|e| TokenError::Row {
                path: path.to_path_buf(),
                line: e.position().map_or(0, |p| p.line()),
                reason: e.to_string(),
            })?;
            let line = record.position().map_or(0, |p| p.line());
            let row_error = |reason: &str| TokenError::Row {
                path: path.to_path_buf(),
                line,
                reason: reason.to_string(),
            };
            if record.len() < 3 {
                return Err(row_error(
                    "expected token,user,uid[,\"group1,group2\"] (at least three fields)",
                ));
            }
            let (token, name, uid) = (&record[0], &record[1], &record[2]);
            if token.is_empty() || name.is_empty() {
                return Err(row_error("the token and the user must not be empty"));
            }
            let groups = record
                .get(3)
                .map(|g| {
                    g.split(',')
                        .map(str::trim)
                        .filter(|g| !g.is_empty())
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default();
            tokens.first.get_or_insert_with(|| token.to_string());
            tokens.users.insert(
                token.to_string(),
                User {
                    name: name.to_string(),
                    uid: uid.to_string(),
                    groups,
                },
            );
        }
        if tokens.users.is_empty() {
            return Err(TokenError::Read {
                path: path.to_path_buf(),
                reason: "no token in the file".into(),
            });
        }
        Ok(tokens)
    }

    /// Reads a token file. Fails naming the file when it cannot be read or parsed.
    pub fn read(path: &Path) -> Result<Tokens, TokenError> {
        let content = std::fs::read_to_string(path).map_err(|e| TokenError::Read {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        Tokens::parse(path, &content)
    }

    /// The user a bearer token belongs to, if any. Every known token is
    /// compared in full, so the time taken does not say how much matched.
    pub fn authenticate(&self, token: &str) -> Option<&User> {
        let mut found = None;
        for (known, user) in &self.users {
            if constant_time_eq(known.as_bytes(), token.as_bytes()) {
                found = Some(user);
            }
        }
        found
    }

    /// The first token of the file.
    pub fn first(&self) -> Option<&str> {
        self.first.as_deref()
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Where the generated token file lives under `--root-dir`.
pub fn generated_path(root_dir: &Path) -> PathBuf {
    root_dir.join("auth").join("tokens.csv")
}

/// The generated token file: read it if it exists, else create it (mode
/// 0600, directory 0700) with one fresh random token for `root` in the
/// `system:masters` group. Fails naming the file.
pub fn load_or_generate(root_dir: &Path) -> Result<Tokens, TokenError> {
    let path = generated_path(root_dir);
    if path.exists() {
        restrict(&path)?;
        return Tokens::read(&path);
    }
    let io = |e: std::io::Error| TokenError::Read {
        path: path.clone(),
        reason: e.to_string(),
    };
    let dir = path.parent().unwrap_or(root_dir);
    std::fs::create_dir_all(dir).map_err(io)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| TokenError::Read {
        path: path.clone(),
        reason: format!("no randomness for a token: {e}"),
    })?;
    let token = hex::encode(bytes);
    let content = format!("{token},root,0,\"system:masters\"\n");
    write_private(&path, content.as_bytes()).map_err(io)?;
    Tokens::parse(&path, &content)
}

/// Keeps a file private (0600) if it is not already.
fn restrict(path: &Path) -> Result<(), TokenError> {
    let meta = std::fs::metadata(path).map_err(|e| TokenError::Read {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    if meta.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(|e| {
            TokenError::Read {
                path: path.to_path_buf(),
                reason: e.to_string(),
            }
        })?;
    }
    Ok(())
}

/// Writes a new file readable by its owner only (created 0600, never
/// readable by others even for an instant), replacing it atomically.
pub fn write_private(path: &Path, content: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(content)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Tokens, TokenError> {
        Tokens::parse(Path::new("/etc/tokens.csv"), s)
    }

    #[test]
    fn a_row_with_quoted_groups_names_user_uid_and_groups() {
        let t = parse("abc,alice,1001,\"dev,ops\"\n").unwrap();
        let u = t.authenticate("abc").unwrap();
        assert_eq!(u.name, "alice");
        assert_eq!(u.uid, "1001");
        assert_eq!(u.groups, vec!["dev", "ops"]);
        assert_eq!(t.first(), Some("abc"));
    }

    #[test]
    fn a_wrong_or_prefix_token_is_not_accepted() {
        let t = parse("# comment\nsecret,bob,2\n").unwrap();
        assert!(t.authenticate("secret").is_some());
        assert!(t.authenticate("secre").is_none());
        assert!(t.authenticate("secret2").is_none());
        assert!(t.authenticate("").is_none());
    }

    #[test]
    fn a_short_row_is_an_error_naming_the_file_and_line() {
        let e = parse("a,b,c\nonlytoken,user\n").unwrap_err().to_string();
        assert!(e.contains("/etc/tokens.csv"), "{e}");
        assert!(e.contains("line 2"), "{e}");
    }

    #[test]
    fn an_empty_file_has_no_token() {
        let e = parse("# nothing\n").unwrap_err().to_string();
        assert!(e.contains("no token"), "{e}");
    }

    #[test]
    fn the_generated_file_is_private_and_stable() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_generate(dir.path()).unwrap();
        let path = generated_path(dir.path());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let b = load_or_generate(dir.path()).unwrap();
        assert_eq!(a.first(), b.first());
        assert_eq!(a.first().unwrap().len(), 64);
    }
}
