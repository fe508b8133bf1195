//! The per-run settings: what the host tells the guest init about the workload to run.

use serde::{Deserialize, Serialize};

/// The per-run settings the guest init applies before it executes the workload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// The full argv of the workload; `args[0]` is looked up in the workload's `PATH`.
    pub args: Vec<String>,
    /// The workload's environment as `KEY=VALUE` strings (nothing is added).
    pub env: Vec<String>,
    /// The working directory; created (owned by root) when the image lacks it.
    pub workdir: String,
    /// Numeric user id the workload runs as.
    pub uid: u32,
    /// Numeric group id the workload runs as (its only group).
    pub gid: u32,
    /// Host name of the guest; empty keeps the kernel's default.
    pub hostname: String,
    /// The workload gets a terminal (a pseudo-terminal in the guest, in cooked mode, its
    /// controlling terminal so Ctrl-C raises SIGINT) for stdin, stdout and stderr, relayed to
    /// the channel's stdin and stdout streams. Without it its stdout and stderr are pipes to
    /// the stdout and stderr streams, so their bytes reach the host unchanged and apart.
    pub tty: bool,
    /// Give the workload vmc's stdin (the channel's stdin stream, whose end is the workload's
    /// end-of-file): on the terminal for a terminal run, else a pipe. Otherwise stdin is
    /// `/dev/null`.
    pub interactive: bool,
    /// For a terminal run: the host terminal's size, given to the terminal so full-screen
    /// programs lay out correctly (later sizes come on the control stream).
    #[serde(default)]
    pub terminal_size: Option<TerminalSize>,
    /// The image's root filesystem is on disks ([`crate::root_disks`]): the init mounts the image
    /// disk read-only with an overlay on top whose writable layer is on the scratch disk, and
    /// switches root into it before anything else. Otherwise the initramfs is the root.
    #[serde(default)]
    pub root_disks: bool,
    /// Files the init writes into the workload's `/etc` before it runs, replacing the image's
    /// (Docker's `hosts`, `hostname` and `resolv.conf`, whose content the host builds).
    #[serde(default)]
    pub etc_files: Vec<EtcFile>,
}

/// One file of the workload's `/etc`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EtcFile {
    /// Its name in `/etc`: one path component, no `/`, not `.` or `..`.
    pub name: String,
    /// Its content.
    pub content: String,
}

impl EtcFile {
    /// Whether the name is one plain path component, so the file lands in `/etc` itself.
    pub fn has_plain_name(&self) -> bool {
        !self.name.is_empty()
            && !self.name.contains(['/', '\0'])
            && self.name != "."
            && self.name != ".."
    }
}

/// A terminal's size in character cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TerminalSize {
    /// Number of rows.
    pub rows: u16,
    /// Number of columns.
    pub cols: u16,
}

/// Why a run configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The JSON does not match [`RunConfig`].
    #[error("malformed run settings: {0} (vmc and vmc-init must come from the same build)")]
    Malformed(#[from] serde_json::Error),
    /// There is no command to run.
    #[error("no command to run: the image has no CMD or ENTRYPOINT and none was given")]
    NoCommand,
}

impl RunConfig {
    /// Serializes the settings as the guest expects them.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("RunConfig always serializes")
    }

    /// Parses and validates settings written by [`RunConfig::to_json`].
    pub fn from_json(bytes: &[u8]) -> Result<Self, ConfigError> {
        let config: RunConfig = serde_json::from_slice(bytes)?;
        if config.args.is_empty() || config.args[0].is_empty() {
            return Err(ConfigError::NoCommand);
        }
        Ok(config)
    }

    /// The workload's `PATH` variable, if its environment sets one (the first definition wins,
    /// as with `getenv`).
    pub fn path_var(&self) -> Option<&str> {
        self.env.iter().find_map(|var| var.strip_prefix("PATH="))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> RunConfig {
        RunConfig {
            args: vec!["/bin/echo".into(), "hi".into()],
            env: vec!["PATH=/usr/bin:/bin".into(), "HOME=/root".into()],
            workdir: "/srv".into(),
            uid: 1000,
            gid: 100,
            hostname: "abc123".into(),
            tty: true,
            interactive: true,
            terminal_size: Some(TerminalSize {
                rows: 40,
                cols: 120,
            }),
            root_disks: true,
            etc_files: vec![EtcFile {
                name: "hostname".into(),
                content: "abc123\n".into(),
            }],
        }
    }

    #[test]
    fn etc_file_names_are_single_components() {
        let file = |name: &str| EtcFile {
            name: name.into(),
            content: String::new(),
        };
        assert!(file("resolv.conf").has_plain_name());
        for bad in ["", ".", "..", "../x", "a/b", "/etc/hosts"] {
            assert!(!file(bad).has_plain_name(), "{bad:?}");
        }
    }

    #[test]
    fn round_trips_through_json() {
        let config = sample();
        assert_eq!(RunConfig::from_json(&config.to_json()).unwrap(), config);
    }

    #[test]
    fn terminal_size_may_be_omitted() {
        let mut json: serde_json::Value = serde_json::from_slice(&sample().to_json()).unwrap();
        json.as_object_mut().unwrap().remove("terminal_size");
        let config = RunConfig::from_json(json.to_string().as_bytes()).unwrap();
        assert_eq!(config.terminal_size, None);
    }

    #[test]
    fn rejects_unknown_fields_and_missing_command() {
        let mut json: serde_json::Value = serde_json::from_slice(&sample().to_json()).unwrap();
        json["privileged"] = true.into();
        let err = RunConfig::from_json(json.to_string().as_bytes()).unwrap_err();
        assert!(
            err.to_string().contains("unknown field `privileged`"),
            "{err}"
        );

        let mut empty = sample();
        empty.args.clear();
        assert!(matches!(
            RunConfig::from_json(&empty.to_json()),
            Err(ConfigError::NoCommand)
        ));
    }

    #[test]
    fn path_var_takes_the_first_definition() {
        let mut config = sample();
        config.env.push("PATH=/opt/bin".into());
        assert_eq!(config.path_var(), Some("/usr/bin:/bin"));
        config.env.clear();
        assert_eq!(config.path_var(), None);
    }
}
