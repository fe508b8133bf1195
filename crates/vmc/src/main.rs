//! `vmc`: run one image as a KVM microVM or as a Linux container, and measure both.

mod commands;
mod format;
mod modes;
mod signals;
mod trace;
mod units;

use clap::{CommandFactory, Parser, Subcommand};
use std::process::ExitCode;
use std::time::Instant;
use vmc_runtime::outcome::EXIT_VMC_FAILED;

/// Run one image as a KVM microVM or as a Linux namespace container, and measure both.
#[derive(Parser)]
#[command(name = "vmc", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands; each lives in its own module under `commands/`.
#[derive(Subcommand)]
enum Command {
    /// Run a command in a new microVM or container made from an image.
    Run(Box<commands::run::RunArgs>),
    /// Run a command in a running container (its namespaces, cgroup and confinement).
    Exec(commands::exec::ExecArgs),
    /// List runs.
    Ps(commands::ps::PsArgs),
    /// Remove runs and whatever they left behind (-f: stop them first).
    Rm(commands::ps::RmArgs),
    /// Print a detached run's output.
    Logs(commands::logs::LogsArgs),
    /// Stop runs: their stop signal (the image's StopSignal, or SIGTERM), SIGKILL after -t.
    Stop(commands::lifecycle::StopArgs),
    /// Send a signal to runs' workloads (SIGKILL by default).
    Kill(commands::lifecycle::KillArgs),
    /// Wait until runs end, and print their exit statuses.
    Wait(commands::lifecycle::WaitArgs),
    /// Start exited runs again, detached.
    Start(commands::lifecycle::StartArgs),
    /// Stop runs, then start them again.
    Restart(commands::lifecycle::StopArgs),
    /// Manage runs (prune, inspect).
    #[command(subcommand)]
    Container(commands::ps::ContainerCommand),

    /// Import an image from a docker-archive, OCI layout or root filesystem.
    Import(commands::image::ImportArgs),
    /// List images.
    Images(commands::image::ImagesArgs),
    /// Show a run's or an image's details as JSON (a run first, as Docker looks them up).
    Inspect(commands::ps::InspectAnyArgs),
    /// Remove images.
    Rmi(commands::image::RmiArgs),
    /// Give an image another name: vmc tag SOURCE TARGET[:TAG].
    Tag(commands::image::TagArgs),
    /// Import every image of a docker-archive or OCI archive: vmc load -i FILE, or vmc load < FILE.
    Load(commands::image::LoadArgs),
    /// Manage images (ls, import, load, inspect, rm, tag, prune).
    #[command(subcommand)]
    Image(commands::image::ImageCommand),
    /// Run an image as a microVM and as a container, alternately, and report the differences.
    Bench(commands::bench::BenchArgs),
    /// Check what this host offers VM and container mode (KVM, guest kernel, cgroups, ...).
    Doctor(commands::doctor::DoctorArgs),
    /// Disk usage and cleanup of the whole store (df, prune).
    #[command(subcommand)]
    System(commands::system::SystemCommand),
    /// Show vmc's version, the host kernel and the guest kernel.
    Version(commands::shell::VersionArgs),
    /// Print a shell completion script: vmc completion bash|zsh|fish.
    Completion(commands::shell::CompletionArgs),
}

fn main() -> ExitCode {
    let started = Instant::now();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // Help and version go to stdout with status 0; usage errors exit 125 like Docker.
            let status = if err.use_stderr() { EXIT_VMC_FAILED } else { 0 };
            let _ = err.print();
            return ExitCode::from(status as u8);
        }
    };
    if cli.command.only_reads_and_prints() {
        die_quietly_on_a_closed_pipe();
    }
    match cli.command.execute(started) {
        Ok(status) => ExitCode::from(status),
        Err(err) => {
            // Errors quote names and messages from images and guests: never raw to a terminal.
            eprintln!(
                "vmc: {}",
                vmc_runtime::text::escape_lines(&format!("{err:#}"))
            );
            ExitCode::from(EXIT_VMC_FAILED as u8)
        }
    }
}

/// Gives SIGPIPE its default action back (Rust ignores it), so that `vmc ps | head` ends quietly
/// when `head` closes the pipe, as Docker's CLI and other Unix tools do, instead of panicking
/// in `println!`.
fn die_quietly_on_a_closed_pipe() {
    // SAFETY: called before any thread is started; SIG_DFL is a valid disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

impl Command {
    /// Whether the subcommand only reads records and prints them: such a command may die of
    /// SIGPIPE half-way without leaving anything behind. Commands that run, change or remove
    /// something keep SIGPIPE ignored and finish their work.
    fn only_reads_and_prints(&self) -> bool {
        use commands::image::ImageCommand;
        use commands::ps::ContainerCommand;
        use commands::system::SystemCommand;
        matches!(
            self,
            Command::Ps(_)
                | Command::Logs(_)
                | Command::Images(_)
                | Command::Inspect(_)
                | Command::Version(_)
                | Command::Completion(_)
                | Command::Image(ImageCommand::Ls(_) | ImageCommand::Inspect(_))
                | Command::Container(ContainerCommand::Inspect(_))
                | Command::System(SystemCommand::Df)
        )
    }

    /// Runs the subcommand (vmc started at `started`); returns the process exit status.
    fn execute(self, started: Instant) -> anyhow::Result<u8> {
        match self {
            Command::Run(args) => commands::run::run(*args, started),
            Command::Exec(args) => commands::exec::exec(args),
            Command::Ps(args) => commands::ps::ps(args),
            Command::Rm(args) => commands::ps::rm(args),
            Command::Logs(args) => commands::logs::logs(args),
            Command::Stop(args) => commands::lifecycle::stop(args),
            Command::Kill(args) => commands::lifecycle::kill(args),
            Command::Wait(args) => commands::lifecycle::wait(args),
            Command::Start(args) => commands::lifecycle::start(args),
            Command::Restart(args) => commands::lifecycle::restart(args),
            Command::Container(command) => commands::ps::container(command),
            Command::Import(args) => commands::image::import(args),
            Command::Images(args) => commands::image::images(args),
            Command::Inspect(args) => commands::ps::inspect_run_or_image(args),
            Command::Rmi(args) => commands::image::rmi(args),
            Command::Tag(args) => commands::image::tag(args),
            Command::Load(args) => commands::image::load(args),
            Command::Image(command) => commands::image::image(command),
            Command::Bench(args) => commands::bench::bench(args),
            Command::Doctor(args) => commands::doctor::doctor(args),
            Command::System(command) => commands::system::system(command),
            Command::Version(args) => commands::shell::version(args),
            Command::Completion(args) => commands::shell::completion(args, Cli::command()),
        }
    }
}
