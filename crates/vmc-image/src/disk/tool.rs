//! Running the filesystem tools (mkfs.erofs, mkfs.ext4) that build VM mode's disks.

use crate::error::{ImageError, Result};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// An external program vmc runs, and how to get it when it is missing.
pub(crate) struct Tool {
    /// The program's name (looked up in `PATH`, then in the sbin directories).
    pub name: &'static str,
    /// The Debian package that provides it.
    pub package: &'static str,
    /// What vmc needs it for (for the "not installed" message).
    pub purpose: &'static str,
}

/// Directories searched after `PATH`: mkfs tools live in sbin, which a user's `PATH` (or
/// `sudo`'s) may lack.
const SBIN_DIRS: [&str; 2] = ["/usr/sbin", "/sbin"];

impl Tool {
    /// Runs the tool with `args` on `input` (named in errors); its output is discarded unless
    /// it fails, when the last line it printed goes into the error.
    pub(crate) fn run(&self, args: &[&OsStr], input: &Path) -> Result<()> {
        let program = self.locate()?;
        let output = Command::new(&program)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|error| ImageError::ToolFailed {
                tool: self.name,
                input: input.to_path_buf(),
                reason: format!("cannot run {}: {error}", program.display()),
            })?;
        if output.status.success() {
            return Ok(());
        }
        let printed = [&output.stderr, &output.stdout]
            .into_iter()
            .map(|bytes| String::from_utf8_lossy(bytes).into_owned())
            .find_map(|text| last_line(&text));
        Err(ImageError::ToolFailed {
            tool: self.name,
            input: input.to_path_buf(),
            reason: match printed {
                Some(line) => format!("{}: {line}", output.status),
                None => output.status.to_string(),
            },
        })
    }

    /// The tool's path, or [`ImageError::MissingTool`].
    pub(crate) fn locate(&self) -> Result<PathBuf> {
        let path_dirs = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path_dirs)
            .chain(SBIN_DIRS.iter().map(PathBuf::from))
            .map(|dir| dir.join(self.name))
            .find(|candidate| is_executable(candidate))
            .ok_or(ImageError::MissingTool {
                tool: self.name,
                purpose: self.purpose,
                package: self.package,
            })
    }
}

/// Whether `path` is a file someone may execute.
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// The last non-empty line of `text`, trimmed.
fn last_line(text: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .rfind(|line| !line.is_empty())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_tool_names_its_package() {
        let tool = Tool {
            name: "vmc-no-such-mkfs",
            package: "vmc-no-such-package",
            purpose: "testing",
        };
        let err = tool.run(&[], Path::new("/")).unwrap_err().to_string();
        assert!(err.contains("vmc-no-such-mkfs is not installed"), "{err}");
        assert!(err.contains("apt-get install vmc-no-such-package"), "{err}");
        assert_eq!(err.lines().count(), 1);
    }

    #[test]
    fn a_failing_tool_reports_its_status_and_last_line() {
        let tool = Tool {
            name: "sh",
            package: "dash",
            purpose: "testing",
        };
        let args: Vec<&OsStr> = ["-c", "echo first >&2; echo 'the reason' >&2; exit 3"]
            .iter()
            .map(OsStr::new)
            .collect();
        let err = tool.run(&args, Path::new("/in")).unwrap_err().to_string();
        assert_eq!(err, "sh failed on /in: exit status: 3: the reason");
    }

    #[test]
    fn last_line_skips_trailing_blank_lines() {
        assert_eq!(last_line("a\nb\n\n  \n").as_deref(), Some("b"));
        assert_eq!(last_line(" \n"), None);
    }
}
