//! The serial lines: the console (ttyS0, COM1, which the VMM copies to vmc's stdout) as the
//! workload's stdio, and ttyS1 (COM2): its output is the workload's stderr (copied to vmc's
//! stderr) for a non-terminal run, its input what the VMM sends: signals, terminal sizes.

use crate::error::InitError;
use crate::stdin_relay;
use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;
use nix::sys::termios::{cfmakeraw, tcdrain, tcgetattr, tcsetattr, ControlFlags, SetArg};
use nix::unistd::{dup2_stderr, dup2_stdin, dup2_stdout};
use std::io::{stderr, stdout};
use std::os::fd::{AsFd, OwnedFd};
use vmc_protocol::TerminalSize;

/// The second serial line (COM2, I/O port 0x2f8): the VMM copies its output to vmc's stderr
/// and sends signals and terminal sizes on it ([`vmc_runtime::guest_control`]).
const SECOND_LINE: &str = "/dev/ttyS1";

/// Reopens the console from the freshly mounted /dev as the init's stdio: the kernel opened
/// the initramfs's own /dev/console node, which the /dev mount hides, and `ttyname` only
/// recognises the visible one.
pub fn reopen() -> Result<(), InitError> {
    let console = open(
        "/dev/console",
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(InitError::Console)?;
    dup2_stdin(&console)
        .and_then(|()| dup2_stdout(&console))
        .and_then(|()| dup2_stderr(&console))
        .map_err(InitError::Console)
}

/// Prepares the console for the run: a terminal run keeps the kernel's cooked defaults (echo,
/// line editing, Ctrl-C → SIGINT) and gets the host terminal's size; otherwise the line is made
/// raw so the workload's bytes pass unchanged in both directions.
pub fn configure(tty: bool, size: Option<TerminalSize>) -> Result<(), InitError> {
    if tty {
        return size.map_or(Ok(()), set_size);
    }
    make_raw(stdout()).map_err(InitError::Console)
}

/// For a non-terminal run, makes [`SECOND_LINE`] the init's stderr — raw like the console, so
/// bytes pass unchanged — which the workload inherits: its stderr reaches vmc's stderr, apart
/// from its stdout. A terminal run keeps stderr on the console, as `docker run -t` merges the
/// two streams. If the line cannot be used, stderr stays on the console, with a warning there.
pub fn separate_stderr(tty: bool) {
    if tty {
        return;
    }
    if let Err(errno) = open_stderr_line() {
        eprintln!(
            "vmc-init: opening {SECOND_LINE}: {errno}; the workload's stderr goes to stdout (the guest kernel needs CONFIG_SERIAL_8250_RUNTIME_UARTS >= 2)"
        );
    }
}

/// Opens [`SECOND_LINE`] in raw mode as stderr.
fn open_stderr_line() -> Result<(), Errno> {
    // Write-only: the line's input is the VMM's control messages, not for the workload.
    dup2_stderr(open_second_line(OFlag::O_WRONLY)?)
}

/// Opens [`SECOND_LINE`] in raw mode, to read what the VMM sends (signals, terminal sizes);
/// `None` (with a warning on stderr) if it cannot be used, and the workload then gets no
/// signals from vmc.
pub fn open_control_line() -> Option<OwnedFd> {
    open_second_line(OFlag::O_RDONLY)
        .inspect_err(|errno| {
            eprintln!("vmc-init: opening {SECOND_LINE}: {errno}; signals sent to vmc will not reach the workload");
        })
        .ok()
}

/// Opens [`SECOND_LINE`] for `access` (`O_RDONLY` or `O_WRONLY`) in raw mode.
fn open_second_line(access: OFlag) -> Result<OwnedFd, Errno> {
    let line = open(
        SECOND_LINE,
        access | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    make_raw(&line)?;
    Ok(line)
}

/// Waits until everything written to stdout and stderr (the serial lines) has reached the
/// VMM, so no output is lost when the init reports the status and resets the VM. Best effort:
/// a descriptor that is not a terminal, or fails, is skipped.
pub fn drain() {
    let _ = tcdrain(stdout());
    let _ = tcdrain(stderr());
}

/// Switches the terminal `fd` to raw mode (no echo, no CRLF translation, no signals) with
/// hardware flow control: when the guest's input buffer fills up, the UART driver lowers RTS
/// and the VMM holds the rest of stdin back. Leaves a descriptor that is not a terminal alone.
fn make_raw<Fd: AsFd>(fd: Fd) -> Result<(), Errno> {
    let mut settings = match tcgetattr(&fd) {
        Ok(settings) => settings,
        Err(Errno::ENOTTY) => return Ok(()),
        Err(errno) => return Err(errno),
    };
    cfmakeraw(&mut settings);
    settings.control_flags |= ControlFlags::CRTSCTS;
    tcsetattr(&fd, SetArg::TCSANOW, &settings)
}

/// Sets the console's window size.
pub fn set_size(size: TerminalSize) -> Result<(), InitError> {
    let winsize = libc::winsize {
        ws_row: size.rows,
        ws_col: size.cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize from the valid pointer it is given.
    let rc = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCSWINSZ, &winsize) };
    Errno::result(rc).map(drop).map_err(InitError::Console)
}

/// Where the workload's stdin comes from.
pub enum WorkloadStdin {
    /// `/dev/null` (the run is not interactive).
    Null,
    /// The console (a terminal run: the keys typed on the host).
    Console,
    /// A pipe the stdin relay fills ([`crate::stdin_relay`]).
    Pipe(OwnedFd),
}

impl WorkloadStdin {
    /// The stdin a run's settings ask for; starts the relay for a non-terminal interactive run.
    pub fn for_run(tty: bool, interactive: bool) -> Result<Self, InitError> {
        Ok(match (interactive, tty) {
            (false, _) => WorkloadStdin::Null,
            (true, true) => WorkloadStdin::Console,
            (true, false) => WorkloadStdin::Pipe(stdin_relay::start()?),
        })
    }
}

/// In the workload's child process (a new session leader): makes the console its controlling
/// terminal for a terminal run, and connects its stdin.
pub fn attach_workload(tty: bool, stdin: &WorkloadStdin) -> Result<(), Errno> {
    if tty {
        // SAFETY: TIOCSCTTY takes an integer argument (0: do not steal from another session).
        Errno::result(unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCSCTTY, 0) })?;
    }
    match stdin {
        WorkloadStdin::Console => Ok(()),
        WorkloadStdin::Pipe(pipe) => dup2_stdin(pipe),
        WorkloadStdin::Null => {
            let null = open(
                "/dev/null",
                OFlag::O_RDONLY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )?;
            dup2_stdin(null)
        }
    }
}
