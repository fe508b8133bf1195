//! The container's first process between `clone` and `execve`.
//!
//! It runs in a copy of vmc's address space (possibly multi-threaded, e.g. under `cargo test`),
//! so it must not allocate or take locks: everything it needs is prepared by the parent in a
//! [`ChildConfig`], and failures are reported through the report pipe with a stack buffer.
//! It becomes PID 1 of the container by executing the workload (no init process in between,
//! like `docker run` without `--init`).

use crate::plan::{text, Op};
use crate::report::{Event, Reporter};
use crate::security::{apply as confine, Confinement};
use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use std::ffi::{CStr, CString};
use std::os::fd::RawFd;
use std::os::raw::c_char;
use std::os::unix::ffi::OsStrExt;
use vmc_runtime::exec::ExecCommand;

/// How many hierarchies [`ChildConfig::join_cgroup_late`] may name (v1 has 14 controllers).
pub const MAX_LATE_CGROUPS: usize = 32;

/// Exit status of the child when setup failed (the parent turns the report into an error).
const SETUP_FAILED: isize = 125;

/// Where the workload's standard streams come from.
#[derive(Debug, Clone, Copy, Default)]
pub struct ChildStdio {
    /// Replaces fd 0 (e.g. /dev/null when not interactive).
    pub stdin: Option<RawFd>,
    /// Replaces fd 1.
    pub stdout: Option<RawFd>,
    /// Replaces fd 2.
    pub stderr: Option<RawFd>,
    /// A pty slave that becomes the controlling terminal and fds 0, 1 and 2.
    pub tty: Option<RawFd>,
}

/// Everything the child needs, prepared before `clone`.
#[derive(Debug)]
pub struct ChildConfig {
    /// Filesystem setup steps, ending with pivot_root.
    pub ops: Vec<Op>,
    /// Mounts made once the cgroup namespace exists: the cgroup filesystem at /sys/fs/cgroup.
    pub cgroup_ops: Vec<Op>,
    /// Host name to set (with a private UTS namespace).
    pub hostname: CString,
    /// Bring up loopback (private network namespace).
    pub loopback: bool,
    /// Working directory inside the container, created when missing.
    pub workdir: CString,
    /// The workload's command, ready to execute.
    pub command: ExecCommand,
    /// Who the workload runs as, its standard streams and its confinement.
    pub identity: Identity,
    /// Cgroup `tasks` files to write "0" into before anything else (cgroup v1): a thread that
    /// moves itself skips the global lock whose write side waits for an RCU grace period.
    pub join_cgroup: Vec<CString>,
    /// The remaining v1 hierarchies, joined once vmc says "go" (it makes their cgroups
    /// meanwhile), before the cgroup namespace is unshared: each hierarchy's mount, opened
    /// before `pivot_root` hides it, and the `tasks` file relative to it. At most
    /// [`MAX_LATE_CGROUPS`].
    pub join_cgroup_late: Vec<(CString, CString)>,
    /// Read end of the pipe on which the parent says "go" (one byte per gate).
    pub go_fd: RawFd,
    /// Wait for a first byte before any setup: the parent writes the user namespace's id maps
    /// first (rootless runs), without which every permission check would fail.
    pub wait_for_id_maps: bool,
    /// Write end of the report pipe (close-on-exec).
    pub report_fd: RawFd,
}

/// The last steps before `execve`, the same for the workload and for a command `vmc exec`
/// starts in its namespaces: standard streams, confinement, user, signal state.
#[derive(Debug)]
pub struct Identity {
    /// User to switch to.
    pub uid: u32,
    /// Group to switch to.
    pub gid: u32,
    /// Drop supplementary groups (not allowed in an unprivileged user namespace).
    pub clear_groups: bool,
    /// Standard streams.
    pub stdio: ChildStdio,
    /// The signal mask to restore before exec (the parent blocks forwarded signals).
    pub signal_mask: libc::sigset_t,
    /// Capabilities, seccomp filter and no_new_privs.
    pub confinement: Confinement,
    /// Set SIGKILL as the parent-death signal again after the switch of user (which clears
    /// it): the process dies with vmc.
    pub die_with_vmc: bool,
}

