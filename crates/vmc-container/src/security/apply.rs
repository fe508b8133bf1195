//! The confinement steps of the container's child, between clone and exec: raw system calls
//! on data prepared by the parent, without allocating.

use super::capabilities::CapSet;
use nix::errno::Errno;
use seccompiler::sock_filter;

/// `_LINUX_CAPABILITY_VERSION_3`: 64-bit sets in two 32-bit halves.
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Removes every capability outside `keep` from the bounding set (needs CAP_SETPCAP).
pub fn drop_bounding(keep: CapSet) -> nix::Result<()> {
    for cap in (0..64).filter(|c| !keep.contains(*c)) {
        // SAFETY: PR_CAPBSET_DROP takes a capability number and touches no memory.
        let rc = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
        match Errno::result(rc) {
            Ok(_) => {}
            // Past the kernel's last capability.
            Err(Errno::EINVAL) => return Ok(()),
            Err(errno) => return Err(errno),
        }
    }
    Ok(())
}

/// Sets the permitted and effective sets to `set`, the inheritable set to empty, and clears
/// the ambient set.
pub fn set_capabilities(set: CapSet) -> nix::Result<()> {
    let mut header = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    let half = |shift: u32| CapData {
        effective: (set.0 >> shift) as u32,
        permitted: (set.0 >> shift) as u32,
        inheritable: 0,
    };
    let data = [half(0), half(32)];
    // SAFETY: capset reads the header and two data structs, which live on this stack.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) };
    Errno::result(rc)?;
    // SAFETY: PR_CAP_AMBIENT_CLEAR_ALL takes no pointers.
    let rc = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    match Errno::result(rc) {
        // Kernels before 4.3 have no ambient set.
        Ok(_) | Err(Errno::EINVAL) => Ok(()),
        Err(errno) => Err(errno),
    }
}

/// The calling process's permitted set (the most a root run can hand on).
pub fn own_permitted() -> nix::Result<CapSet> {
    let mut header = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: capget writes two data structs into the local array.
    let rc = unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) };
    Errno::result(rc)?;
    Ok(CapSet(
        u64::from(data[0].permitted) | (u64::from(data[1].permitted) << 32),
    ))
}

/// Sets no_new_privs: exec no longer grants privileges (setuid bits, file capabilities).
pub fn set_no_new_privs() -> nix::Result<()> {
    // SAFETY: PR_SET_NO_NEW_PRIVS takes no pointers.
    Errno::result(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) }).map(drop)
}

/// Installs a seccomp filter on the calling thread (without no_new_privs this needs
/// CAP_SYS_ADMIN).
pub fn install_filter(program: &[sock_filter]) -> nix::Result<()> {
    let program_header = libc::sock_fprog {
        len: program.len() as libc::c_ushort,
        // seccompiler's sock_filter has the kernel's layout (repr(C), same fields).
        filter: program.as_ptr().cast::<libc::sock_filter>().cast_mut(),
    };
    // SAFETY: the kernel copies the program from the header and the slice, both alive here.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0,
            &program_header,
        )
    };
    Errno::result(rc).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capget_reads_this_process_permitted_set() {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("CapPrm:")).unwrap();
        let expected = u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap();
        assert_eq!(own_permitted().unwrap(), CapSet(expected));
    }
}
