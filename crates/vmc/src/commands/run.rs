//! `vmc run`: resolve an image, build a [`RunSpec`] and hand it to the chosen runtime.

use crate::modes::{runtime_for, ModeOptions};
use crate::trace::{print_trace, TraceFormat};
use crate::units::parse_size;
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;
use vmc_runs::supervisor::Started;
use vmc_runs::{new_run_id, RunRecord, RunStore, Supervision};
use vmc_runtime::env::env_value;
use vmc_runtime::limits::docker_resources;
use vmc_runtime::signals::Interrupted;
use vmc_runtime::{
    BindMount, ExitOutcome, Mode, NetworkMode, RunOption, RunSpec, Runtime, SeccompPolicy,
    Security, Support, Timeline,
};

/// The run mode as the CLI spells it.
#[derive(Clone, Copy, Debug, Default, ValueEnum)]
pub enum ModeArg {
    /// A KVM microVM: static guest RAM and vCPUs, its own kernel.
    Vm,
    /// A namespace container: the host kernel, cgroup limits.
    #[default]
    Container,
}

impl From<ModeArg> for Mode {
    fn from(arg: ModeArg) -> Mode {
        match arg {
            ModeArg::Vm => Mode::Vm,
            ModeArg::Container => Mode::Container,
        }
    }
}

/// The network a run gets.
#[derive(Clone, Copy, Debug, Default, ValueEnum)]
pub enum NetworkArg {
    /// A private network namespace with loopback only.
    #[default]
    None,
    /// The host's network (container mode only).
    Host,
}

/// Options of `vmc run`. `Default` gives what the command line gives when only an image is
/// named (`vmc bench` builds its runs from it).
#[derive(Args, Debug, Default)]
pub struct RunArgs {
    /// Run as a microVM or as a container.
    #[arg(long, value_enum, default_value_t)]
    pub mode: ModeArg,
    /// Set an environment variable (KEY=VALUE, or KEY to copy it from vmc's environment).
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Read environment variables from a file of KEY=VALUE lines.
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_files: Vec<PathBuf>,
    /// Working directory inside the workload.
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    pub workdir: Option<String>,
    /// User to run as: name or uid, optionally :group or :gid.
    #[arg(short = 'u', long = "user", value_name = "USER[:GROUP]")]
    pub user: Option<String>,
    /// Bind a host directory: HOST:TARGET[:ro] (container mode only).
    #[arg(short = 'v', long = "volume", value_name = "HOST:TARGET[:ro]")]
    pub volumes: Vec<String>,
    /// Override the image's entrypoint.
    #[arg(long, value_name = "CMD")]
    pub entrypoint: Option<String>,
    /// A name for the run (default: the first 12 digits of its id).
    #[arg(long)]
    pub name: Option<String>,
    /// Host name inside the workload (default: the short run id).
    #[arg(long)]
    pub hostname: Option<String>,
    /// Remove the run's record when it exits.
    #[arg(long)]
    pub rm: bool,
    /// Run in the background: print the run's id once the workload has started, and keep
    /// its output in a log (`vmc logs`).
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Log options of a detached run: max-size=SIZE caps the log (rotated once).
    #[arg(long = "log-opt", value_name = "KEY=VALUE")]
    pub log_opt: Vec<String>,
    /// Keep stdin open.
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pseudo-terminal.
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Memory: the cgroup limit (container; at least 6m, 0 for none) or the guest RAM (VM; at
    /// least 32m, default 256m).
    #[arg(short = 'm', long, value_name = "SIZE", value_parser = parse_size)]
    pub memory: Option<u64>,
    /// CPUs: the CPU quota (container; 0 for none) or the number of vCPUs, rounded up (VM;
    /// default 1).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub cpus: Option<f64>,
    /// Maximum number of processes (container mode; 0 or -1 for no limit).
    #[arg(long = "pids-limit", value_name = "N", allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,
    /// Network: none (loopback only) or host.
    #[arg(long, value_enum, default_value_t)]
    pub network: NetworkArg,
    /// Add a Linux capability to the default set (NET_ADMIN, CAP_SYS_TIME, ALL; container mode).
    #[arg(long = "cap-add", value_name = "CAP")]
    pub cap_add: Vec<String>,
    /// Drop a Linux capability from the default set (ALL drops every one; container mode).
    #[arg(long = "cap-drop", value_name = "CAP")]
    pub cap_drop: Vec<String>,
    /// Give the workload every capability and device, no seccomp filter and no masked paths
    /// (container mode): the explicit opt-out of confinement.
    #[arg(long)]
    pub privileged: bool,
    /// Security options: seccomp=unconfined, seccomp=FILE.json (Docker's profile format,
    /// container mode), no-new-privileges.
    #[arg(long = "security-opt", value_name = "OPT")]
    pub security_opt: Vec<String>,
    /// Print the run's annotated timeline on stderr when it ends.
    #[arg(long, value_enum, num_args = 0..=1, require_equals = true, default_missing_value = "text")]
    pub trace: Option<TraceFormat>,
    #[command(flatten)]
    pub mode_options: ModeOptions,
    /// The image to run (name[:tag] or an image id prefix), then the command and its
    /// arguments (default: the image's Cmd). Everything after the image is the workload's,
    /// flags included, as with Docker: vmc's own flags go before the image.
    #[arg(
        required = true,
        num_args = 1..,
        trailing_var_arg = true,
        value_names = ["IMAGE", "COMMAND"]
    )]
    pub workload: Vec<String>,
}

