//! Bringing up `lo`, the guest's only network interface.

use crate::error::InitError;
use nix::errno::Errno;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Sets the IFF_UP flag on `lo`. A kernel built without IPv4 has nothing to bring up.
pub fn bring_up_loopback() -> Result<(), InitError> {
    // SAFETY: socket takes plain integers and returns a new descriptor or -1.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    let socket = match Errno::result(fd) {
        Ok(fd) => {
            // SAFETY: `fd` is a freshly created descriptor that nothing else owns.
            unsafe { OwnedFd::from_raw_fd(fd) }
        }
        Err(Errno::EAFNOSUPPORT) => return Ok(()),
        Err(errno) => return Err(InitError::Loopback(errno)),
    };
    let mut request = interface_request(b"lo");
    // SAFETY: `request` is a valid ifreq naming `lo`; SIOCGIFFLAGS fills its flags union member.
    let rc = unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFFLAGS, &mut request) };
    Errno::result(rc).map_err(InitError::Loopback)?;
    // SAFETY: SIOCGIFFLAGS just initialised the flags member of the union.
    unsafe { request.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    // SAFETY: `request` is a valid ifreq with the name and the new flags.
    let rc = unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCSIFFLAGS, &request) };
    Errno::result(rc).map(drop).map_err(InitError::Loopback)
}

/// An `ifreq` naming the interface `name` (shorter than IFNAMSIZ), all else zero.
fn interface_request(name: &[u8]) -> libc::ifreq {
    // SAFETY: ifreq is plain old data for which all-zero bytes are a valid value.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, &src) in request.ifr_name.iter_mut().zip(name) {
        *dst = src as libc::c_char;
    }
    request
}
