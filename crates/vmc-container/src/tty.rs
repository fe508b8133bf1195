//! `--tty`: a pseudo-terminal for the workload, opened by vmc, and for a command of
//! `vmc exec -t`, opened in the run's devpts by the command's process and passed to vmc
//! (vmc_runtime::terminal puts vmc's own terminal in raw mode).

use crate::error::ContainerError;
use nix::errno::Errno;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
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
        if let Some(size) = window_size() {
            // SAFETY: the ioctl only reads the winsize.
            unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &size) };
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

/// The window size of vmc's terminal, when stdin is one.
pub fn window_size() -> Option<libc::winsize> {
    // SAFETY: an all-zero winsize is valid; the ioctl only writes it.
    unsafe {
        let mut size: libc::winsize = std::mem::zeroed();
        (libc::ioctl(libc::STDIN_FILENO, libc::TIOCGWINSZ, &mut size) == 0).then_some(size)
    }
}

/// In the child of `vmc exec -t`, inside the run's mount namespace: opens a pty in the run's
/// own devpts (so that `tty` names it, as runc's exec does), sized `size`, sends its master to
/// vmc over `socket` and returns the slave. Does not allocate.
pub fn open_in_run(socket: RawFd, size: Option<&libc::winsize>) -> nix::Result<RawFd> {
    // SAFETY: a NUL-terminated path; the fd is closed below.
    let master = Errno::result(unsafe {
        libc::open(
            c"/dev/ptmx".as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    })?;
    let slave = peer_of(master, size);
    let sent = slave.and_then(|_| send_fd(socket, master));
    // SAFETY: master was opened above; vmc holds its own copy now.
    unsafe { libc::close(master) };
    sent.and(slave)
}

/// Unlocks the pty `master`, sizes it and opens its slave without a path lookup.
fn peer_of(master: RawFd, size: Option<&libc::winsize>) -> nix::Result<RawFd> {
    let unlock: libc::c_int = 0;
    // SAFETY: ioctls on the pty master this process holds, with valid arguments; the slave is
    // a new fd.
    unsafe {
        Errno::result(libc::ioctl(master, libc::TIOCSPTLCK, &unlock))?;
        if let Some(size) = size {
            Errno::result(libc::ioctl(master, libc::TIOCSWINSZ, size))?;
        }
        Errno::result(libc::ioctl(
            master,
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        ))
    }
}

/// Room for one control message carrying one fd, aligned for `cmsghdr`.
#[repr(C, align(8))]
struct FdMessage([u8; 32]);

/// Sends `fd` over the Unix socket `socket` (SCM_RIGHTS, one data byte), from stack buffers.
fn send_fd(socket: RawFd, fd: RawFd) -> nix::Result<()> {
    let mut byte = [0u8; 1];
    let mut control = FdMessage([0; 32]);
    // SAFETY: msghdr and iovec point at the locals above, which outlive the call; the
    // control buffer is aligned and larger than CMSG_SPACE of one int.
    unsafe {
        let mut iov = libc::iovec {
            iov_base: byte.as_mut_ptr().cast(),
            iov_len: 1,
        };
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.0.as_mut_ptr().cast();
        msg.msg_controllen = libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) as usize;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as usize;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), fd);
        Errno::result(libc::sendmsg(socket, &msg, libc::MSG_NOSIGNAL)).map(drop)
    }
}

/// Receives the pty master [`open_in_run`] sent over `socket`, if it sent one.
pub fn receive_master(socket: &OwnedFd) -> Result<Option<OwnedFd>, ContainerError> {
    let mut byte = [0u8; 1];
    let mut iov = [std::io::IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!(RawFd);
    let msg = match nix::sys::socket::recvmsg::<()>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        nix::sys::socket::MsgFlags::MSG_DONTWAIT | nix::sys::socket::MsgFlags::MSG_CMSG_CLOEXEC,
    ) {
        Ok(msg) => msg,
        Err(Errno::EAGAIN) => return Ok(None),
        Err(e) => return Err(ContainerError::sys("receiving the command's pty", e)),
    };
    for cmsg in msg
        .cmsgs()
        .map_err(|e| ContainerError::sys("receiving the command's pty", e))?
    {
        if let nix::sys::socket::ControlMessageOwned::ScmRights(fds) = cmsg {
            if let Some(&fd) = fds.first() {
                // SAFETY: the kernel just installed this fd for this process.
                return Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }));
            }
        }
    }
    Ok(None)
}
