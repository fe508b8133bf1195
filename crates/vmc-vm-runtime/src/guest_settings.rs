//! What the guest is told about the run: its per-run settings and what the channel carries.

use crate::error::VmRuntimeError;
use vmc_protocol::{EtcFile, RunConfig, TerminalSize};
use vmc_runtime::env::workload_env;
use vmc_runtime::etc_files::{EtcFiles, HostFiles};
use vmc_runtime::terminal::window_size;
use vmc_runtime::user::home_for;
use vmc_runtime::RunSpec;
use vmc_vm::VsockConfig;

/// The guest's per-run settings. HOME comes from the spec's environment (`vmc run` puts it
/// there) or else from the image's /etc/passwd, read inside the image.
pub fn run_config(spec: &RunSpec) -> Result<RunConfig, VmRuntimeError> {
    let home = home_for(&spec.env, &spec.rootfs, spec.uid)?;
    Ok(RunConfig {
        args: spec.args.clone(),
        env: workload_env(&spec.env, &spec.hostname, &home),
        workdir: spec.workdir.clone(),
        uid: spec.uid,
        gid: spec.gid,
        hostname: spec.hostname.clone(),
        tty: spec.tty,
        interactive: spec.interactive,
        terminal_size: spec
            .tty
            .then(window_size)
            .flatten()
            .map(|(rows, cols)| TerminalSize { rows, cols }),
        // The runtime always attaches the image's disk and a scratch disk (`disks`).
        root_disks: true,
        // A VM's network is its own loopback, as a container's with `--network none`.
        etc_files: EtcFiles::for_run(&spec.hostname, spec.network, &HostFiles::read())
            .files()
            .into_iter()
            .map(|(name, content)| EtcFile {
                name: name.into(),
                content: content.into(),
            })
            .collect(),
    })
}

/// What the host↔guest channel carries for the run besides the workload's output: vmc's
/// stdin with `-i`, the signals vmc receives, and with `-t` its window sizes.
pub fn channel_config(spec: &RunSpec) -> VsockConfig {
    VsockConfig {
        stdin: spec.interactive,
        forward_signals: true,
        terminal: spec.tty,
    }
}
