//! `vmc-workload confinement`: a probe of what the workload may do, one `key=value` line per
//! check, for the confinement suite (crates/vmc/tests/confinement.rs).
//!
//! Values are `ok`, an errno name (`EPERM`, `EROFS`, ...), `signal:N` when a check's process was
//! killed (a seccomp profile with SCMP_ACT_KILL), or a number / short text. Keys are stable:
//!
//! - `CapInh CapPrm CapEff CapBnd CapAmb Seccomp NoNewPrivs` as in /proc/self/status; `uid`, `euid`.
//! - `syscall.NAME`: the result of one harmless call (each in a forked child, so a call that
//!   succeeds, e.g. unshare, changes nothing for the next checks).
//! - `mknod.DEV` / `open.DEV`: mknod of a host device node in /dev, then open O_RDWR of it.
//! - `mount.FS`: mounting a cgroup filesystem on /tmp (unmounted at once if it worked).
//! - `write.PATH`: open(PATH, O_WRONLY|O_APPEND). Nothing is ever written or truncated: the probe
//!   may run privileged.
//! - `value.PATH`: the first line of a cgroup limit file.
//! - `rdonly.PATH`: 1 if PATH is on a read-only mount (statvfs), else 0.
//! - `masked.PATH`: `yes` if PATH is on another filesystem than its parent directory (something
//!   is mounted over it), `no` otherwise; `content.PATH`: bytes readable (at most 4096) for a
//!   file, entries for a directory.
//! - `cgroup.paths`: the distinct cgroup paths in /proc/self/cgroup, comma-separated.

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use nix::sys::statvfs::{statvfs, FsFlags};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult};
use std::collections::BTreeSet;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

/// Host device nodes to re-create: name, major, minor.
const DEVICES: [(&str, u64, u64); 2] = [("kvm", 10, 232), ("kmsg", 1, 11)];

/// Files a confined workload must not be able to open for writing.
const WRITE_TARGETS: [&str; 8] = [
    "/proc/sys/kernel/core_pattern",
    "/proc/sysrq-trigger",
    "/proc/irq/default_smp_affinity",
    "/proc/bus/pci/devices",
    "/sys/fs/cgroup/memory.max",
    "/sys/fs/cgroup/pids.max",
    "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    "/sys/fs/cgroup/pids/pids.max",
];

/// The run's own cgroup limits, cgroup v2 and v1 names.
const LIMIT_FILES: [&str; 4] = [
    "/sys/fs/cgroup/memory.max",
    "/sys/fs/cgroup/pids.max",
    "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    "/sys/fs/cgroup/pids/pids.max",
];

/// Docker's read-only paths, plus /sys and the cgroup filesystem.
const READ_ONLY: [&str; 7] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
    "/sys",
    "/sys/fs/cgroup",
];

/// Docker's masked paths.
const MASKED: [&str; 11] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Runs every check and prints its line.
pub fn probe() {
    status();
    // SAFETY: getuid/geteuid have no preconditions and cannot fail.
    let (uid, euid) = unsafe { (libc::getuid(), libc::geteuid()) };
    line("uid", uid);
    line("euid", euid);
    syscalls();
    for (name, major, minor) in DEVICES {
        device(name, major, minor);
    }
    for (name, fstype, data) in [
        ("cgroup_devices", "cgroup", Some("devices")),
        ("cgroup_memory", "cgroup", Some("memory")),
        ("cgroup2", "cgroup2", None),
    ] {
        line(
            &format!("mount.{name}"),
            in_child(|| mount_cgroup(fstype, data)),
        );
    }
    for path in WRITE_TARGETS {
        line(&format!("write.{path}"), open_for_append(path));
    }
    for path in LIMIT_FILES {
        line(&format!("value.{path}"), first_line(path));
    }
    for path in READ_ONLY {
        let value = match statvfs(path) {
            Ok(fs) => u8::from(fs.flags().contains(FsFlags::ST_RDONLY)).to_string(),
            Err(errno) => name(errno),
        };
        line(&format!("rdonly.{path}"), value);
    }
    for path in MASKED {
        line(&format!("masked.{path}"), masked(path));
        line(&format!("content.{path}"), content(path));
    }
    line("cgroup.paths", cgroup_paths());
}

/// The capability sets, seccomp mode and no_new_privs flag of /proc/self/status.
fn status() {
    const KEYS: [&str; 7] = [
        "CapInh",
        "CapPrm",
        "CapEff",
        "CapBnd",
        "CapAmb",
        "Seccomp",
        "NoNewPrivs",
    ];
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    for key in KEYS {
        let value = text
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
            .map_or("missing", str::trim);
        line(key, value);
    }
}

/// One check: its errno (0 = ok).
type Check = fn() -> Errno;