/// The child's main function: sets the container up and executes the workload. Returns only
/// on failure, with the exit status.
pub fn run(config: &ChildConfig) -> isize {
    let reporter = Reporter::new(config.report_fd);
    match setup(config, &reporter) {
        Ok(()) => execute(&config.command, &reporter),
        Err((what, errno)) => {
            reporter.send(
                Event::SetupFailed,
                0,
                format_args!("{what}: {}", errno.desc()),
            );
            SETUP_FAILED
        }
    }
}

/// A failed setup step: what was done (one line) and the error.
pub(crate) type StepError<'a> = (StepWhat<'a>, Errno);

/// What a failed step was doing, formatted without allocating.
pub(crate) enum StepWhat<'a> {
    Op(&'a Op),
    Text(&'static str),
    Path(&'static str, &'a CStr),
}

impl std::fmt::Display for StepWhat<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StepWhat::Op(op) => op.fmt(f),
            StepWhat::Text(what) => f.write_str(what),
            StepWhat::Path(what, path) => write!(f, "{what} {}", text(path)),
        }
    }
}

pub(crate) fn step<'a, T>(result: nix::Result<T>, what: StepWhat<'a>) -> Result<T, StepError<'a>> {
    result.map_err(|errno| (what, errno))
}

fn setup<'a>(config: &'a ChildConfig, reporter: &Reporter) -> Result<(), StepError<'a>> {
    // Die with vmc: a killed vmc must not leave the container running.
    step(
        nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL),
        StepWhat::Text("setting the parent-death signal"),
    )?;
    if config.wait_for_id_maps {
        wait_for_go(config.go_fd)?;
    }
    for file in &config.join_cgroup {
        step(
            join_cgroup(libc::AT_FDCWD, file),
            StepWhat::Path("joining the cgroup through", file),
        )?;
    }
    if !config.join_cgroup.is_empty() {
        reporter.event(Event::JoinedCgroup);
    }
    // The late hierarchies' mounts, opened while pivot_root has not hidden them yet;
    // close-on-exec, and closed once joined.
    let mut late = [-1; MAX_LATE_CGROUPS];
    for (fd, (mount, _)) in late.iter_mut().zip(&config.join_cgroup_late) {
        // SAFETY: the path is NUL-terminated; the fd is closed after the late joins.
        let opened = unsafe {
            libc::open(
                mount.as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        *fd = step(Errno::result(opened), StepWhat::Path("opening", mount))?;
    }
    // On cgroup v2 (and hybrid's unified/) this process was born in the run's cgroup.
    nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    for op in &config.ops {
        apply(op, reporter).map_err(|errno| (StepWhat::Op(op), errno))?;
    }
    step(
        nix::unistd::sethostname(std::ffi::OsStr::from_bytes(config.hostname.to_bytes())),
        StepWhat::Text("setting the host name"),
    )?;
    if config.loopback {
        step(
            loopback_up(),
            StepWhat::Text("bringing up the loopback interface"),
        )?;
    }
    step(
        mkdir_all(&config.workdir),
        StepWhat::Path("creating the working directory", &config.workdir),
    )?;
    step(
        nix::unistd::chdir(config.workdir.as_c_str()),
        StepWhat::Path("changing into the working directory", &config.workdir),
    )?;
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    reporter.event(Event::Ready);
    wait_for_go(config.go_fd)?;
    let joined = late
        .iter()
        .zip(&config.join_cgroup_late)
        .try_for_each(|(fd, (_, tasks))| {
            step(
                join_cgroup(*fd, tasks),
                StepWhat::Path("joining the cgroup through", tasks),
            )
        });
    for fd in late.iter().filter(|fd| **fd >= 0) {
        // SAFETY: the fds were opened above and are not used again.
        unsafe { libc::close(*fd) };
    }
    joined?;
    // Now inside vmc/<id>: a cgroup namespace made here has that cgroup as its root.
    step(
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP),
        StepWhat::Text("unsharing the cgroup namespace"),
    )?;
    reporter.event(Event::Released);
    for op in &config.cgroup_ops {
        apply(op, reporter).map_err(|errno| (StepWhat::Op(op), errno))?;
    }
    become_workload(&config.identity)
}

