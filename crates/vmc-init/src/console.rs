//! The console (ttyS0, COM1, which the VMM copies to vmc's stdout): the kernel's messages and
//! the init's own. The workload's stdio is on the channel's streams instead.

use crate::error::InitError;
use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
use nix::unistd::{dup2_stderr, dup2_stdin, dup2_stdout};
use std::os::fd::AsFd;

/// Reopens the console from the freshly mounted /dev as the init's stdio, in raw mode so its
/// messages reach vmc unchanged: the kernel opened the initramfs's own /dev/console node,
/// which the /dev mount hides, and `ttyname` only recognises the visible one.
pub fn reopen() -> Result<(), InitError> {
    let console = open(
        "/dev/console",
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(InitError::Console)?;
    make_raw(&console)
        .and_then(|()| dup2_stdin(&console))
        .and_then(|()| dup2_stdout(&console))
        .and_then(|()| dup2_stderr(&console))
        .map_err(InitError::Console)
}

/// Switches the terminal `fd` to raw mode (no CRLF translation); leaves a descriptor that is
/// not a terminal alone.
fn make_raw<Fd: AsFd>(fd: Fd) -> Result<(), Errno> {
    let mut settings = match tcgetattr(&fd) {
        Ok(settings) => settings,
        Err(Errno::ENOTTY) => return Ok(()),
        Err(errno) => return Err(errno),
    };
    cfmakeraw(&mut settings);
    tcsetattr(&fd, SetArg::TCSANOW, &settings)
}