/// Calls Docker's default profile denies (and two it allows), each in its own child.
fn syscalls() {
    let checks: [(&str, Check); 11] = [
        ("mount_tmpfs", mount_tmpfs),
        ("umount2", umount_usr),
        ("unshare_newns", || {
            errno_of(unshare(CloneFlags::CLONE_NEWNS))
        }),
        ("unshare_newuser", || {
            errno_of(unshare(CloneFlags::CLONE_NEWUSER))
        }),
        ("setns_uts", setns_uts),
        ("keyctl", keyctl),
        ("add_key", add_key),
        ("bpf", bpf),
        ("open_by_handle_at", open_by_handle_at),
        ("uname", uname),
        ("getcwd", getcwd),
    ];
    for (key, check) in checks {
        line(&format!("syscall.{key}"), in_child(check));
    }
}

/// /usr is not a mount point: EINVAL where unmounting is allowed, EPERM where not.
fn umount_usr() -> Errno {
    errno_of(umount2("/usr", MntFlags::empty()))
}

/// Re-joins its own UTS namespace (which changes nothing).
fn setns_uts() -> Errno {
    match std::fs::File::open("/proc/self/ns/uts") {
        Ok(ns) => errno_of(setns(ns, CloneFlags::CLONE_NEWUTS)),
        Err(err) => io_errno(&err),
    }
}

fn uname() -> Errno {
    // SAFETY: utsname is plain old data, zeroed is a valid value.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `uts` is a valid, writable utsname.
    errno_of(Errno::result(unsafe { libc::uname(&mut uts) }))
}

fn getcwd() -> Errno {
    let mut buf = [0 as libc::c_char; 4096];
    // SAFETY: the buffer is writable for its whole length.
    let cwd = unsafe { libc::getcwd(buf.as_mut_ptr(), buf.len()) };
    if cwd.is_null() {
        Errno::last()
    } else {
        ok()
    }
}

/// Mounts a tmpfs on /tmp, and unmounts it again if that worked.
fn mount_tmpfs() -> Errno {
    let result = mount(
        Some("tmpfs"),
        "/tmp",
        Some("tmpfs"),
        MsFlags::empty(),
        None::<&str>,
    );
    if result.is_ok() {
        let _ = umount2("/tmp", MntFlags::MNT_DETACH);
    }
    errno_of(result)
}

/// Mounts a cgroup filesystem on /tmp, and unmounts it again if that worked.
fn mount_cgroup(fstype: &str, data: Option<&str>) -> Errno {
    let result = mount(Some(fstype), "/tmp", Some(fstype), MsFlags::empty(), data);
    if result.is_ok() {
        let _ = umount2("/tmp", MntFlags::MNT_DETACH);
    }
    errno_of(result)
}

/// keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_PROCESS_KEYRING, create): the child's own keyring.
fn keyctl() -> Errno {
    const KEYCTL_GET_KEYRING_ID: libc::c_long = 0;
    const KEY_SPEC_PROCESS_KEYRING: libc::c_long = -2;
    // SAFETY: keyctl with integer arguments only; no memory is passed.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_GET_KEYRING_ID,
            KEY_SPEC_PROCESS_KEYRING,
            1 as libc::c_long,
        )
    };
    result_of(rc)
}

/// add_key("user", ...) into the child's process keyring (gone when the child exits).
fn add_key() -> Errno {
    const KEY_SPEC_PROCESS_KEYRING: libc::c_long = -2;
    let payload = b"x";
    // SAFETY: the type and description are NUL-terminated literals, the payload is `payload.len()`
    // readable bytes.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_add_key,
            c"user".as_ptr(),
            c"vmc-probe".as_ptr(),
            payload.as_ptr(),
            payload.len(),
            KEY_SPEC_PROCESS_KEYRING,
        )
    };
    result_of(rc)
}

/// bpf(BPF_MAP_CREATE) with an all-zero attribute: EINVAL (no map type) where bpf is allowed.
fn bpf() -> Errno {
    const BPF_MAP_CREATE: libc::c_long = 0;
    let attr = [0u8; 64];
    // SAFETY: `attr` is `attr.len()` readable bytes; the kernel only reads it.
    let rc = unsafe { libc::syscall(libc::SYS_bpf, BPF_MAP_CREATE, attr.as_ptr(), attr.len()) };
    result_of(rc)
}

/// open_by_handle_at with an empty handle: EINVAL where the call is allowed.
fn open_by_handle_at() -> Errno {
    // struct file_handle { u32 handle_bytes; i32 handle_type; u8 f_handle[]; }, here 0 bytes.
    let handle = [0u32; 4];
    let root = match std::fs::File::open("/") {
        Ok(root) => root,
        Err(err) => return io_errno(&err),
    };
    // SAFETY: `handle` is a valid file_handle of 0 handle bytes; the kernel only reads it; the
    // descriptor is open for the duration of the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_open_by_handle_at,
            std::os::fd::AsRawFd::as_raw_fd(&root),
            handle.as_ptr(),
            libc::O_RDONLY,
        )
    };
    if rc >= 0 {
        // SAFETY: rc is a descriptor this call just opened and nothing else owns.
        unsafe { libc::close(rc as libc::c_int) };
    }
    result_of(rc)
}

