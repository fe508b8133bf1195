//! The workload's `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf`, with the content
//! Docker gives a container, built once for both modes (a container binds them from its run
//! directory, a VM's init writes them in the guest).

use crate::NetworkMode;
use std::path::Path;

/// Where the host's resolver configuration normally lives.
pub const HOST_RESOLV_CONF: &str = "/etc/resolv.conf";

/// What systemd-resolved lists as the real upstream servers when `/etc/resolv.conf` only
/// names its local stub (Docker reads this file then, as vmc does).
pub const SYSTEMD_RESOLVED_UPSTREAM: &str = "/run/systemd/resolve/resolv.conf";

/// The host's hosts file, copied for `--network host` as Docker does.
pub const HOST_HOSTS: &str = "/etc/hosts";

/// The nameservers Docker falls back to when the host names none the workload can reach.
pub const DEFAULT_NAMESERVERS: [&str; 2] = ["8.8.8.8", "8.8.4.4"];

/// Docker's `/etc/hosts` for a container without an address of its own: localhost, IPv4 and
/// IPv6, and the IPv6 multicast names.
pub const LOCALHOST_HOSTS: &str = "127.0.0.1\tlocalhost\n\
::1\tlocalhost ip6-localhost ip6-loopback\n\
fe00::\tip6-localnet\n\
ff00::\tip6-mcastprefix\n\
ff02::1\tip6-allnodes\n\
ff02::2\tip6-allrouters\n";

/// The files' names in `/etc`, in the order of [`EtcFiles::files`].
pub const NAMES: [&str; 3] = ["hosts", "hostname", "resolv.conf"];

/// The three files' content for one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcFiles {
    /// `/etc/hosts`.
    pub hosts: String,
    /// `/etc/hostname`: the run's host name and a newline.
    pub hostname: String,
    /// `/etc/resolv.conf`.
    pub resolv_conf: String,
}

/// The host files the content is derived from (`None`: the host has no such file).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostFiles {
    /// The host's `/etc/hosts`.
    pub hosts: Option<String>,
    /// The host's resolver configuration, and the path it was read from.
    pub resolv_conf: Option<(String, String)>,
}

impl HostFiles {
    /// Reads this host's files. Like Docker, when `/etc/resolv.conf` names only
    /// systemd-resolved's stub (127.0.0.53) the upstream servers' file is read instead.
    pub fn read() -> HostFiles {
        let read = |path: &str| std::fs::read_to_string(Path::new(path)).ok();
        let resolv_conf = match read(HOST_RESOLV_CONF) {
            Some(text) if only_resolved_stub(&text) => read(SYSTEMD_RESOLVED_UPSTREAM)
                .map(|upstream| (upstream, SYSTEMD_RESOLVED_UPSTREAM.to_string()))
                .or(Some((text, HOST_RESOLV_CONF.to_string()))),
            Some(text) => Some((text, HOST_RESOLV_CONF.to_string())),
            None => None,
        };
        HostFiles {
            hosts: read(HOST_HOSTS),
            resolv_conf,
        }
    }
}

impl EtcFiles {
    /// The files for a run named `hostname` on `network`, from the host's `host` files:
    /// Docker's content. With its own network namespace (`none`, and always in a VM) the
    /// workload gets the localhost lines and the host's resolver configuration without its
    /// loopback and IPv6 nameservers, which cannot answer there (Docker's 8.8.8.8 and 8.8.4.4
    /// when none is left); with the host's network, copies of the host's two files.
    pub fn for_run(hostname: &str, network: NetworkMode, host: &HostFiles) -> EtcFiles {
        let (hosts, resolv_conf) = match network {
            NetworkMode::Host => (
                host.hosts.clone().unwrap_or_else(|| LOCALHOST_HOSTS.into()),
                host.resolv_conf
                    .as_ref()
                    .map(|(text, _)| text.clone())
                    .unwrap_or_default(),
            ),
            NetworkMode::None => (
                LOCALHOST_HOSTS.to_string(),
                own_namespace_resolv_conf(host.resolv_conf.as_ref()),
            ),
        };
        EtcFiles {
            hosts,
            hostname: format!("{hostname}\n"),
            resolv_conf,
        }
    }

