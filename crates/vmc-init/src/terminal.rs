//! The workload's terminal in a `-t` run: a pseudo-terminal whose slave is the workload's
//! controlling terminal and stdio, and whose master the init relays to and from the channel's
//! stdin and stdout streams ([`crate::relay`]).

use crate::error::InitError;
use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt, PtyMaster};
use nix::sys::stat::Mode;
use std::os::fd::{AsRawFd, OwnedFd};
use vmc_protocol::TerminalSize;

/// A pseudo-terminal pair.
pub struct Terminal {
    /// The init's side (non-blocking).
    pub master: PtyMaster,
    /// The workload's side, until the workload has it.
    pub slave: OwnedFd,
}

impl Terminal {
    /// Opens a pseudo-terminal of `size` (if known), in the kernel's cooked defaults (echo,
    /// line editing, Ctrl-C → SIGINT).
    pub fn open(size: Option<TerminalSize>) -> Result<Self, InitError> {
        let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
            .map_err(InitError::Terminal)?;
        grantpt(&master).map_err(InitError::Terminal)?;
        unlockpt(&master).map_err(InitError::Terminal)?;
        let name = ptsname_r(&master).map_err(InitError::Terminal)?;
        let slave = open(
            name.as_str(),
            OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(InitError::Terminal)?;
        set_nonblocking(master.as_raw_fd()).map_err(InitError::Terminal)?;
        if let Some(size) = size {
            set_size(master.as_raw_fd(), size).map_err(InitError::Terminal)?;
        }
        Ok(Terminal { master, slave })
    }
}

/// Sets the window size of the terminal `fd` (the kernel then sends SIGWINCH to its
/// foreground process group).
pub fn set_size(fd: i32, size: TerminalSize) -> Result<(), Errno> {
    let winsize = libc::winsize {
        ws_row: size.rows,
        ws_col: size.cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize from the valid pointer it is given.
    let rc = unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &winsize) };
    Errno::result(rc).map(drop)
}

/// Makes `fd` non-blocking.
pub fn set_nonblocking(fd: i32) -> Result<(), Errno> {
    // SAFETY: F_GETFL/F_SETFL take and return plain integers.
    let flags = Errno::result(unsafe { libc::fcntl(fd, libc::F_GETFL) })?;
    // SAFETY: as above.
    Errno::result(unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) }).map(drop)
}
