//! Executing the workload's command the way both modes do it: like `execvp` (the first
//! candidate path that can be executed), with the shared exit codes (127 not found, 126
//! cannot execute) and the messages Docker prints. Once an [`ExecCommand`] is built nothing
//! here allocates, so a container's child can use it between `clone` and `execve`.

use crate::env::exec_candidates;
use crate::outcome::{EXIT_CANNOT_EXECUTE, EXIT_NOT_FOUND};
use nix::errno::Errno;
use std::ffi::{c_char, CStr, CString};
use std::fmt;

/// A command ready to execute.
#[derive(Debug)]
pub struct ExecCommand {
    argv: StringArray,
    env: StringArray,
    candidates: Vec<CString>,
    searched_path: bool,
}

/// C strings with the NULL-terminated array of pointers into them that `execve` takes.
#[derive(Debug)]
struct StringArray {
    strings: Vec<CString>,
    pointers: Vec<*const c_char>,
}

impl StringArray {
    fn new(strings: &[String]) -> Result<Self, NulByte> {
        let strings = c_strings(strings)?;
        let pointers = strings
            .iter()
            .map(|s| s.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect();
        Ok(StringArray { strings, pointers })
    }

    /// The pointer array (valid while `self` lives: the strings' buffers never move).
    fn as_ptr(&self) -> *const *const c_char {
        self.pointers.as_ptr()
    }
}

/// A string that `execve` cannot take: it contains a NUL byte.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the command line or environment contains a NUL byte: {0:?}")]
pub struct NulByte(pub String);

impl ExecCommand {
    /// The command `argv` (non-empty) with the environment `env` (`KEY=VALUE`), `argv[0]`
    /// looked up in `path` (the workload's PATH) unless it contains a `/`.
    pub fn new(argv: &[String], env: &[String], path: &str) -> Result<Self, NulByte> {
        let program = argv.first().map_or("", String::as_str);
        Ok(ExecCommand {
            candidates: c_strings(&exec_candidates(program, path))?,
            searched_path: !program.contains('/'),
            argv: StringArray::new(argv)?,
            env: StringArray::new(env)?,
        })
    }

    /// Executes the first candidate that can be executed; returns only if none could.
    pub fn exec(&self) -> ExecFailure<'_> {
        let mut refused = None;
        for candidate in &self.candidates {
            // SAFETY: the candidate and both pointer arrays are NUL/NULL-terminated and point
            // into strings `self` owns.
            unsafe { libc::execve(candidate.as_ptr(), self.argv.as_ptr(), self.env.as_ptr()) };
            let errno = Errno::last();
            if !matches!(errno, Errno::ENOENT | Errno::ENOTDIR) && refused.is_none() {
                refused = Some((candidate.as_c_str(), errno));
            }
        }
        ExecFailure {
            command: self,
            refused,
        }
    }

    /// The command as given (`argv[0]`).
    fn program(&self) -> &str {
        self.argv.strings.first().map_or("", |p| text(p))
    }
}

/// Why no candidate of an [`ExecCommand`] could be executed. Its `Display` is the one line
/// vmc prints after `vmc: `.
#[derive(Debug)]
pub struct ExecFailure<'a> {
    command: &'a ExecCommand,
    /// The first candidate that exists but was refused, and why.
    refused: Option<(&'a CStr, Errno)>,
}

impl ExecFailure<'_> {
    /// The workload's exit status: 126 when a candidate exists but cannot be executed, else
    /// 127.
    pub fn exit_code(&self) -> u8 {
        match self.refused {
            Some(_) => EXIT_CANNOT_EXECUTE as u8,
            None => EXIT_NOT_FOUND as u8,
        }
    }
}

impl fmt::Display for ExecFailure<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.refused {
            Some((path, errno)) => {
                let is_directory = || {
                    nix::sys::stat::stat(path)
                        .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR)
                };
                let reason = match errno {
                    Errno::EACCES if is_directory() => "is a directory",
                    Errno::EACCES => "permission denied",
                    other => other.desc(),
                };
                write!(f, "exec: {:?}: {reason}", text(path))
            }
            None if self.command.searched_path => write!(
                f,
                "exec: {:?}: executable file not found in $PATH",
                self.command.program()
            ),
            None => write!(
                f,
                "exec: {:?}: no such file or directory",
                self.command.program()
            ),
        }
    }
}

/// Converts strings for `execve`.
fn c_strings(strings: &[String]) -> Result<Vec<CString>, NulByte> {
    strings
        .iter()
        .map(|s| CString::new(s.as_str()).map_err(|_| NulByte(s.clone())))
        .collect()
}

/// A C string as text, without allocating ("?" if it is not UTF-8).
fn text(s: &CStr) -> &str {
    s.to_str().unwrap_or("?")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    /// The failure to execute `program` looked up in `path` (never succeeds, so the test
    /// process survives), as (exit code, message).
    fn fail_to_execute(program: &str, path: &str) -> (u8, String) {
        let command = ExecCommand::new(&[program.to_string()], &[], path).unwrap();
        let failure = command.exec();
        (failure.exit_code(), failure.to_string())
    }

    #[test]
    fn missing_commands_exit_127() {
        assert_eq!(
            fail_to_execute("nosuch", "/no/such:/etc/passwd"),
            (
                127,
                r#"exec: "nosuch": executable file not found in $PATH"#.into()
            )
        );
        assert_eq!(
            fail_to_execute("/no/such", "/bin"),
            (127, r#"exec: "/no/such": no such file or directory"#.into())
        );
    }

    #[test]
    fn unexecutable_commands_exit_126_naming_the_first_refused_path() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().to_str().unwrap();
        let data = dir.path().join("data");
        fs::write(&data, "not a program").unwrap();
        fs::set_permissions(&data, fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(
            fail_to_execute("data", &format!("/no/such:{bin}")),
            (
                126,
                format!(r#"exec: "{}": permission denied"#, data.display())
            )
        );

        fs::create_dir(dir.path().join("tool")).unwrap();
        let (code, message) = fail_to_execute("tool", bin);
        assert_eq!(code, 126);
        assert!(message.ends_with(": is a directory"), "{message}");

        let no_format = dir.path().join("noformat");
        fs::write(&no_format, [0u8; 16]).unwrap();
        fs::set_permissions(&no_format, fs::Permissions::from_mode(0o755)).unwrap();
        let (code, message) = fail_to_execute(no_format.to_str().unwrap(), "/bin");
        assert_eq!(code, 126);
        assert!(message.ends_with(": Exec format error"), "{message}");
    }

    #[test]
    fn nul_bytes_are_refused() {
        let err = ExecCommand::new(&["sh".into()], &["A=1\0".into()], "/bin").unwrap_err();
        assert_eq!(err, NulByte("A=1\0".into()));
    }
}
