//! The workload's command line and environment, the way Docker completes them.

/// The PATH a container gets when its image sets none (Docker's default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The workload's environment: the spec's entries plus `PATH`, `HOSTNAME` and `HOME` when
/// the spec does not set them.
pub fn container_env(env: &[String], hostname: &str, home: &str) -> Vec<String> {
    let mut full = env.to_vec();
    let has = |key: &str| {
        env.iter()
            .any(|entry| entry.split_once('=').map(|(k, _)| k) == Some(key))
    };
    if !has("PATH") {
        full.push(format!("PATH={DEFAULT_PATH}"));
    }
    if !has("HOSTNAME") {
        full.push(format!("HOSTNAME={hostname}"));
    }
    if !has("HOME") {
        full.push(format!("HOME={home}"));
    }
    full
}

/// The value of `key` in a `KEY=VALUE` environment.
pub fn env_value<'a>(env: &'a [String], key: &str) -> Option<&'a str> {
    env.iter()
        .filter_map(|entry| entry.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

/// The paths `execve` should try for `program`, in order: the program itself when it contains
/// a slash, else each directory of `path` (an empty entry means the working directory).
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

/// The home directory of `uid` in the image's /etc/passwd text, else `/` (`/root` for root).
pub fn home_of(uid: u32, passwd: &str) -> String {
    passwd
        .lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .find(|fields| fields.len() >= 6 && fields[2].parse() == Ok(uid))
        .map(|fields| fields[5].to_string())
        .filter(|home| !home.is_empty())
        .unwrap_or_else(|| if uid == 0 { "/root" } else { "/" }.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_gets_defaults_only_when_unset() {
        let env = container_env(&["A=1".into()], "box", "/root");
        assert_eq!(
            env,
            [
                "A=1".to_string(),
                format!("PATH={DEFAULT_PATH}"),
                "HOSTNAME=box".into(),
                "HOME=/root".into()
            ]
        );
        let env = container_env(&["PATH=/x".into(), "HOME=/h".into()], "box", "/root");
        assert_eq!(env, ["PATH=/x", "HOME=/h", "HOSTNAME=box"]);
        assert_eq!(env_value(&env, "PATH"), Some("/x"));
        assert_eq!(env_value(&env, "NOPE"), None);
    }

    #[test]
    fn path_lookup_candidates() {
        assert_eq!(exec_candidates("/bin/sh", "/usr/bin"), ["/bin/sh"]);
        assert_eq!(exec_candidates("./run", "/usr/bin"), ["./run"]);
        assert_eq!(
            exec_candidates("sh", "/usr/bin:/bin/::/sbin"),
            ["/usr/bin/sh", "/bin/sh", "sh", "/sbin/sh"]
        );
    }

    #[test]
    fn home_comes_from_passwd() {
        let passwd = "root:x:0:0:root:/root:/bin/sh\nwww:x:33:33::/var/www:/bin/false\n";
        assert_eq!(home_of(0, passwd), "/root");
        assert_eq!(home_of(33, passwd), "/var/www");
        assert_eq!(home_of(1000, passwd), "/");
        assert_eq!(home_of(0, ""), "/root");
    }
}
