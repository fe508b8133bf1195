//! Which namespaces a container gets.

use nix::sched::CloneFlags;
use vmc_runtime::NetworkMode;

/// The namespaces made by the one `clone` that starts the container's first process.
///
/// The cgroup namespace is not among them: it is unshared by the child after the parent has
/// moved it into the run's cgroup, so that the namespace's root is `vmc/<id>`.
pub fn clone_flags(network: NetworkMode, rootless: bool) -> CloneFlags {
    let mut flags = CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC;
    if network == NetworkMode::None {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    if rootless {
        flags |= CloneFlags::CLONE_NEWUSER;
    }
    flags
}

/// The flags as C spells them, e.g. `CLONE_NEWPID|CLONE_NEWNS`, for the trace.
pub fn describe(flags: CloneFlags) -> String {
    const NAMES: [(CloneFlags, &str); 7] = [
        (CloneFlags::CLONE_NEWUSER, "CLONE_NEWUSER"),
        (CloneFlags::CLONE_NEWPID, "CLONE_NEWPID"),
        (CloneFlags::CLONE_NEWNS, "CLONE_NEWNS"),
        (CloneFlags::CLONE_NEWUTS, "CLONE_NEWUTS"),
        (CloneFlags::CLONE_NEWIPC, "CLONE_NEWIPC"),
        (CloneFlags::CLONE_NEWNET, "CLONE_NEWNET"),
        (CloneFlags::CLONE_NEWCGROUP, "CLONE_NEWCGROUP"),
    ];
    NAMES
        .iter()
        .filter(|(flag, _)| flags.contains(*flag))
        .map(|(_, name)| *name)
        .collect::<Vec<_>>()
        .join("|")
}

/// A one-line uid/gid map giving the container id `inside` the host id `outside`.
pub fn single_id_map(inside: u32, outside: u32) -> String {
    format!("{inside} {outside} 1\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_network_unless_host() {
        let none = clone_flags(NetworkMode::None, false);
        assert!(none.contains(CloneFlags::CLONE_NEWNET));
        assert!(!none.contains(CloneFlags::CLONE_NEWUSER));
        let host = clone_flags(NetworkMode::Host, false);
        assert!(!host.contains(CloneFlags::CLONE_NEWNET));
        assert!(host.contains(CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS));
    }

    #[test]
    fn rootless_adds_a_user_namespace() {
        let flags = clone_flags(NetworkMode::None, true);
        assert!(flags.contains(CloneFlags::CLONE_NEWUSER));
        assert_eq!(
            describe(flags),
            "CLONE_NEWUSER|CLONE_NEWPID|CLONE_NEWNS|CLONE_NEWUTS|CLONE_NEWIPC|CLONE_NEWNET"
        );
    }

    #[test]
    fn id_map_is_one_line_one_range() {
        assert_eq!(single_id_map(0, 1000), "0 1000 1\n");
    }
}