/// mknod /dev/vmc-probe-NAME as the host's device, then open it read-write (never writing).
fn device(name: &str, major: u64, minor: u64) {
    let path = format!("/dev/vmc-probe-{name}");
    let _ = std::fs::remove_file(&path);
    let made = mknod(
        path.as_str(),
        SFlag::S_IFCHR,
        Mode::from_bits_truncate(0o600),
        makedev(major, minor),
    );
    line(&format!("mknod.{name}"), name_of(made));
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(&path);
    line(&format!("open.{name}"), io_result(opened));
    let _ = std::fs::remove_file(&path);
}

/// Opens `path` for appending (no truncation) and closes it at once.
fn open_for_append(path: &str) -> String {
    let opened = std::fs::OpenOptions::new()
        .append(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path);
    io_result(opened)
}

/// The first line of a small file, at most 64 bytes, non-printable bytes as `?`.
fn first_line(path: &str) -> String {
    let mut buf = [0u8; 64];
    let read = std::fs::File::open(path).and_then(|mut f| f.read(&mut buf));
    match read {
        Ok(n) => buf[..n]
            .iter()
            .take_while(|b| **b != b'\n')
            .map(|&b| if b.is_ascii_graphic() { b as char } else { '?' })
            .collect(),
        Err(err) => name(io_errno(&err)),
    }
}

/// Whether something is mounted over `path` (it is on another filesystem than its parent).
fn masked(path: &str) -> String {
    let parent = Path::new(path).parent().unwrap_or(Path::new("/"));
    match (std::fs::metadata(path), std::fs::metadata(parent)) {
        (Ok(own), Ok(up)) if own.dev() != up.dev() => "yes".into(),
        (Ok(_), Ok(_)) => "no".into(),
        (Err(err), _) | (_, Err(err)) => name(io_errno(&err)),
    }
}

/// Entries of a directory, or bytes readable from a file (at most 4096).
fn content(path: &str) -> String {
    let counted = match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => std::fs::read_dir(path).map(Iterator::count),
        Ok(_) => std::fs::File::open(path).and_then(|f| {
            let mut buf = Vec::with_capacity(4096);
            f.take(4096).read_to_end(&mut buf)
        }),
        Err(err) => Err(err),
    };
    match counted {
        Ok(n) => n.to_string(),
        Err(err) => name(io_errno(&err)),
    }
}

/// The distinct cgroup paths of this process (`/` for each when the cgroup namespace is its own).
fn cgroup_paths() -> String {
    match std::fs::read_to_string("/proc/self/cgroup") {
        Ok(text) => {
            let paths: BTreeSet<&str> = text
                .lines()
                .filter_map(|l| l.splitn(3, ':').nth(2))
                .collect();
            paths.into_iter().collect::<Vec<_>>().join(",")
        }
        Err(err) => name(io_errno(&err)),
    }
}

/// Runs `check` in a forked child and reports the errno it exits with (0 = ok).
fn in_child(check: impl FnOnce() -> Errno) -> String {
    // SAFETY: the probe is single-threaded, so the child may run arbitrary code.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            let errno = check();
            // SAFETY: _exit ends the child without running the parent's atexit handlers.
            unsafe { libc::_exit(errno as i32) }
        }
        Ok(ForkResult::Parent { child }) => match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, code)) => name(Errno::from_raw(code)),
            Ok(WaitStatus::Signaled(_, signal, _)) => format!("signal:{}", signal as i32),
            Ok(other) => format!("wait:{other:?}"),
            Err(errno) => format!("wait:{}", name(errno)),
        },
        Err(errno) => format!("fork:{}", name(errno)),
    }
}

/// The "no error" value of a check.
fn ok() -> Errno {
    Errno::from_raw(0)
}

fn errno_of<T>(result: nix::Result<T>) -> Errno {
    result.err().unwrap_or(ok())
}

fn result_of(rc: libc::c_long) -> Errno {
    if rc < 0 {
        Errno::last()
    } else {
        ok()
    }
}

fn io_errno(err: &std::io::Error) -> Errno {
    Errno::from_raw(err.raw_os_error().unwrap_or(0))
}

fn io_result<T>(result: std::io::Result<T>) -> String {
    match result {
        Ok(_) => "ok".into(),
        Err(err) => name(io_errno(&err)),
    }
}

fn name_of<T>(result: nix::Result<T>) -> String {
    name(errno_of(result))
}

/// `ok` for 0, else the errno's symbolic name (`EPERM`).
fn name(errno: Errno) -> String {
    if errno as i32 == 0 {
        "ok".into()
    } else {
        format!("{errno:?}")
    }
}

fn line(key: &str, value: impl std::fmt::Display) {
    crate::say(&format!("{key}={value}"));
}