impl RunArgs {
    /// The image to run: the first word after vmc's own flags.
    pub fn image(&self) -> &str {
        self.workload.first().map_or("", String::as_str)
    }

    /// The command and its arguments given after the image (empty: the image's own).
    pub fn command(&self) -> &[String] {
        self.workload.get(1..).unwrap_or_default()
    }
}

/// Runs `vmc run`; returns the workload's exit status.
pub fn run(args: RunArgs, started: Instant) -> Result<u8> {
    let mut timeline = Timeline::starting_at(started);
    let mode = Mode::from(args.mode);
    let security = parse_security(&args)?;
    let runtime = runtime_for(mode, &args.mode_options)?;
    check_options(&args, &security, runtime.as_ref())?;
    check_terminal(args.tty, args.interactive, "the workload")?;
    check_detach(&args)?;
    let store = vmc_image::Store::open_default()?;
    let image = store.resolve(args.image())?;
    let rootfs = store.rootfs(&image)?;
    timeline.step(format!(
        "image {} resolved to {}; rootfs cached at {}",
        args.image(),
        &image.id()[..12],
        rootfs.display()
    ));
    let runs = RunStore::open()?;
    let id = new_run_id()?;
    let name = match &args.name {
        Some(name) if runs.name_taken(name)? => {
            bail!("the name {name:?} is already in use: remove that run with `vmc rm {name}` or choose another --name")
        }
        Some(name) => name.clone(),
        None => id[..12].to_string(),
    };
    let mut spec = build_spec(&args, &image, rootfs, &id, runs.run_dir(&id))?;
    spec.security = security;
    let mut record = RunRecord::creating(&name, mode, args.image(), &spec);
    record.detached = args.detach;
    record.auto_remove = args.rm;
    record.log_max_size = log_max_size(&args.log_opt)?;
    let stop_signal = &image.config().stop_signal;
    if !stop_signal.is_empty() {
        record.stop_signal = crate::signals::parse_signal(stop_signal)
            .with_context(|| format!("image {}: its StopSignal", args.image()))?;
    }
    // The spec first: the record is what makes the run visible, complete from the start.
    runs.save_spec(&spec)?;
    if args.detach {
        runs.save(&record)?;
        return run_detached(&runs, &record, runtime.as_ref());
    }
    let supervision = match Supervision::start(runs.clone(), record) {
        Ok(supervision) => supervision,
        Err(err) => {
            runs.remove(&id)?;
            return Err(err.into());
        }
    };
    let result = runtime.run(&spec, &mut timeline, supervision.as_ref());
    let outcome = match result {
        Ok(outcome) => outcome,
        Err(err) => {
            // Nothing ran: leave no record behind (a Docker user would see no container).
            let _ = runtime.cleanup(&id, &spec.run_dir);
            runs.remove(&id)?;
            if let Some(interrupted) = err.downcast_ref::<Interrupted>() {
                eprintln!("vmc: {interrupted}");
                return Ok(interrupted.exit_code() as u8);
            }
            return Err(anyhow::anyhow!(err));
        }
    };
    // The workload ran: from here on its status is what vmc returns, even when the store
    // cannot take the record's last write (a full disk must not turn exit 42 into 125).
    if args.rm {
        // The runtime removes what it keeps in the run directory (a writable layer).
        if let Err(err) = runtime.cleanup(&id, &spec.run_dir) {
            warn(&format!(
                "cannot remove the run's writable layer ({err}): remove the run with `vmc rm {name}`"
            ));
        }
    }
    if let Err(err) = supervision.finish(outcome) {
        warn(&if args.rm {
            format!("cannot remove the run's record ({err:#}): remove it with `vmc rm {name}`")
        } else {
            format!("cannot record the run's exit ({err:#}): vmc ps will show it as dead")
        });
    }
    if outcome == ExitOutcome::OomKilled {
        eprintln!(
            "vmc: the workload was killed by the OOM killer: it exceeded its memory limit of {} (raise it with --memory)",
            match (args.memory, mode) {
                (Some(bytes), _) => crate::units::human_size(bytes),
                // A VM's RAM is its limit, even when -m is not given.
                (None, Mode::Vm) => crate::units::human_size(vmc_vm_runtime::DEFAULT_MEMORY_BYTES),
                (None, Mode::Container) => "the host's".into(),
            }
        );
    }
    if let Some(format) = args.trace {
        print_trace(&timeline, mode, format)?;
    }
    Ok(outcome.exit_code() as u8)
}

