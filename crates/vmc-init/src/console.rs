//! The serial console as the workload's stdio.

use crate::error::InitError;
use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
use nix::unistd::{dup2_stderr, dup2_stdin, dup2_stdout};
use std::io::stdout;
use vmc_init::TerminalSize;

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
    let mut settings = match tcgetattr(stdout()) {
        Ok(settings) => settings,
        Err(Errno::ENOTTY) => return Ok(()),
        Err(errno) => return Err(InitError::Console(errno)),
    };
    cfmakeraw(&mut settings);
    tcsetattr(stdout(), SetArg::TCSANOW, &settings).map_err(InitError::Console)
}

/// Sets the console's window size.
fn set_size(size: TerminalSize) -> Result<(), InitError> {
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

/// In the workload's child process (a new session leader): makes the console its controlling
/// terminal for a terminal run, and points stdin at /dev/null unless the run is interactive.
pub fn attach_workload(tty: bool, interactive: bool) -> Result<(), Errno> {
    if tty {
        // SAFETY: TIOCSCTTY takes an integer argument (0: do not steal from another session).
        Errno::result(unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCSCTTY, 0) })?;
    }
    if !interactive {
        let null = open(
            "/dev/null",
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        dup2_stdin(null)?;
    }
    Ok(())
}
