//! Hostile images through the `vmc` binary: `/etc/passwd` linked to a host file, a FIFO or
//! `/dev/zero`, ids outside 0..=2^31-1, volume targets behind symlinks, and Ctrl-C or SIGTERM
//! while the setup hangs. Each ends within seconds with one clear line (exit 125, or 130/143
//! for a signal), reads and creates nothing outside the image, and leaves no run record or
//! cgroup. Every run goes through `timeout`, so a regression fails instead of hanging.
//! Container runs need root (CI has it).

mod common;

use common::{container_skip_reason, text, VMC};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The longest any run here may take; `timeout` SIGKILLs vmc after it (exit 137).
const TIMEOUT_SECS: &str = "30";

macro_rules! skip_without_containers {
    () => {
        if let Some(reason) = container_skip_reason() {
            eprintln!("SKIPPED: {reason}");
            return;
        }
    };
}

/// A temporary vmc home.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Home {
        Home {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// Imports a busybox rootfs, changed by `hostile`, as image `tag`: packed with GNU tar,
    /// which keeps FIFOs and device nodes.
    fn image(&self, tag: &str, hostile: impl FnOnce(&Path)) {
        let src = self.dir.path().join(format!("src-{tag}"));
        for sub in ["bin", "etc", "tmp", "dev", "var"] {
            std::fs::create_dir_all(src.join(sub)).unwrap();
        }
        std::fs::copy("/bin/busybox", src.join("bin/busybox")).unwrap();
        for applet in ["sh", "true", "cat", "id", "pwd"] {
            symlink("busybox", src.join("bin").join(applet)).unwrap();
        }
        std::fs::write(src.join("etc/group"), "root:x:0:\n").unwrap();
        hostile(&src);
        let tar = self.dir.path().join(format!("{tag}.tar"));
        let packed = Command::new("tar")
            .arg("-C")
            .arg(&src)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .output()
            .unwrap();
        assert!(packed.status.success(), "tar: {}", text(&packed.stderr));
        let out = self.vmc(&["import", tar.to_str().unwrap(), "--tag", tag]);
        assert!(out.status.success(), "import: {}", text(&out.stderr));
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new("timeout");
        command
            .args(["-s", "KILL", TIMEOUT_SECS, VMC])
            .args(args)
            .env("VMC_HOME", self.path())
            .stdin(Stdio::null());
        command
    }

    fn vmc(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// The run directories in the store (each holds a run record).
    fn runs(&self) -> Vec<String> {
        match std::fs::read_dir(self.path().join("runs")) {
            Ok(entries) => entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => Vec::new(),
        }
    }
}

/// Runs a host command that must succeed (mkfifo, mknod, kill).
fn sh(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
}

/// Asserts exit status `expected`, one line on stderr containing `needle`, and no run record.
fn assert_refused(home: &Home, out: &Output, expected: i32, needle: &str) {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(expected), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains(needle), "{needle:?} not in {stderr:?}");
    assert_eq!(home.runs(), Vec::<String>::new(), "run records left");
}

/// The cgroup directories of run `id` in any hierarchy (v1 or v2).
fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/sys/fs/cgroup")
        .unwrap()
        .flatten()
        .map(|entry| entry.path().join("vmc").join(id))
        .collect();
    dirs.push(Path::new("/sys/fs/cgroup/vmc").join(id));
    dirs.into_iter().filter(|dir| dir.exists()).collect()
}

#[test]
fn passwd_linked_to_a_host_file_is_not_read() {
    skip_without_containers!();
    let home = Home::new();
    let host = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(host.path(), "marker:x:4321:4321::/marker:/bin/sh\n").unwrap();
    let host_path = host.path().to_path_buf();
    home.image("linked", |src| {
        symlink(&host_path, src.join("etc/passwd")).unwrap();
    });
    let out = home.vmc(&["run", "--rm", "-u", "marker", "linked", "id"]);
    assert_refused(&home, &out, 125, "unable to find user marker");
    // Without -u the run works and HOME is root's default, not the host file's.
    let out = home.vmc(&["run", "--rm", "linked", "sh", "-c", "echo $HOME"]);
    assert_eq!(text(&out.stdout), "/root\n", "{}", text(&out.stderr));
}

