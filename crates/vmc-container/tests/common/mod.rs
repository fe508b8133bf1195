//! Shared helpers of the end-to-end tests: a busybox rootfs and a runner capturing output.

#![allow(dead_code)] // each test binary uses its own subset

use std::io::{Read, Seek};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;
use vmc_container::{ContainerRuntime, Output};
use vmc_runtime::{ExitOutcome, NoObserver, Resources, RunSpec, Runtime, Timeline};

/// Where Debian's busybox-static installs the binary.
pub const BUSYBOX: &str = "/bin/busybox";

/// Why the e2e tests cannot run here, if they cannot.
pub fn skip_reason() -> Option<String> {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Some("container e2e tests need root (CI runs them as root)".into());
    }
    if !Path::new(BUSYBOX).exists() {
        return Some(format!("{BUSYBOX} missing: apt-get install busybox-static"));
    }
    if vmc_container::cgroups::Hierarchy::detect(Path::new("/sys/fs/cgroup")).is_err() {
        return Some("no cgroup filesystem at /sys/fs/cgroup".into());
    }
    None
}

/// Prints why a test is skipped and returns true when it must be.
pub fn skipped() -> bool {
    match skip_reason() {
        Some(reason) => {
            eprintln!("SKIPPED: {reason}");
            true
        }
        None => false,
    }
}

/// What one test needs: its own busybox image and an empty run directory, both removed
/// when the test ends.
pub struct Fixture {
    /// The image's rootfs (read-only for the runs).
    pub image: tempfile::TempDir,
    /// The run directory.
    pub run_dir: tempfile::TempDir,
}

impl Fixture {
    /// Builds the busybox image and makes the run directory.
    pub fn new() -> Self {
        let image = tempfile::Builder::new()
            .prefix("vmc-busybox-")
            .tempdir()
            .unwrap();
        build_busybox_rootfs(image.path());
        Fixture {
            image,
            run_dir: tempfile::tempdir().unwrap(),
        }
    }

    /// The run directory.
    pub fn path(&self) -> &Path {
        self.run_dir.path()
    }
}

/// Builds a minimal busybox image: /bin with every applet, /etc/passwd and group, a marker.
pub fn build_busybox_rootfs(root: &Path) {
    for dir in ["bin", "etc", "root", "tmp", "home/user", "var"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    std::fs::copy(BUSYBOX, root.join("bin/busybox")).unwrap();
    let list = std::process::Command::new(BUSYBOX)
        .arg("--list")
        .output()
        .unwrap();
    for applet in String::from_utf8(list.stdout).unwrap().lines() {
        if applet != "busybox" {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
        }
    }
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    )
    .unwrap();
    std::fs::write(
        root.join("etc/group"),
        "root:x:0:\nuser:x:1000:\nnogroup:x:65534:\n",
    )
    .unwrap();
    std::fs::write(root.join("etc/marker"), "image\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(root.join("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
}

/// A unique 64-hex-digit run id.
pub fn new_id() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{:032x}{:016x}{:08x}{:08x}",
        nanos,
        std::process::id(),
        n,
        0xc0de
    )
}

/// A spec running `args` in the fixture's busybox image and run directory.
pub fn spec(args: &[&str], fixture: &Fixture) -> RunSpec {
    let run_dir = fixture.path();
    RunSpec {
        id: new_id(),
        image_id: "busybox-test".into(),
        rootfs: fixture.image.path().to_path_buf(),
        run_dir: run_dir.to_path_buf(),
        args: args.iter().map(|a| a.to_string()).collect(),
        env: vec!["PATH=/usr/sbin:/usr/bin:/sbin:/bin".into()],
        workdir: "/".into(),
        uid: 0,
        gid: 0,
        hostname: "vmctest".into(),
        resources: Resources::default(),
        network: Default::default(),
        mounts: Vec::new(),
        tty: false,
        interactive: false,
        security: Default::default(),
        auto_remove: false,
    }
}

/// Where the tests keep compiled seccomp filters (not the host's $VMC_HOME).
pub fn seccomp_cache() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("seccomp-cache")
}