/// Connects the standard streams, confines the process and switches its user: everything
/// but the `execve`.
fn become_workload<'a>(identity: &Identity) -> Result<(), StepError<'a>> {
    setup_stdio(&identity.stdio)?;
    take_identity(identity)
}

/// Confines the process and switches its user, signal mask and dispositions as `identity`
/// says (its standard streams are connected already).
pub(crate) fn take_identity<'a>(identity: &Identity) -> Result<(), StepError<'a>> {
    // The order is runc's. Without no_new_privs, installing a seccomp filter needs
    // CAP_SYS_ADMIN, which the switch to a non-root user and capset take away: the filter
    // goes first, and the profile must allow what follows (prctl, setgroups, setresgid,
    // setresuid, capset, rt_sigaction, rt_sigprocmask, write, execve — Docker's does). With
    // no_new_privs the filter is the last step before exec. The bounding set is cut while
    // CAP_SETPCAP is still there.
    let confinement = &identity.confinement;
    if let (Some(filter), false) = (&confinement.filter, confinement.no_new_privs) {
        step(
            confine::install_filter(filter),
            StepWhat::Text("installing the seccomp filter"),
        )?;
    }
    step(
        confine::drop_bounding(confinement.capabilities),
        StepWhat::Text("dropping capabilities from the bounding set"),
    )?;
    switch_user(identity)?;
    // A root workload keeps the set as permitted and effective; any other user none.
    let permitted = if confinement.root {
        confinement.capabilities
    } else {
        Default::default()
    };
    step(
        confine::set_capabilities(permitted),
        StepWhat::Text("setting the capability sets"),
    )?;
    // The parent-death signal is cleared when credentials change: set it again.
    if identity.die_with_vmc {
        step(
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL),
            StepWhat::Text("setting the parent-death signal"),
        )?;
    }
    // Every signal gets its default action: an ignored one would stay ignored across exec
    // (Rust ignores SIGPIPE; a shell starting vmc in the background ignores SIGINT), and a
    // shell workload could not even trap it. As in VM mode, where vmc-init starts afresh.
    // SAFETY: resetting dispositions and restoring the saved mask only touches this process's
    // signal state (SIGKILL and SIGSTOP just fail).
    unsafe {
        for signal in 1..=libc::SIGRTMAX() {
            libc::signal(signal, libc::SIG_DFL);
        }
        libc::sigprocmask(
            libc::SIG_SETMASK,
            &identity.signal_mask,
            std::ptr::null_mut(),
        );
    }
    if confinement.no_new_privs {
        step(
            confine::set_no_new_privs(),
            StepWhat::Text("setting no_new_privs"),
        )?;
        if let Some(filter) = &confinement.filter {
            step(
                confine::install_filter(filter),
                StepWhat::Text("installing the seccomp filter"),
            )?;
        }
    }
    Ok(())
}

fn wait_for_go<'a>(fd: RawFd) -> Result<(), StepError<'a>> {
    let mut byte = 0u8;
    loop {
        // SAFETY: reading one byte into a valid local.
        let n = unsafe { libc::read(fd, (&mut byte as *mut u8).cast(), 1) };
        match n {
            1 => return Ok(()),
            0 => {
                return Err((
                    StepWhat::Text("waiting for vmc (it went away)"),
                    Errno::EPIPE,
                ))
            }
            _ if Errno::last() == Errno::EINTR => continue,
            _ => return Err((StepWhat::Text("waiting for vmc"), Errno::last())),
        }
    }
}