/// Starts the detached run of `record` (its spec saved) under a supervisor process of its
/// own; prints its id once the workload has started. A setup failure leaves nothing behind.
fn run_detached(runs: &RunStore, record: &RunRecord, runtime: &dyn Runtime) -> Result<u8> {
    let program = crate::modes::supervisor_program()?;
    match vmc_runs::supervisor::spawn(&program, &record.id) {
        Ok(Started::Up) => {
            println!("{}", record.id);
            Ok(0)
        }
        Ok(Started::Ended(code)) => {
            // The workload could not run (a command not found, say): its one line is in the
            // log, as Docker prints it.
            crate::commands::logs::print_stderr_of(runs, &record.id);
            Ok(code as u8)
        }
        Ok(Started::Interrupted(signal)) => {
            let _ = runtime.cleanup(&record.id, &runs.run_dir(&record.id));
            runs.remove(&record.id)?;
            let interrupted = Interrupted(signal);
            eprintln!("vmc: {interrupted}");
            Ok(interrupted.exit_code() as u8)
        }
        Err(err) => {
            let _ = runtime.cleanup(&record.id, &runs.run_dir(&record.id));
            runs.remove(&record.id)?;
            Err(err.into())
        }
    }
}

/// The log's size cap given by `--log-opt max-size=SIZE`, the only log option vmc knows.
fn log_max_size(options: &[String]) -> Result<Option<u64>> {
    let mut max_size = None;
    for option in options {
        match option.split_once('=') {
            Some(("max-size", size)) => {
                let bytes = parse_size(size)
                    .map_err(|err| anyhow::anyhow!("invalid --log-opt {option:?}: {err}"))?;
                if bytes < 1024 {
                    bail!("invalid --log-opt {option:?}: give a max-size of at least 1k");
                }
                max_size = Some(bytes);
            }
            _ => bail!("invalid --log-opt {option:?}: vmc knows max-size=SIZE (10m, say)"),
        }
    }
    Ok(max_size)
}