    /// The files by name in `/etc`, in a fixed order.
    pub fn files(&self) -> [(&'static str, &str); 3] {
        let [hosts, hostname, resolv_conf] = NAMES;
        [
            (hosts, &self.hosts),
            (hostname, &self.hostname),
            (resolv_conf, &self.resolv_conf),
        ]
    }
}

/// Whether a resolv.conf's only nameserver is systemd-resolved's local stub.
fn only_resolved_stub(text: &str) -> bool {
    let servers: Vec<&str> = directives(text)
        .filter_map(|(key, rest)| (key == "nameserver").then_some(rest))
        .collect();
    servers == ["127.0.0.53"]
}

/// A resolv.conf's directive lines as (keyword, the rest), comments and blank lines left out.
fn directives(text: &str) -> impl Iterator<Item = (&str, &str)> {
    text.lines()
        .filter(|line| !line.starts_with(['#', ';']))
        .filter_map(|line| {
            let line = line.trim();
            let (key, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            (!key.is_empty()).then_some((key, rest.trim()))
        })
}

/// Docker's resolv.conf for a network namespace of the workload's own (its "legacy
/// network" rule): the host's nameservers minus loopback and IPv6 ones, or Docker's defaults
/// when none is left; the last `search`, every `options`, other lines kept.
fn own_namespace_resolv_conf(host: Option<&(String, String)>) -> String {
    let (text, source) = host.map_or(("", HOST_RESOLV_CONF), |(t, s)| (t.as_str(), s.as_str()));
    let mut nameservers = Vec::new();
    let mut search = None;
    let mut options = Vec::new();
    let mut other = Vec::new();
    for (key, rest) in directives(text) {
        match key {
            "nameserver" => {
                let address = rest.split_whitespace().next().unwrap_or_default();
                if let Ok(ip) = address.parse::<std::net::IpAddr>() {
                    if ip.is_ipv4() && !ip.is_loopback() {
                        nameservers.push(ip.to_string());
                    }
                }
            }
            // `domain` is the obsolete name of `search`; the last one counts.
            "search" | "domain" if !rest.is_empty() => search = Some(rest.to_string()),
            "options" if !rest.is_empty() => options.push(rest.to_string()),
            "search" | "domain" | "options" => {}
            _ => other.push(format!("{key} {rest}").trim_end().to_string()),
        }
    }
    let defaulted = nameservers.is_empty();
    if defaulted {
        nameservers = DEFAULT_NAMESERVERS.iter().map(|s| s.to_string()).collect();
    }
    let mut out = String::from("# Generated by vmc from the host's resolver configuration.\n\n");
    for server in &nameservers {
        out.push_str(&format!("nameserver {server}\n"));
    }
    if let Some(search) = search {
        out.push_str(&format!("search {search}\n"));
    }
    if !options.is_empty() {
        out.push_str(&format!("options {}\n", options.join(" ")));
    }
    for line in other {
        out.push_str(&line);
        out.push('\n');
    }
    out.push_str(&format!(
        "\n# Based on host file: '{source}' (loopback and IPv6 nameservers removed)\n"
    ));
    if defaulted {
        out.push_str("# Used default nameservers.\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(resolv: &str) -> HostFiles {
        HostFiles {
            hosts: Some("127.0.0.1 localhost\n10.0.0.5 myhost\n".into()),
            resolv_conf: Some((resolv.into(), HOST_RESOLV_CONF.into())),
        }
    }

    #[test]
    fn own_network_gets_localhost_lines_and_reachable_nameservers() {
        let files = EtcFiles::for_run(
            "abc123",
            NetworkMode::None,
            &host("# comment\nnameserver 127.0.0.1\nnameserver 10.1.2.3\nnameserver ::1\nnameserver 2001:db8::1\nsearch a.example b.example\nsearch c.example\noptions ndots:2\noptions edns0\nsortlist 10.0.0.0\n"),
        );
        assert_eq!(files.hosts, LOCALHOST_HOSTS);
        assert!(files
            .hosts
            .starts_with("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"));
        assert_eq!(files.hostname, "abc123\n");
        let directives: Vec<&str> = files
            .resolv_conf
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        assert_eq!(
            directives,
            [
                "nameserver 10.1.2.3",
                "search c.example",
                "options ndots:2 edns0",
                "sortlist 10.0.0.0"
            ]
        );
        assert!(!files.resolv_conf.contains("default nameservers"));
    }

    #[test]
    fn only_loopback_nameservers_fall_back_to_dockers_defaults() {
        for resolv in [
            "nameserver 127.0.0.53\n",
            "",
            "nameserver 127.0.0.11\noptions edns0\n",
        ] {
            let files = EtcFiles::for_run("box", NetworkMode::None, &host(resolv));
            let servers: Vec<&str> = files
                .resolv_conf
                .lines()
                .filter(|l| l.starts_with("nameserver "))
                .collect();
            assert_eq!(
                servers,
                ["nameserver 8.8.8.8", "nameserver 8.8.4.4"],
                "{resolv:?}"
            );
            assert!(files.resolv_conf.contains("# Used default nameservers."));
        }
        let files = EtcFiles::for_run("box", NetworkMode::None, &HostFiles::default());
        assert!(files.resolv_conf.contains("nameserver 8.8.8.8\n"));
    }

    #[test]
    fn host_network_copies_the_hosts_files() {
        let files = EtcFiles::for_run("box", NetworkMode::Host, &host("nameserver 127.0.0.53\n"));
        assert_eq!(files.hosts, "127.0.0.1 localhost\n10.0.0.5 myhost\n");
        assert_eq!(files.resolv_conf, "nameserver 127.0.0.53\n");
        assert_eq!(files.hostname, "box\n");
        let names: Vec<&str> = files.files().iter().map(|(name, _)| *name).collect();
        assert_eq!(names, ["hosts", "hostname", "resolv.conf"]);
    }

    #[test]
    fn the_resolved_stub_alone_is_recognised() {
        assert!(only_resolved_stub(
            "# x\nnameserver 127.0.0.53\noptions edns0\n"
        ));
        assert!(!only_resolved_stub(
            "nameserver 127.0.0.53\nnameserver 10.0.0.1\n"
        ));
        assert!(!only_resolved_stub("nameserver 10.0.0.1\n"));
    }
}