fn apply(op: &Op, reporter: &Reporter) -> nix::Result<()> {
    match op {
        Op::MakePrivate => nix::mount::mount::<CStr, CStr, CStr, CStr>(
            None,
            c"/",
            None,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None,
        ),
        Op::Mount {
            source,
            target,
            fstype,
            flags,
            data,
        } => nix::mount::mount(
            Some(source.as_c_str()),
            target.as_c_str(),
            fstype.as_deref(),
            *flags,
            data.as_deref(),
        ),
        Op::RemountReadOnly(target) => remount_read_only(target),
        Op::Mask { path, null } => {
            if !mask(path, null)? {
                reporter.send(Event::PathMissing, 0, format_args!("{}", text(path)));
            }
            Ok(())
        }
        Op::ReadOnly(path) => {
            if !bind_read_only(path)? {
                reporter.send(Event::PathMissing, 0, format_args!("{}", text(path)));
            }
            Ok(())
        }
        Op::Mkdir(path) => ignore_exists(nix::unistd::mkdir(
            path.as_c_str(),
            nix::sys::stat::Mode::from_bits_truncate(0o755),
        )),
        Op::MkdirAll(path) => mkdir_all(path),
        Op::Touch(path) => touch(path),
        Op::CharDevice { path, major, minor } => ignore_exists(nix::sys::stat::mknod(
            path.as_c_str(),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o666),
            nix::sys::stat::makedev(*major, *minor),
        )),
        Op::Symlink { target, link } => {
            // SAFETY: both strings are NUL-terminated.
            let rc = unsafe { libc::symlink(target.as_ptr(), link.as_ptr()) };
            ignore_exists(Errno::result(rc).map(drop))
        }
        Op::PivotRoot(root) => {
            nix::unistd::chdir(root.as_c_str())?;
            nix::unistd::pivot_root(c".", c".")?;
            nix::mount::umount2(c".", MntFlags::MNT_DETACH)?;
            nix::unistd::chdir(c"/")
        }
        Op::Report(event) => {
            reporter.event(*event);
            Ok(())
        }
    }
}

/// Moves this (single-threaded) process into a v1 cgroup by writing "0" to its `tasks` file
/// (relative to the directory `dir`, or `AT_FDCWD`).
pub(crate) fn join_cgroup(dir: RawFd, tasks: &CStr) -> nix::Result<()> {
    // SAFETY: tasks is NUL-terminated; the fd is closed below.
    let fd = Errno::result(unsafe {
        libc::openat(dir, tasks.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC)
    })?;
    // SAFETY: writing one byte from a static buffer to the fd just opened.
    let written = unsafe { libc::write(fd, b"0".as_ptr().cast(), 1) };
    let result = Errno::result(written).map(drop);
    // SAFETY: fd is owned here.
    unsafe { libc::close(fd) };
    result
}

fn ignore_exists(result: nix::Result<()>) -> nix::Result<()> {
    match result {
        Err(Errno::EEXIST) => Ok(()),
        other => other,
    }
}