/// Refuses what a detached run cannot do: no terminal or stdin reaches it, and its timeline
/// is not printed.
fn check_detach(args: &RunArgs) -> Result<()> {
    if !args.detach {
        if !args.log_opt.is_empty() {
            bail!("--log-opt applies to detached runs only: add -d, or drop --log-opt");
        }
        return Ok(());
    }
    let refused = [
        (args.interactive, "-i"),
        (args.tty, "-t"),
        (args.trace.is_some(), "--trace"),
    ];
    if let Some((_, flag)) = refused.iter().find(|(used, _)| *used) {
        bail!("{flag} cannot be combined with -d in vmc: drop {flag}, or run attached");
    }
    Ok(())
}

/// Prints a one-line warning that does not change vmc's exit status.
fn warn(message: &str) {
    eprintln!("vmc: warning: {}", vmc_runtime::text::escape(message));
}

/// Refuses `-it` when stdin is not a terminal, as Docker does: the input would go through a
/// terminal, which never passes its end on, so `what` (the workload, the command) would wait
/// for more forever.
pub(crate) fn check_terminal(tty: bool, interactive: bool, what: &str) -> Result<()> {
    if tty && interactive && !std::io::stdin().is_terminal() {
        bail!("the input device is not a TTY: drop -t to pipe input into {what} (-i alone), or run vmc from a terminal");
    }
    Ok(())
}

/// The run options this command line uses, with the flag that asked for each.
fn used_options(args: &RunArgs, security: &Security) -> Vec<(RunOption, &'static str)> {
    let mut used = Vec::new();
    let mut add = |used_here: bool, option, flag| {
        if used_here {
            used.push((option, flag));
        }
    };
    add(!args.volumes.is_empty(), RunOption::Volumes, "--volume");
    add(
        args.pids_limit.is_some(),
        RunOption::PidsLimit,
        "--pids-limit",
    );
    add(
        matches!(args.network, NetworkArg::Host),
        RunOption::HostNetwork,
        "--network host",
    );
    add(
        args.mode_options.kernel.is_some(),
        RunOption::Kernel,
        "--kernel",
    );
    add(args.mode_options.console, RunOption::Console, "--console");
    add(args.detach, RunOption::Detach, "-d");
    add(
        args.mode_options.boot_timeout.is_some(),
        RunOption::BootTimeout,
        "--boot-timeout",
    );
    add(
        !security.cap_add.is_empty() || !security.cap_drop.is_empty(),
        RunOption::Capabilities,
        "--cap-add/--cap-drop",
    );
    add(security.privileged, RunOption::Privileged, "--privileged");
    add(
        security.seccomp == SeccompPolicy::Unconfined,
        RunOption::SeccompUnconfined,
        "--security-opt seccomp=unconfined",
    );
    add(
        matches!(security.seccomp, SeccompPolicy::Profile(_)),
        RunOption::SeccompProfile,
        "--security-opt seccomp=FILE",
    );
    add(
        security.no_new_privileges,
        RunOption::NoNewPrivileges,
        "--security-opt no-new-privileges",
    );
    used
}

/// Refuses the flags the chosen runtime cannot honour, instead of silently ignoring them.
fn check_options(args: &RunArgs, security: &Security, runtime: &dyn Runtime) -> Result<()> {
    for (option, flag) in used_options(args, security) {
        if let Support::Refused(why) = runtime.support(option) {
            let mode = match runtime.mode() {
                Mode::Vm => "VM",
                Mode::Container => "container",
            };
            bail!("{flag} is not supported in {mode} mode: {why}");
        }
    }
    Ok(())
}

/// The confinement asked for by `--privileged`, `--cap-add`, `--cap-drop` and `--security-opt`.
fn parse_security(args: &RunArgs) -> Result<Security> {
    let mut security = Security {
        privileged: args.privileged,
        cap_add: args.cap_add.clone(),
        cap_drop: args.cap_drop.clone(),
        ..Security::default()
    };
    for option in &args.security_opt {
        // Docker accepts both `key=value` and the older `key:value`.
        let (key, value) = option
            .split_once(['=', ':'])
            .map_or((option.as_str(), None), |(k, v)| (k, Some(v)));
        match (key, value) {
            ("seccomp", Some("unconfined")) => security.seccomp = SeccompPolicy::Unconfined,
            ("seccomp", Some(path)) if !path.is_empty() => {
                let path = std::fs::canonicalize(path).with_context(|| {
                    format!("--security-opt seccomp={path}: cannot open the profile")
                })?;
                security.seccomp = SeccompPolicy::Profile(path);
            }
            ("no-new-privileges", None | Some("true")) => security.no_new_privileges = true,
            ("no-new-privileges", Some("false")) => security.no_new_privileges = false,
            _ => bail!(
                "invalid --security-opt {option:?}: vmc knows seccomp=unconfined, seccomp=FILE.json and no-new-privileges[=true|false]"
            ),
        }
    }
    Ok(security)
}

