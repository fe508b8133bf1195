//! Running the filesystem tools (mkfs.erofs, mkfs.ext4) that build VM mode's disks.

use crate::error::{ImageError, Result};
use std::ffi::OsStr;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use vmc_runtime::signals::SignalCatcher;

/// An external program vmc runs, and how to get it when it is missing.
pub(crate) struct Tool {
    /// The program's name (looked up in `PATH`, then in the sbin directories).
    pub name: &'static str,
    /// The Debian package that provides it.
    pub package: &'static str,
    /// What vmc needs it for (for the "not installed" message).
    pub purpose: &'static str,
}

/// How much of the end of a failed tool's output is read for its last line.
const OUTPUT_TAIL: u64 = 64 * 1024;

/// Directories searched after `PATH`: mkfs tools live in sbin, which a user's `PATH` (or
/// `sudo`'s) may lack.
const SBIN_DIRS: [&str; 2] = ["/usr/sbin", "/sbin"];

impl Tool {
    /// Runs the tool with `args` on `input` (named in errors); its output is discarded unless
    /// it fails, when the last line it printed goes into the error. A signal that ends a
    /// setup, caught by `signals` while it runs, kills it: [`ImageError::Interrupted`].
    pub(crate) fn run(&self, args: &[&OsStr], input: &Path, signals: &SignalCatcher) -> Result<()> {
        let program = self.locate()?;
        let failed = |reason: String| ImageError::ToolFailed {
            tool: self.name,
            input: input.to_path_buf(),
            reason,
        };
        let cannot_run =
            |error: std::io::Error| failed(format!("cannot run {}: {error}", program.display()));
        // Its output goes to a file, read only if it fails: a pipe could fill while vmc waits.
        let mut output = tempfile::tempfile().map_err(cannot_run)?;
        let mut child = Command::new(&program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(output.try_clone().map_err(cannot_run)?)
            .stderr(output.try_clone().map_err(cannot_run)?)
            .spawn()
            .map_err(cannot_run)?;
        let status = signals.wait_for_child(&mut child).map_err(cannot_run)??;
        if status.success() {
            return Ok(());
        }
        // Its end: where the last line is.
        let mut printed = Vec::new();
        let length = output.metadata().map_err(cannot_run)?.len();
        output
            .seek(SeekFrom::Start(length.saturating_sub(OUTPUT_TAIL)))
            .map_err(cannot_run)?;
        output.read_to_end(&mut printed).map_err(cannot_run)?;
        Err(failed(
            match last_line(&String::from_utf8_lossy(&printed)) {
                Some(line) => format!("{status}: {line}"),
                None => status.to_string(),
            },
        ))
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
        let err = tool
            .run(&[], Path::new("/"), &SignalCatcher::new().unwrap())
            .unwrap_err()
            .to_string();
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
        let err = tool
            .run(&args, Path::new("/in"), &SignalCatcher::new().unwrap())
            .unwrap_err()
            .to_string();
        assert_eq!(err, "sh failed on /in: exit status: 3: the reason");
    }

    /// Runs `sh -c script` as a tool while this thread is sent `signal` after 100 ms.
    fn run_signalled(script: &str, signal: libc::c_int) -> Result<()> {
        let tool = Tool {
            name: "sh",
            package: "dash",
            purpose: "testing",
        };
        let signals = SignalCatcher::new().unwrap();
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() };
        let pid = std::process::id() as libc::pid_t;
        let sender = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(100));
            // SAFETY: tgkill signals one thread of this process, which has the signal blocked
            // (the catcher) and reads it from its signalfd.
            unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, signal) };
        });
        let args = [OsStr::new("-c"), OsStr::new(script)];
        let result = tool.run(&args, Path::new("/in"), &signals);
        sender.join().unwrap();
        result
    }

    #[test]
    fn an_ending_signal_kills_the_tool() {
        let started = std::time::Instant::now();
        let err = run_signalled("sleep 100", libc::SIGTERM).unwrap_err();
        assert!(
            matches!(
                err,
                ImageError::Interrupted(vmc_runtime::signals::Interrupted(
                    nix::sys::signal::Signal::SIGTERM
                ))
            ),
            "{err}"
        );
        // Killed, not waited for.
        assert!(started.elapsed() < std::time::Duration::from_secs(60));
    }

    #[test]
    fn other_signals_leave_the_tool_running() {
        run_signalled("sleep 0.3; exit 0", libc::SIGUSR1).unwrap();
    }

    #[test]
    fn last_line_skips_trailing_blank_lines() {
        assert_eq!(last_line("a\nb\n\n  \n").as_deref(), Some("b"));
        assert_eq!(last_line(" \n"), None);
    }
}
