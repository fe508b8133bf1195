//! Helpers shared by the integration tests.

use vmc_protocol::RunConfig;

/// Per-run settings for a VM run of `args` as root in `/`, PATH=/bin, host name `vmc-test`.
pub fn run_config(args: &[&str]) -> RunConfig {
    RunConfig {
        args: args.iter().map(|a| a.to_string()).collect(),
        env: vec!["PATH=/bin".into()],
        workdir: "/".into(),
        uid: 0,
        gid: 0,
        hostname: "vmc-test".into(),
        tty: false,
        interactive: false,
        terminal_size: None,
        root_disks: false,
        etc_files: Vec::new(),
    }
}
