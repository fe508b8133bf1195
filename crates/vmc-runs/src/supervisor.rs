//! The supervisor of a detached run, conmon's role: one small process per run, in a session
//! of its own (a killed `vmc` or a closed terminal leaves it running), that calls
//! `Runtime::run` — so it holds the container's parent side or the VMM —, writes the
//! workload's output to the run's log and records how it ended.
//!
//! The command that starts it ([`spawn`]) executes the small `vmc-supervisor` binary (not a
//! fork of vmc: its pages stay out of the supervisor) and waits on a pipe, the supervisor's
//! stdout, for one line: `started`
//! once the workload's exec succeeded, `exited N` when it ended before that (a command that
//! is not found), or `error MESSAGE` when the setup failed.

use crate::error::{Result, RunsError};
use crate::log::{copy_streams, LogWriter};
use crate::record::RunRecord;
use crate::store::RunStore;
use crate::supervision::Supervision;
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsFd;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use vmc_runtime::signals::{SignalCatcher, ENDING_SETUP};
use vmc_runtime::{ExitOutcome, Mode, Runtime, Timeline};

/// How a detached run's start went, as its supervisor reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Started {
    /// The workload runs.
    Up,
    /// The workload ended before it could run (exec failed): its exit status.
    Ended(i32),
    /// This command was interrupted by the signal before the workload started; the signal
    /// was passed on to the supervisor, which ended the setup as an attached run's.
    Interrupted(Signal),
}

/// Starts the supervisor `program` of run `id` and waits until it reports the workload
/// started, ended, or failed to start (then the error carries the supervisor's one line).
/// While it waits, the signals that end a setup are passed on to the supervisor.
pub fn spawn(program: &Path, id: &str) -> Result<Started> {
    let mut child = Command::new(program)
        .arg(id)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|err| {
            RunsError::io(
                format!("cannot start the supervisor {}", program.display()),
                err,
            )
        })?;
    // Caught only once the supervisor runs: it must not inherit them blocked.
    let signals = SignalCatcher::new().ok();
    let report = child.stdout.take().expect("piped stdout");
    let supervisor = Pid::from_raw(child.id() as i32);
    let (line, interrupted) = read_report(report, signals.as_ref(), supervisor);
    drop(signals);
    // The supervisor outlives this process: it is not waited for (its parent becomes init).
    drop(child);
    let line = line.trim_end();
    match (line.split_once(' ').unwrap_or((line, "")), interrupted) {
        (("started", _), _) => Ok(Started::Up),
        (("exited", code), _) => Ok(Started::Ended(code.parse().unwrap_or(125))),
        (_, Some(signal)) => Ok(Started::Interrupted(signal)),
        (("error", message), None) => Err(RunsError::Setup(message.to_string())),
        (_, None) => Err(RunsError::Setup(
            "the run's supervisor ended without reporting: see `vmc ps -a`".into(),
        )),
    }
}

/// Reads the supervisor's report line, passing the signals that end a setup on to it; the
/// line and the last such signal.
fn read_report(
    report: std::process::ChildStdout,
    signals: Option<&SignalCatcher>,
    supervisor: Pid,
) -> (String, Option<Signal>) {
    let mut interrupted = None;
    let mut line = String::new();
    let mut report = BufReader::new(report);
    loop {
        let mut fds = vec![PollFd::new(report.get_ref().as_fd(), PollFlags::POLLIN)];
        if let Some(signals) = signals {
            fds.push(PollFd::new(signals.fd().as_fd(), PollFlags::POLLIN));
        }
        if matches!(nix::poll::poll(&mut fds, PollTimeout::NONE), Err(err) if err != Errno::EINTR) {
            break;
        }
        let ready = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
        let (reported, signalled) = (ready(&fds[0]), fds.get(1).is_some_and(ready));
        drop(fds);
        if let (true, Some(signals)) = (signalled, signals) {
            while let Some(signal) = signals.next() {
                if ENDING_SETUP.contains(&signal) {
                    interrupted = Some(signal);
                    // Before its runtime catches it, the signal ends the supervisor itself,
                    // which has made nothing yet; after, it ends the setup.
                    let _ = nix::sys::signal::kill(supervisor, signal);
                }
            }
        }
        if reported {
            let _ = report.read_line(&mut line);
            break;
        }
    }
    (line, interrupted)
}