/// Combines the image's config with the command line, the way `docker run` does.
pub(crate) fn build_spec(
    args: &RunArgs,
    image: &vmc_image::Image,
    rootfs: PathBuf,
    id: &str,
    run_dir: PathBuf,
) -> Result<RunSpec> {
    let config = image.config();
    let entrypoint = match &args.entrypoint {
        Some(entrypoint) if entrypoint.is_empty() => Vec::new(),
        Some(entrypoint) => vec![entrypoint.clone()],
        None => config.entrypoint.clone(),
    };
    let command = if args.command().is_empty() && args.entrypoint.is_none() {
        config.cmd.clone()
    } else {
        args.command().to_vec()
    };
    let argv: Vec<String> = entrypoint.into_iter().chain(command).collect();
    if argv.is_empty() {
        bail!(
            "no command given and image {} has no Cmd or Entrypoint: add a command after the image name",
            args.image()
        );
    }
    let mut env = config.env.clone();
    for file in &args.env_files {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read env file {}", file.display()))?;
        for line in text.lines().map(str::trim) {
            if !line.is_empty() && !line.starts_with('#') {
                set_env(&mut env, line);
            }
        }
    }
    for entry in &args.env {
        set_env(&mut env, entry);
    }
    if args.tty {
        vmc_runtime::env::set_default_terminal_type(&mut env);
    }
    // The image's /etc/passwd is read once, here: the uid's home goes into the environment
    // (as Docker sets HOME) so the runtimes need not read it again.
    let user = vmc_runtime::user::resolve(args.user.as_deref().unwrap_or(&config.user), &rootfs)?;
    if env_value(&env, "HOME").is_none() {
        env.push(format!("HOME={}", user.home));
    }
    let workdir = args
        .workdir
        .clone()
        .or_else(|| Some(config.working_dir.clone()).filter(|w| !w.is_empty()))
        .unwrap_or_else(|| "/".to_string());
    if !workdir.starts_with('/') {
        bail!("the working directory {workdir:?} is not absolute: give a path starting with /");
    }
    Ok(RunSpec {
        id: id.to_string(),
        image_id: image.id().to_string(),
        rootfs,
        run_dir,
        args: argv,
        env,
        workdir,
        uid: user.uid,
        gid: user.gid,
        hostname: args
            .hostname
            .clone()
            .unwrap_or_else(|| id[..12].to_string()),
        resources: docker_resources(args.memory, args.cpus, args.pids_limit)?,
        network: match args.network {
            NetworkArg::None => NetworkMode::None,
            NetworkArg::Host => NetworkMode::Host,
        },
        mounts: args
            .volumes
            .iter()
            .map(|v| parse_volume(v))
            .collect::<Result<_>>()?,
        tty: args.tty,
        interactive: args.interactive,
        security: Security::default(),
        auto_remove: args.rm,
    })
}

/// Sets `KEY=VALUE` in `env`, replacing an earlier value; a bare `KEY` copies vmc's own value
/// and is ignored when vmc has none (Docker's rule).
pub(crate) fn set_env(env: &mut Vec<String>, entry: &str) {
    let assignment = match entry.split_once('=') {
        Some(_) => entry.to_string(),
        None => match std::env::var(entry) {
            Ok(value) => format!("{entry}={value}"),
            Err(_) => return,
        },
    };
    vmc_runtime::env::set_var(env, assignment);
}