/// Remounts a bind read-only, keeping the flags the kernel locks (nosuid, nodev, noexec…).
fn remount_read_only(target: &CStr) -> nix::Result<()> {
    // SAFETY: an all-zero statvfs is a valid value to be overwritten.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: target is NUL-terminated and stat is writable.
    Errno::result(unsafe { libc::statvfs(target.as_ptr(), &mut stat) })?;
    let kept = [
        (libc::ST_NOSUID, MsFlags::MS_NOSUID),
        (libc::ST_NODEV, MsFlags::MS_NODEV),
        (libc::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (libc::ST_NOATIME, MsFlags::MS_NOATIME),
        (libc::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (libc::ST_RELATIME, MsFlags::MS_RELATIME),
    ]
    .iter()
    .filter(|(st, _)| stat.f_flag & *st != 0)
    .fold(MsFlags::empty(), |acc, (_, ms)| acc | *ms);
    nix::mount::mount::<CStr, CStr, CStr, CStr>(
        None,
        target,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | kept,
        None,
    )
}

/// Whether `path` is a directory; `None` when it does not exist.
fn is_dir(path: &CStr) -> nix::Result<Option<bool>> {
    match nix::sys::stat::lstat(path) {
        Ok(stat) => Ok(Some(
            nix::sys::stat::SFlag::from_bits_truncate(stat.st_mode)
                .contains(nix::sys::stat::SFlag::S_IFDIR),
        )),
        Err(Errno::ENOENT) => Ok(None),
        Err(errno) => Err(errno),
    }
}

/// Hides `path` under an empty read-only tmpfs (a directory) or `null` (a file), as runc
/// does. Returns false when the path does not exist.
fn mask(path: &CStr, null: &CStr) -> nix::Result<bool> {
    let Some(dir) = is_dir(path)? else {
        return Ok(false);
    };
    if dir {
        nix::mount::mount::<CStr, CStr, CStr, CStr>(
            Some(c"tmpfs"),
            path,
            Some(c"tmpfs"),
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            None,
        )?;
    } else {
        nix::mount::mount::<CStr, CStr, CStr, CStr>(
            Some(null),
            path,
            None,
            MsFlags::MS_BIND,
            None,
        )?;
    }
    Ok(true)
}

/// Binds `path` on itself and remounts the bind read-only. Returns false when it does not
/// exist.
fn bind_read_only(path: &CStr) -> nix::Result<bool> {
    if is_dir(path)?.is_none() {
        return Ok(false);
    }
    nix::mount::mount::<CStr, CStr, CStr, CStr>(
        Some(path),
        path,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    )?;
    remount_read_only(path)?;
    Ok(true)
}

/// `mkdir -p` with mode 0755, using a stack copy of the path.
fn mkdir_all(path: &CStr) -> nix::Result<()> {
    let bytes = path.to_bytes();
    let mut buf = [0u8; 4096];
    if bytes.len() >= buf.len() {
        return Err(Errno::ENAMETOOLONG);
    }
    buf[..bytes.len()].copy_from_slice(bytes);
    for end in (1..=bytes.len()).filter(|&i| i == bytes.len() || bytes[i] == b'/') {
        buf[end] = 0;
        // SAFETY: buf[..=end] is a NUL-terminated prefix of the path.
        let rc = unsafe { libc::mkdir(buf.as_ptr().cast(), 0o755) };
        if rc != 0 && Errno::last() != Errno::EEXIST {
            return Err(Errno::last());
        }
        if end < bytes.len() {
            buf[end] = b'/';
        }
    }
    Ok(())
}

/// Makes sure a file exists at `path`, as a mount point. Opened read-only: an image's own
/// file there (`/etc/hosts`, say) is not copied up into the writable layer, only covered.
fn touch(path: &CStr) -> nix::Result<()> {
    // SAFETY: path is NUL-terminated; the returned fd is closed right away.
    let fd = unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_CREAT | libc::O_RDONLY | libc::O_CLOEXEC,
            0o644,
        )
    };
    let fd = Errno::result(fd)?;
    // SAFETY: fd was just opened by this function.
    unsafe { libc::close(fd) };
    Ok(())
}

/// Sets IFF_UP on "lo" with the SIOCSIFFLAGS ioctl.
fn loopback_up() -> nix::Result<()> {
    // SAFETY: a plain socket call; the fd is closed below.
    let fd = Errno::result(unsafe {
        libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0)
    })?;
    // SAFETY: an all-zero ifreq is valid; the name is set below.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in request.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as c_char;
    }
    // SAFETY: request is a valid ifreq naming "lo"; the ioctls read/write its flags union.
    let result = unsafe {
        Errno::result(libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut request)).and_then(|_| {
            request.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as i16;
            Errno::result(libc::ioctl(fd, libc::SIOCSIFFLAGS, &request))
        })
    };
    // SAFETY: fd is owned here.
    unsafe { libc::close(fd) };
    result.map(drop)
}