#[test]
fn passwd_linked_to_a_fifo_does_not_hang() {
    skip_without_containers!();
    let home = Home::new();
    home.image("fifo", |src| {
        sh(&["mkfifo", src.join("var/pipe").to_str().unwrap()]);
        symlink("/var/pipe", src.join("etc/passwd")).unwrap();
    });
    let started = Instant::now();
    let out = home.vmc(&["run", "--rm", "fifo", "true"]);
    assert!(started.elapsed() < Duration::from_secs(10), "must not hang");
    assert_refused(&home, &out, 125, "\"/etc/passwd\" in the image is a FIFO");
}

#[test]
fn passwd_linked_to_dev_zero_or_too_large_is_refused_with_bounded_memory() {
    skip_without_containers!();
    let home = Home::new();
    home.image("zero", |src| {
        sh(&[
            "mknod",
            src.join("dev/zero").to_str().unwrap(),
            "c",
            "1",
            "5",
        ]);
        symlink("/dev/zero", src.join("etc/passwd")).unwrap();
    });
    home.image("huge", |src| {
        std::fs::write(src.join("etc/passwd"), vec![b'#'; 2 << 20]).unwrap();
    });
    let out = home.vmc(&["run", "--rm", "zero", "true"]);
    assert_refused(
        &home,
        &out,
        125,
        "is a character device, not a regular file",
    );
    let out = home.vmc(&["run", "--rm", "huge", "true"]);
    assert_refused(&home, &out, 125, "is larger than 1048576 bytes");
    // The largest resident size of any process this test binary has waited for (vmc's
    // included, through timeout): far below what reading /dev/zero would take.
    // SAFETY: getrusage fills the zeroed struct.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage
    };
    assert!(
        usage.ru_maxrss < 200 * 1024,
        "a child grew to {} KiB",
        usage.ru_maxrss
    );
}

