//! The runtime part of an image config (entrypoint, cmd, env, …) and Docker-style
//! `--change` instructions that edit it.

use crate::error::{ImageError, Result};
use oci_spec::image::{Config, ConfigBuilder};
use serde::Serialize;

/// What a run needs from the image config; empty values mean "not set".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImageConfig {
    /// `Entrypoint`.
    pub entrypoint: Vec<String>,
    /// `Cmd`.
    pub cmd: Vec<String>,
    /// `Env` as `KEY=VALUE` strings.
    pub env: Vec<String>,
    /// `WorkingDir`.
    pub working_dir: String,
    /// `User` (`name`, `uid`, `uid:gid`, …).
    pub user: String,
    /// `StopSignal` (`SIGTERM`, `SIGQUIT`, `15`, …), what `vmc stop` sends first.
    pub stop_signal: String,
}

impl ImageConfig {
    /// Extracts the runtime fields from an OCI config section.
    pub fn from_oci(config: Option<&Config>) -> ImageConfig {
        let Some(c) = config else {
            return ImageConfig::default();
        };
        ImageConfig {
            entrypoint: c.entrypoint().clone().unwrap_or_default(),
            cmd: c.cmd().clone().unwrap_or_default(),
            env: c.env().clone().unwrap_or_default(),
            working_dir: c.working_dir().clone().unwrap_or_default(),
            user: c.user().clone().unwrap_or_default(),
            stop_signal: c.stop_signal().clone().unwrap_or_default(),
        }
    }

    /// The config given to images imported from a plain root filesystem.
    pub fn rootfs_default() -> ImageConfig {
        ImageConfig {
            cmd: vec!["/bin/sh".into()],
            env: vec![format!("PATH={}", vmc_runtime::env::DEFAULT_PATH)],
            ..ImageConfig::default()
        }
    }

    /// Converts back into an OCI config section.
    pub fn to_oci(&self) -> Config {
        let mut builder = ConfigBuilder::default();
        let non_empty = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
        if let Some(v) = non_empty(&self.entrypoint) {
            builder = builder.entrypoint(v);
        }
        if let Some(v) = non_empty(&self.cmd) {
            builder = builder.cmd(v);
        }
        if let Some(v) = non_empty(&self.env) {
            builder = builder.env(v);
        }
        if !self.working_dir.is_empty() {
            builder = builder.working_dir(self.working_dir.clone());
        }
        if !self.user.is_empty() {
            builder = builder.user(self.user.clone());
        }
        if !self.stop_signal.is_empty() {
            builder = builder.stop_signal(self.stop_signal.clone());
        }
        builder.build().expect("every Config field has a default")
    }

    /// Applies one `--change` instruction.
    pub fn apply(&mut self, change: &Change) {
        match change {
            Change::Cmd(v) => self.cmd = v.clone(),
            Change::Entrypoint(v) => self.entrypoint = v.clone(),
            Change::Env(key, value) => {
                let prefix = format!("{key}=");
                self.env.retain(|e| !e.starts_with(&prefix));
                self.env.push(format!("{key}={value}"));
            }
            Change::Workdir(dir) => self.working_dir = dir.clone(),
            Change::User(user) => self.user = user.clone(),
        }
    }
}

/// One Dockerfile-like instruction accepted by `vmc import --change`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// `CMD ["a","b"]` or `CMD a b` (shell form: `/bin/sh -c "a b"`).
    Cmd(Vec<String>),
    /// `ENTRYPOINT ["a","b"]` or shell form.
    Entrypoint(Vec<String>),
    /// `ENV KEY=VALUE` or `ENV KEY VALUE`.
    Env(String, String),
    /// `WORKDIR /path`.
    Workdir(String),
    /// `USER name[:group]`.
    User(String),
}

impl Change {
    /// Parses an instruction such as `CMD ["/bin/sh"]` or `ENV A=1`.
    pub fn parse(text: &str) -> Result<Change> {
        let bad = || ImageError::InvalidChange(text.to_string());
        let trimmed = text.trim();
        let (keyword, rest) = trimmed.split_once(char::is_whitespace).ok_or_else(bad)?;
        let rest = rest.trim();
        if rest.is_empty() {
            return Err(bad());
        }
        match keyword.to_ascii_uppercase().as_str() {
            "CMD" => Ok(Change::Cmd(command_form(rest).ok_or_else(bad)?)),
            "ENTRYPOINT" => Ok(Change::Entrypoint(command_form(rest).ok_or_else(bad)?)),
            "ENV" => {
                let (key, value) = match rest.split_once('=') {
                    Some((k, v)) if !k.contains(char::is_whitespace) => (k, v),
                    _ => rest.split_once(char::is_whitespace).ok_or_else(bad)?,
                };
                if key.is_empty() {
                    return Err(bad());
                }
                Ok(Change::Env(key.to_string(), unquote(value.trim())))
            }
            "WORKDIR" if rest.starts_with('/') => Ok(Change::Workdir(rest.to_string())),
            "USER" => Ok(Change::User(rest.to_string())),
            _ => Err(bad()),
        }
    }
}

/// JSON array form (`["a","b"]`) or shell form (`a b` → `/bin/sh -c "a b"`).
fn command_form(text: &str) -> Option<Vec<String>> {
    if text.starts_with('[') {
        serde_json::from_str(text).ok()
    } else {
        Some(vec!["/bin/sh".into(), "-c".into(), text.to_string()])
    }
}

/// Strips one pair of surrounding double quotes.
fn unquote(value: &str) -> String {
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_change_forms() {
        assert_eq!(
            Change::parse(r#"CMD ["/bin/echo", "hi"]"#).unwrap(),
            Change::Cmd(vec!["/bin/echo".into(), "hi".into()])
        );
        assert_eq!(
            Change::parse("entrypoint top -b").unwrap(),
            Change::Entrypoint(vec!["/bin/sh".into(), "-c".into(), "top -b".into()])
        );
        assert_eq!(
            Change::parse("ENV A=b c").unwrap(),
            Change::Env("A".into(), "b c".into())
        );
        assert_eq!(
            Change::parse("ENV A \"x\"").unwrap(),
            Change::Env("A".into(), "x".into())
        );
        assert_eq!(
            Change::parse("WORKDIR /srv").unwrap(),
            Change::Workdir("/srv".into())
        );
        for bad in ["CMD", "EXPOSE 80", "WORKDIR rel", "CMD [broken"] {
            assert!(Change::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn env_change_replaces_existing_key() {
        let mut config = ImageConfig::rootfs_default();
        config.apply(&Change::Env("PATH".into(), "/bin".into()));
        assert_eq!(config.env, vec!["PATH=/bin".to_string()]);
        let round_trip = ImageConfig::from_oci(Some(&config.to_oci()));
        assert_eq!(round_trip, config);
    }
}
