//! Anonymous memory that is really resident (every page touched) and really returned to the
//! kernel when dropped (munmap), so RSS follows the workload's phases.

/// A private anonymous mapping of whole MiB, every page written once.
pub struct Region {
    addr: *mut libc::c_void,
    len: usize,
}

impl Region {
    /// Maps `mib` MiB and touches every page.
    pub fn allocate(mib: usize) -> Result<Region, String> {
        let len = mib.checked_mul(1 << 20).ok_or("size too large")?;
        if len == 0 {
            return Ok(Region {
                addr: std::ptr::null_mut(),
                len,
            });
        }
        // SAFETY: an anonymous private mapping with no address hint has no preconditions.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(format!(
                "cannot allocate {mib} MiB: {}",
                std::io::Error::last_os_error()
            ));
        }
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as usize;
        for offset in (0..len).step_by(page) {
            // SAFETY: offset < len, inside the writable mapping created above.
            unsafe { std::ptr::write_volatile((addr as *mut u8).add(offset), 1) };
        }
        Ok(Region { addr, len })
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        if self.len > 0 {
            // SAFETY: addr/len describe exactly the mapping made in `allocate`, used by no one else.
            unsafe { libc::munmap(self.addr, self.len) };
        }
    }
}