/// The supervisor process's body: runs run `id` of the run store with the runtime that
/// `runtime_for` gives for its mode, its output into the log. Reports to the starter on its
/// stdout (see the module's doc). Returns its exit status.
pub fn supervise(runtime_for: impl FnOnce(Mode) -> Box<dyn Runtime>, id: &str) -> i32 {
    // SAFETY: F_DUPFD_CLOEXEC duplicates fd 1, which the starter gave this process.
    let report_fd = unsafe { libc::fcntl(libc::STDOUT_FILENO, libc::F_DUPFD_CLOEXEC, 3) };
    if report_fd < 0 {
        return 125;
    }
    // SAFETY: the kernel just returned this fd, and nothing else owns it.
    let report = Arc::new(Mutex::new(Some(unsafe { File::from_raw_fd(report_fd) })));
    let opened = RunStore::open().and_then(|store| Ok((store.load(id)?, store)));
    let result = opened.and_then(|(record, store)| {
        let runtime = runtime_for(record.mode);
        supervise_run(runtime.as_ref(), &store, record, &report)
    });
    match result {
        Ok(outcome) => {
            say(&report, &format!("exited {}", outcome.exit_code()));
            0
        }
        Err(err) => {
            say(&report, &format!("error {}", one_line(&err.to_string())));
            125
        }
    }
}

fn supervise_run(
    runtime: &dyn Runtime,
    store: &RunStore,
    record: RunRecord,
    report: &Arc<Mutex<Option<File>>>,
) -> Result<ExitOutcome> {
    let _ = nix::unistd::setsid();
    let _ = std::env::set_current_dir("/");
    let id = record.id.clone();
    let spec = store.load_spec(&id)?;
    let dir = store.run_dir(&id);
    // The workload's stdout and stderr are this process's, pipes into the log.
    let (stdout_read, stdout_write) = pipe()?;
    let (stderr_read, stderr_write) = pipe()?;
    redirect(&stdout_write, libc::STDOUT_FILENO)?;
    redirect(&stderr_write, libc::STDERR_FILENO)?;
    drop((stdout_write, stderr_write));
    let mut log = LogWriter::open(&dir, record.log_max_size)?;
    let logger = std::thread::Builder::new()
        .name("log".into())
        .spawn(move || {
            let _ = vmc_runtime::signals::block_forwarded_in_this_thread();
            copy_streams(stdout_read, stderr_read, &mut log)
        })
        .map_err(|err| RunsError::io("cannot start the log thread", err))?;
    let supervision = Supervision::start(store.clone(), record)?;
    let started_report = Arc::clone(report);
    supervision.on_started(move || say(&started_report, "started"));
    let mut timeline = Timeline::starting_at(std::time::Instant::now());
    let result = runtime.run(&spec, &mut timeline, supervision.as_ref());
    // The workload and all it started are gone: closing these ends the log's input.
    let dev_null =
        File::open("/dev/null").map_err(|err| RunsError::io("cannot open /dev/null", err))?;
    redirect(&dev_null, libc::STDOUT_FILENO)?;
    redirect(&dev_null, libc::STDERR_FILENO)?;
    let logged = logger.join();
    match result {
        Ok(outcome) => {
            if supervision.record().auto_remove {
                // What the runtime keeps in the run directory (a writable layer) goes first.
                runtime
                    .cleanup(&id, &dir)
                    .map_err(|err| RunsError::Setup(err.to_string()))?;
            }
            supervision.finish(outcome)?;
            if let Ok(Err(err)) = logged {
                return Err(err);
            }
            Ok(outcome)
        }
        Err(err) => {
            let _ = runtime.cleanup(&id, &dir);
            Err(RunsError::Setup(err.to_string()))
        }
    }
}

/// Writes the one report line, once: later reports are dropped.
fn say(report: &Mutex<Option<File>>, line: &str) {
    let mut report = report
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(mut file) = report.take() {
        // A starter killed meanwhile closed the pipe: the run goes on all the same.
        let _ = writeln!(file, "{line}");
    }
}

fn one_line(text: &str) -> String {
    text.lines().collect::<Vec<_>>().join("; ")
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|err| RunsError::io("cannot make a pipe for the workload's output", err.into()))
}

/// Makes `target` (0, 1 or 2) a copy of `fd`.
fn redirect(fd: &impl AsRawFd, target: RawFd) -> Result<()> {
    // SAFETY: dup2 of a valid fd onto one of this process's standard fds.
    if unsafe { libc::dup2(fd.as_raw_fd(), target) } < 0 {
        return Err(RunsError::io(
            "cannot redirect the workload's output",
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}
