//! Executing the workload's command like `execvp`, with container mode's exit codes and
//! messages (vmc-container's child does the same).

use nix::errno::Errno;
use nix::unistd::execve;
use std::ffi::{CStr, CString};

/// Why the workload's command could not be executed; its `Display` is the one line printed.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExecError {
    /// No candidate exists (exit 127).
    #[error("vmc: exec: {program:?}: {}", if *.searched_path { "executable file not found in $PATH" } else { "no such file or directory" })]
    NotFound {
        /// The command as given.
        program: String,
        /// Whether `PATH` was searched (the command has no `/`).
        searched_path: bool,
    },
    /// A candidate exists but cannot be executed (exit 126).
    #[error("vmc: exec: {path:?}: {reason}")]
    CannotExecute {
        /// The first candidate that failed for a reason other than not existing.
        path: String,
        /// "permission denied", "is a directory", or the error's description.
        reason: String,
    },
}

impl ExecError {
    /// The exit status the workload gets (the container mode's contract).
    pub fn exit_code(&self) -> i32 {
        match self {
            ExecError::NotFound { .. } => 127,
            ExecError::CannotExecute { .. } => 126,
        }
    }
}

/// Executes the first candidate that can be executed; returns only if none could.
pub fn execute(
    program: &str,
    candidates: &[CString],
    argv: &[CString],
    envp: &[CString],
) -> ExecError {
    let mut refused: Option<(&CStr, Errno)> = None;
    for candidate in candidates {
        let Err(errno) = execve(candidate, argv, envp);
        if !matches!(errno, Errno::ENOENT | Errno::ENOTDIR) && refused.is_none() {
            refused = Some((candidate, errno));
        }
    }
    match refused {
        Some((path, errno)) => ExecError::CannotExecute {
            path: path.to_string_lossy().into_owned(),
            reason: reason(path, errno).to_string(),
        },
        None => ExecError::NotFound {
            program: program.to_string(),
            searched_path: !program.contains('/'),
        },
    }
}

/// The words for an `execve` failure of `path`.
fn reason(path: &CStr, errno: Errno) -> &'static str {
    let is_directory =
        || nix::sys::stat::stat(path).is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR);
    match errno {
        Errno::EACCES if is_directory() => "is a directory",
        Errno::EACCES => "permission denied",
        other => other.desc(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    fn c_strings(strings: &[&str]) -> Vec<CString> {
        strings.iter().map(|s| CString::new(*s).unwrap()).collect()
    }

    /// Runs `execute` with candidates that can never succeed (so the test process survives).
    fn fail_to_execute(program: &str, candidates: &[&str]) -> ExecError {
        execute(program, &c_strings(candidates), &c_strings(&[program]), &[])
    }

    #[test]
    fn missing_commands_exit_127() {
        let err = fail_to_execute("nosuch", &["/no/such/nosuch", "/etc/passwd/nosuch"]);
        assert_eq!(
            err.to_string(),
            r#"vmc: exec: "nosuch": executable file not found in $PATH"#
        );
        assert_eq!(err.exit_code(), 127);
        let err = fail_to_execute("/no/such", &["/no/such"]);
        assert_eq!(
            err.to_string(),
            r#"vmc: exec: "/no/such": no such file or directory"#
        );
        assert_eq!(err.exit_code(), 127);
    }

    #[test]
    fn unexecutable_commands_exit_126_naming_the_first_refused_path() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        fs::write(&data, "not a program").unwrap();
        fs::set_permissions(&data, fs::Permissions::from_mode(0o644)).unwrap();
        let data = data.to_str().unwrap();
        let err = fail_to_execute("data", &["/no/such/data", data]);
        assert_eq!(
            err,
            ExecError::CannotExecute {
                path: data.into(),
                reason: "permission denied".into()
            }
        );
        assert_eq!(err.exit_code(), 126);
        assert_eq!(
            err.to_string(),
            format!(r#"vmc: exec: "{data}": permission denied"#)
        );

        let subdir = dir.path().join("tool");
        fs::create_dir(&subdir).unwrap();
        let err = fail_to_execute("tool", &[subdir.to_str().unwrap()]);
        assert!(err.to_string().ends_with(": is a directory"), "{err}");

        let no_format = dir.path().join("noformat");
        fs::write(&no_format, [0u8; 16]).unwrap();
        fs::set_permissions(&no_format, fs::Permissions::from_mode(0o755)).unwrap();
        let err = fail_to_execute("noformat", &[no_format.to_str().unwrap()]);
        assert!(err.to_string().ends_with(": Exec format error"), "{err}");
        assert_eq!(err.exit_code(), 126);
    }
}