/// What one run produced.
#[derive(Debug)]
pub struct Ran {
    pub outcome: ExitOutcome,
    pub stdout: String,
    pub stderr: String,
    pub timeline: Timeline,
}

/// Runs `spec` through the container runtime, capturing stdout and stderr.
pub fn run(spec: &RunSpec) -> Result<Ran, String> {
    let mut stdout = tempfile::tempfile().unwrap();
    let mut stderr = tempfile::tempfile().unwrap();
    let runtime = ContainerRuntime::new()
        .with_output(Output {
            stdout: OwnedFd::from(stdout.try_clone().unwrap()),
            stderr: OwnedFd::from(stderr.try_clone().unwrap()),
        })
        .with_seccomp_cache(seccomp_cache());
    let mut timeline = Timeline::starting_at(Instant::now());
    let outcome = runtime
        .run(spec, &mut timeline, &NoObserver)
        .map_err(|e| e.to_string())?;
    Ok(Ran {
        outcome,
        stdout: read_back(&mut stdout),
        stderr: read_back(&mut stderr),
        timeline,
    })
}

fn read_back(file: &mut std::fs::File) -> String {
    file.rewind().unwrap();
    let mut text = String::new();
    file.read_to_string(&mut text).unwrap();
    text
}

/// The cgroup directories of run `id` that exist in any hierarchy.
pub fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let dir = entry.path().join("vmc").join(id);
        if dir.exists() {
            found.push(dir);
        }
    }
    let v2 = Path::new("/sys/fs/cgroup/vmc").join(id);
    if v2.exists() {
        found.push(v2);
    }
    found
}

/// Host mounts whose path mentions `needle`.
pub fn host_mounts_mentioning(needle: &Path) -> Vec<String> {
    let needle = needle.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|line| line.contains(&needle))
        .map(str::to_string)
        .collect()
}

/// Asserts that run `spec` left nothing behind but its writable layer, the record of the
/// workload `vmc exec` reads and its /etc files: no cgroup, no host mounts, only those in its (initially empty)
/// run directory, and that the runtime's cleanup then empties it.
pub fn assert_nothing_left(spec: &RunSpec) {
    assert_eq!(cgroup_dirs(&spec.id), Vec::<PathBuf>::new(), "cgroups left");
    assert_eq!(host_mounts_mentioning(&spec.run_dir), Vec::<String>::new());
    // The writable layer stays (for a later run) until the run is removed.
    let mut left: Vec<String> = std::fs::read_dir(&spec.run_dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert!(
        left.iter().all(|name| {
            [
                "merged",
                "upper",
                "work",
                "container.json",
                "container.json.tmp",
                "hosts",
                "hostname",
                "resolv.conf",
            ]
            .contains(&name.as_str())
        }),
        "files left in the run directory besides the writable layer and the live record: {left:?}"
    );
    let merged = spec.run_dir.join("merged");
    if merged.exists() {
        assert_eq!(std::fs::read_dir(&merged).unwrap().count(), 0, "merged/");
    }
    vmc_runtime::Runtime::cleanup(&ContainerRuntime::new(), &spec.id, &spec.run_dir).unwrap();
    let left: Vec<_> = std::fs::read_dir(&spec.run_dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(left, Vec::<PathBuf>::new(), "left after cleanup");
}

/// The host pid of a process named `comm` in run `id`'s cgroup, once there is one.
pub fn wait_until_running(id: &str, comm: &str) -> nix::unistd::Pid {
    let deadline = Instant::now() + std::time::Duration::from_secs(20);
    while Instant::now() < deadline {
        for dir in cgroup_dirs(id) {
            let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
            for pid in procs.lines() {
                let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                if name.trim() == comm {
                    return nix::unistd::Pid::from_raw(pid.parse().unwrap());
                }
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    panic!("run {id} never ran {comm}");
}

/// Waits until run `id`'s cgroup holds a process named `comm`, then SIGKILLs it from the host.
pub fn kill_when_running(id: &str, comm: &str) {
    let pid = wait_until_running(id, comm);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).unwrap();
}