pub(crate) fn setup_stdio<'a>(stdio: &ChildStdio) -> Result<(), StepError<'a>> {
    let dup = |from: RawFd, to: RawFd| -> nix::Result<()> {
        if from == to {
            // dup2 onto itself keeps close-on-exec: clear it instead.
            // SAFETY: fcntl on an fd this process holds.
            Errno::result(unsafe { libc::fcntl(from, libc::F_SETFD, 0) }).map(drop)
        } else {
            // SAFETY: dup2 onto a standard stream number.
            Errno::result(unsafe { libc::dup2(from, to) }).map(drop)
        }
    };
    if let Some(tty) = stdio.tty {
        step(
            nix::unistd::setsid().map(drop),
            StepWhat::Text("starting a session"),
        )?;
        // SAFETY: TIOCSCTTY on the pty slave this process holds.
        step(
            Errno::result(unsafe { libc::ioctl(tty, libc::TIOCSCTTY, 0) }).map(drop),
            StepWhat::Text("making the pty the controlling terminal"),
        )?;
        for target in 0..3 {
            step(dup(tty, target), StepWhat::Text("connecting the pty"))?;
        }
        return Ok(());
    }
    for (source, target) in [(stdio.stdin, 0), (stdio.stdout, 1), (stdio.stderr, 2)] {
        if let Some(source) = source {
            step(
                dup(source, target),
                StepWhat::Text("connecting the standard streams"),
            )?;
        }
    }
    Ok(())
}

/// Drops supplementary groups and switches group and user with raw system calls: glibc's
/// wrappers broadcast the change to every thread it believes exists, and in this copy of a
/// multi-threaded vmc those threads do not, so the wrappers would wait forever.
fn switch_user<'a>(identity: &Identity) -> Result<(), StepError<'a>> {
    let (uid, gid) = (identity.uid as libc::c_long, identity.gid as libc::c_long);
    if identity.clear_groups {
        // SAFETY: setgroups(0, NULL) clears the list; no memory is read.
        let rc = unsafe { libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<libc::gid_t>()) };
        step(
            Errno::result(rc).map(drop),
            StepWhat::Text("dropping supplementary groups"),
        )?;
    }
    // SAFETY: setresgid/setresuid take plain ids.
    let rc = unsafe { libc::syscall(libc::SYS_setresgid, gid, gid, gid) };
    step(
        Errno::result(rc).map(drop),
        StepWhat::Text("switching to the workload's group"),
    )?;
    // SAFETY: as above.
    let rc = unsafe { libc::syscall(libc::SYS_setresuid, uid, uid, uid) };
    step(
        Errno::result(rc).map(drop),
        StepWhat::Text("switching to the workload's user"),
    )
}

/// Executes `command`; if that fails, reports why (126/127, worded as Docker does).
pub(crate) fn execute(command: &ExecCommand, reporter: &Reporter) -> isize {
    reporter.event(Event::Exec);
    let failure = command.exec();
    let code = failure.exit_code();
    reporter.send(Event::ExecFailed, code, format_args!("{failure}"));
    code.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mkdir_all_makes_nested_directories() {
        let dir = tempfile::tempdir().unwrap();
        let path = CString::new(format!("{}/a/b/c", dir.path().display())).unwrap();
        mkdir_all(&path).unwrap();
        assert!(dir.path().join("a/b/c").is_dir());
        mkdir_all(&path).unwrap();
        touch(&CString::new(format!("{}/a/f", dir.path().display())).unwrap()).unwrap();
        assert!(dir.path().join("a/f").is_file());
    }
}