#[test]
fn ids_outside_0_to_2_pow_31_minus_1_are_refused() {
    skip_without_containers!();
    let home = Home::new();
    home.image("ids", |src| {
        std::fs::write(
            src.join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nwrap:x:4294967295:0::/:/bin/sh\n",
        )
        .unwrap();
    });
    for (user, needle) in [
        ("--user=4294967295", "uid 4294967295 is out of range"),
        ("--user=2147483648", "uid 2147483648 is out of range"),
        ("--user=-1", "uid -1 is out of range"),
        ("--user=0:-1", "gid -1 is out of range"),
        (
            "--user=wrap",
            "uid 4294967295 in the image's /etc/passwd is out of range",
        ),
    ] {
        let out = home.vmc(&["run", "--rm", user, "ids", "id"]);
        assert_refused(&home, &out, 125, needle);
        assert!(text(&out.stderr).contains("between 0 and 2147483647"));
    }
    // The same value as the image's User.
    let src = home.dir.path().join("src-ids");
    let out = home.vmc(&[
        "import",
        src.to_str().unwrap(),
        "--tag",
        "wrapped",
        "--change",
        "USER 4294967295",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = home.vmc(&["run", "--rm", "wrapped", "id"]);
    assert_refused(&home, &out, 125, "uid 4294967295 is out of range");
    let out = home.vmc(&["run", "--rm", "--user=2147483647", "ids", "id", "-u"]);
    assert_eq!(text(&out.stdout), "2147483647\n", "{}", text(&out.stderr));
}

#[test]
fn volume_targets_behind_image_symlinks_create_nothing_on_the_host() {
    skip_without_containers!();
    let home = Home::new();
    let victim_dir = tempfile::tempdir().unwrap();
    let victim = victim_dir.path().join("victim");
    let v = victim.display().to_string();
    home.image("links", |src| {
        symlink(&v, src.join("abs")).unwrap();
        symlink(format!("../../../../../..{v}"), src.join("var/rel")).unwrap();
        symlink(format!("../var/../../../..{v}"), src.join("tmp/up")).unwrap();
        symlink(format!("/proc/self/root{v}"), src.join("escape")).unwrap();
    });
    let shared = tempfile::tempdir().unwrap();
    std::fs::write(shared.path().join("in"), "from host\n").unwrap();
    let volume = |target: &str| format!("{}:{target}", shared.path().display());
    let out = home.vmc(&[
        "run",
        "--rm",
        "-v",
        &volume("/abs/a"),
        "-v",
        &volume("/var/rel/r"),
        "-v",
        &volume("/tmp/up/u"),
        "links",
        "sh",
        "-c",
        &format!("cat {v}/a/in {v}/r/in {v}/u/in"),
    ]);
    assert_eq!(
        text(&out.stdout),
        "from host\n".repeat(3),
        "{}",
        text(&out.stderr)
    );
    assert!(!victim.exists(), "{v} was created on the host");
    let out = home.vmc(&["run", "--rm", "-v", &volume("/escape/x"), "links", "true"]);
    assert_refused(&home, &out, 125, "inside /proc");
    assert!(!victim.exists(), "{v} was created on the host");
}

#[test]
fn proc_dev_or_sys_linked_out_of_the_image_is_refused() {
    skip_without_containers!();
    let home = Home::new();
    let victim_dir = tempfile::tempdir().unwrap();
    let victim = victim_dir.path().to_path_buf();
    for (name, link) in [
        ("proc", victim.display().to_string()),
        ("dev", format!("../../../../..{}", victim.display())),
        ("sys", victim.display().to_string()),
    ] {
        home.image(name, |src| {
            if name == "dev" {
                std::fs::remove_dir(src.join("dev")).unwrap();
            }
            symlink(&link, src.join(name)).unwrap();
        });
        let out = home.vmc(&["run", "--rm", name, "true"]);
        assert_refused(
            &home,
            &out,
            125,
            &format!("the image's \"/{name}\" is not a directory"),
        );
        let listing: Vec<_> = std::fs::read_dir(&victim).unwrap().collect();
        assert!(
            listing.is_empty(),
            "/{name}: something appeared in {victim:?}"
        );
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&victim.display().to_string()),
        "a mount on {victim:?}"
    );
}

/// Starts a run whose setup hangs (a file volume's mount point is a FIFO of an earlier
/// volume: the container process blocks opening it), sends `signal` to vmc once the run's
/// cgroup exists and its setup has hung for a moment, and checks that vmc ends at once with
/// `expected` and one line, removing its cgroup and run record.
fn interrupt_hung_setup(signal: &str, expected: i32) {
    let home = Home::new();
    home.image("plain", |_| {});
    let host = tempfile::tempdir().unwrap();
    sh(&["mkfifo", host.path().join("fifo").to_str().unwrap()]);
    let file = tempfile::NamedTempFile::new().unwrap();
    let mut child = home
        .command(&[
            "run",
            "--rm",
            "-v",
            &format!("{}:/shared", host.path().display()),
            "-v",
            &format!("{}:/shared/fifo", file.path().display()),
            "plain",
            "true",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // `timeout` runs vmc as its child: find vmc's run and cgroup.
    let deadline = Instant::now() + Duration::from_secs(10);
    let id = loop {
        if let Some(id) = home.runs().into_iter().next() {
            if !cgroup_dirs(&id).is_empty() {
                break id;
            }
        }
        assert!(Instant::now() < deadline, "the run never got a cgroup");
        std::thread::sleep(Duration::from_millis(10));
    };
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the setup did not hang: this test needs another way to hang it"
    );
    let children =
        std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", child.id())).unwrap();
    let vmc_pid = children
        .split_whitespace()
        .next()
        .expect("timeout has started vmc");
    let sent = Instant::now();
    sh(&["kill", &format!("-{signal}"), vmc_pid]);
    let out = child.wait_with_output().unwrap();
    assert!(
        sent.elapsed() < Duration::from_secs(5),
        "vmc took {:?}",
        sent.elapsed()
    );
    assert_refused(
        &home,
        &out,
        expected,
        &format!("interrupted by SIG{signal} before the workload started"),
    );
    assert_eq!(cgroup_dirs(&id), Vec::<PathBuf>::new(), "cgroups left");
}

#[test]
fn ctrl_c_during_a_hung_setup_ends_the_run_and_cleans_up() {
    skip_without_containers!();
    interrupt_hung_setup("INT", 130);
}

#[test]
fn sigterm_during_a_hung_setup_ends_the_run_and_cleans_up() {
    skip_without_containers!();
    interrupt_hung_setup("TERM", 143);
}