/// Parses `HOST:TARGET[:ro|:rw]`.
fn parse_volume(text: &str) -> Result<BindMount> {
    let parts: Vec<&str> = text.split(':').collect();
    let (host, target, readonly) = match parts.as_slice() {
        [host, target] => (*host, *target, false),
        [host, target, "ro"] => (*host, *target, true),
        [host, target, "rw"] => (*host, *target, false),
        _ => bail!("invalid volume {text:?}: expected HOST:TARGET[:ro]"),
    };
    if !target.starts_with('/') {
        bail!("invalid volume {text:?}: the target {target:?} must be an absolute path");
    }
    let host = std::fs::canonicalize(host)
        .with_context(|| format!("invalid volume {text:?}: host path {host:?} does not exist"))?;
    Ok(BindMount {
        host,
        target: PathBuf::from(target),
        readonly,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_run_args_are_the_command_lines_defaults() {
        #[derive(clap::Parser)]
        struct Run {
            #[command(flatten)]
            args: RunArgs,
        }
        let parsed = <Run as clap::Parser>::parse_from(["run", "busybox"]).args;
        let defaults = RunArgs {
            workload: vec!["busybox".into()],
            ..RunArgs::default()
        };
        assert_eq!(format!("{parsed:?}"), format!("{defaults:?}"));
    }

    /// Parses a `vmc run` command line (without `vmc run`).
    fn parse_run(words: &[&str]) -> Result<RunArgs, clap::Error> {
        #[derive(clap::Parser)]
        struct Run {
            #[command(flatten)]
            args: RunArgs,
        }
        <Run as clap::Parser>::try_parse_from(std::iter::once("run").chain(words.iter().copied()))
            .map(|run| run.args)
    }

    #[test]
    fn everything_after_the_image_is_the_workloads() {
        let args = parse_run(&["-e", "A=1", "busybox", "-e", "FOO=1", "env", "--help"]).unwrap();
        assert_eq!(args.env, ["A=1"]);
        assert_eq!(args.image(), "busybox");
        assert_eq!(args.command(), ["-e", "FOO=1", "env", "--help"]);
        let args = parse_run(&["busybox", "--help"]).unwrap();
        assert_eq!(args.command(), ["--help"]);
        let args = parse_run(&["--rm", "busybox", "--rm", "-it"]).unwrap();
        assert!(args.rm && !args.tty && !args.interactive);
        assert_eq!(args.command(), ["--rm", "-it"]);
    }

    #[test]
    fn vmc_flags_before_the_image_still_parse_and_an_image_is_required() {
        let help = parse_run(&["--help"]).unwrap_err();
        assert_eq!(help.kind(), clap::error::ErrorKind::DisplayHelp);
        assert!(help.to_string().contains("<IMAGE> [COMMAND]..."), "{help}");
        let missing = parse_run(&["-e", "A=1"]).unwrap_err();
        assert_eq!(
            missing.kind(),
            clap::error::ErrorKind::MissingRequiredArgument
        );
    }

    #[test]
    fn env_entries_replace_earlier_values() {
        let mut env = vec!["PATH=/bin".to_string(), "A=1".to_string()];
        set_env(&mut env, "A=2");
        set_env(&mut env, "B=x=y");
        assert_eq!(env, ["PATH=/bin", "A=2", "B=x=y"]);
    }

    #[test]
    fn bare_env_key_copies_or_is_dropped() {
        let mut env = Vec::new();
        set_env(&mut env, "VMC_TEST_SURELY_UNSET_VARIABLE");
        assert!(env.is_empty());
        set_env(&mut env, "PATH");
        assert!(env[0].starts_with("PATH="));
    }

    #[test]
    fn volumes_parse_and_validate() {
        let volume = parse_volume("/tmp:/data:ro").unwrap();
        assert!(volume.readonly);
        assert_eq!(volume.target, PathBuf::from("/data"));
        assert!(parse_volume("/tmp:data").is_err());
        assert!(parse_volume("/surely/missing/dir:/data").is_err());
        assert!(parse_volume("/tmp").is_err());
    }
}
