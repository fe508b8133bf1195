//! The workload's environment and command lookup, the same in both modes.

/// The search path when the workload's environment has no `PATH` (Docker's default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The workload's environment: `env` plus `PATH`, `HOSTNAME` and `HOME` when it does not set
/// them, as Docker adds them.
pub fn workload_env(env: &[String], hostname: &str, home: &str) -> Vec<String> {
    let mut full = env.to_vec();
    if env_value(env, "PATH").is_none() {
        full.push(format!("PATH={DEFAULT_PATH}"));
    }
    if env_value(env, "HOSTNAME").is_none() {
        full.push(format!("HOSTNAME={hostname}"));
    }
    if env_value(env, "HOME").is_none() {
        full.push(format!("HOME={home}"));
    }
    full
}

/// Sets the `KEY=VALUE` `assignment` in `env`, replacing every earlier value of `KEY`.
pub fn set_var(env: &mut Vec<String>, assignment: String) {
    let key = assignment.split('=').next().unwrap_or_default();
    env.retain(|existing| existing.split('=').next() != Some(key));
    env.push(assignment);
}

/// Gives a terminal a type, as Docker does for `-t`: `TERM=xterm` unless `env` sets TERM.
pub fn set_default_terminal_type(env: &mut Vec<String>) {
    if env_value(env, "TERM").is_none() {
        env.push("TERM=xterm".into());
    }
}

/// The value of `key` in a `KEY=VALUE` environment (the first definition, as `getenv`).
pub fn env_value<'a>(env: &'a [String], key: &str) -> Option<&'a str> {
    env.iter()
        .filter_map(|entry| entry.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

/// The paths `execve` should try for `program`, in order, like `execvp`: the program itself
/// when it contains a `/`, else each directory of `path` (an empty entry meaning the working
/// directory).
pub fn exec_candidates(program: &str, path: &str) -> Vec<String> {
    if program.contains('/') {
        return vec![program.to_string()];
    }
    path.split(':')
        .map(|dir| match dir {
            "" => program.to_string(),
            dir => format!("{}/{program}", dir.trim_end_matches('/')),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_gets_defaults_only_when_unset() {
        let env = workload_env(&["A=1".into()], "box", "/root");
        assert_eq!(
            env,
            [
                "A=1".to_string(),
                format!("PATH={DEFAULT_PATH}"),
                "HOSTNAME=box".into(),
                "HOME=/root".into()
            ]
        );
        let env = workload_env(&["PATH=/x".into(), "HOME=/h".into()], "box", "/root");
        assert_eq!(env, ["PATH=/x", "HOME=/h", "HOSTNAME=box"]);
        assert_eq!(env_value(&env, "PATH"), Some("/x"));
        assert_eq!(env_value(&env, "NOPE"), None);
    }

    #[test]
    fn candidates_follow_path() {
        assert_eq!(exec_candidates("/bin/sh", "/usr/bin"), ["/bin/sh"]);
        assert_eq!(exec_candidates("./run", "/usr/bin"), ["./run"]);
        assert_eq!(
            exec_candidates("sh", "/usr/bin:/bin/::/sbin"),
            ["/usr/bin/sh", "/bin/sh", "sh", "/sbin/sh"]
        );
    }
}
