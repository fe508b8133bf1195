//! `--tty`: a pseudo-terminal for the workload (vmc_runtime::terminal puts vmc's own
//! terminal in raw mode).

use crate::error::ContainerError;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

/// A pty pair: vmc keeps the master, the workload gets the slave.
#[derive(Debug)]
pub struct Pty {
    /// vmc's side.
    pub master: OwnedFd,
    /// The workload's side (its stdio and /dev/console).
    pub slave: OwnedFd,
    /// The slave's path on the host, e.g. /dev/pts/3.
    pub slave_path: PathBuf,
}

impl Pty {
    /// Opens a pty sized like vmc's terminal (when stdin is one).
    pub fn open() -> Result<Pty, ContainerError> {
        let pty =
            nix::pty::openpty(None, None).map_err(|e| ContainerError::sys("opening a pty", e))?;
        for fd in [&pty.master, &pty.slave] {
            set_cloexec(fd.as_raw_fd())?;
        }
        let slave_path = nix::unistd::ttyname(&pty.slave)
            .map_err(|e| ContainerError::sys("finding the pty's name", e))?;
        let pty = Pty {
            master: pty.master,
            slave: pty.slave,
            slave_path,
        };
        pty.copy_window_size();
        Ok(pty)
    }

    /// Gives the pty the window size of vmc's terminal (the kernel then sends SIGWINCH to the
    /// workload). Does nothing when stdin is not a terminal.
    pub fn copy_window_size(&self) {
        // SAFETY: an all-zero winsize is valid; the ioctls only read/write it.
        unsafe {
            let mut size: libc::winsize = std::mem::zeroed();
            if libc::ioctl(libc::STDIN_FILENO, libc::TIOCGWINSZ, &mut size) == 0 {
                libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &size);
            }
        }
    }
}

fn set_cloexec(fd: RawFd) -> Result<(), ContainerError> {
    nix::fcntl::fcntl(
        // SAFETY: fd is open for the duration of this call.
        unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) },
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )
    .map(drop)
    .map_err(|e| ContainerError::sys("setting close-on-exec", e))
}
