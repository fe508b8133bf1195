//! `vmc exec` end to end through the binary, in container mode: a command started in a running
//! run sees the run's PID, mount, UTS, IPC, network and cgroup namespaces and its cgroup, runs
//! under the workload's confinement (the repo's probe, `vmc-workload confinement`, prints the
//! same lines as in a run of its own with the same options), and follows Docker's exit-status
//! contract and `-e`/`-w`/`-u`/`-i`/`-t`/`-d`. Needs root and cgroups (CI has both);
//! elsewhere the tests print SKIPPED.

mod common;

use common::{container_skip_reason, make_default_images, text, vmc, VMC};
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

macro_rules! skip_without_containers {
    () => {
        if let Some(reason) = container_skip_reason() {
            eprintln!("SKIPPED: {reason}");
            return;
        }
    };
}

/// A vmc home with the default images.
fn home() -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    make_default_images(home.path());
    home
}

/// A run started with `vmc run --name NAME ARGS…`, attached in the background; removed
/// (`vmc rm -f`) when dropped.
struct LiveRun<'a> {
    home: &'a Path,
    name: &'static str,
    vmc: Child,
}

impl<'a> LiveRun<'a> {
    fn start(home: &'a Path, name: &'static str, args: &[&str]) -> LiveRun<'a> {
        let vmc = Command::new(VMC)
            .args(["run", "--name", name])
            .args(args)
            .env("VMC_HOME", home)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let run = LiveRun { home, name, vmc };
        // Running once an exec reaches it.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if run.exec(&[], &["true"]).status.success() {
                return run;
            }
            assert!(
                Instant::now() < deadline,
                "run {name} never became reachable"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `vmc exec FLAGS… NAME COMMAND…`.
    fn exec(&self, flags: &[&str], command: &[&str]) -> Output {
        let mut args = vec!["exec"];
        args.extend(flags);
        args.push(self.name);
        args.extend(command);
        vmc(self.home, &args)
    }

    /// The standard output of a successful exec.
    fn stdout(&self, flags: &[&str], command: &[&str]) -> String {
        let out = self.exec(flags, command);
        assert!(
            out.status.success(),
            "exec {command:?} exited {:?}: {}",
            out.status.code(),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// Ends the run (its supervisor is killed; the workload dies with it) and removes it.
    fn remove(&mut self) {
        let out = vmc(self.home, &["rm", "-f", self.name]);
        assert!(out.status.success(), "rm -f: {}", text(&out.stderr));
        let _ = self.vmc.wait();
    }
}

impl Drop for LiveRun<'_> {
    fn drop(&mut self) {
        let _ = vmc(self.home, &["rm", "-f", self.name]);
        let _ = self.vmc.wait();
    }
}

/// The namespaces an exec must share with the workload, as /proc/PID/ns names them.
const NAMESPACES: [&str; 6] = ["pid", "mnt", "uts", "ipc", "net", "cgroup"];

#[test]
fn exec_joins_the_runs_namespaces_and_cgroup() {
    skip_without_containers!();
    let home = home();
    let run = LiveRun::start(
        home.path(),
        "ns",
        &[
            "-m",
            "64m",
            "--hostname",
            "exec-host",
            "busybox",
            "sh",
            "-c",
            "echo from-the-workload > /made; exec sleep 120",
        ],
    );
    // PID: PID 1 is the workload, and the exec'd shell sees the run's few processes only.
    assert_eq!(
        run.stdout(&[], &["cat", "/proc/1/cmdline"]),
        "sleep\x00120\x00"
    );
    let ps = run.stdout(&[], &["ps", "-o", "pid,comm"]);
    assert!(ps.lines().count() <= 4, "{ps}");
    // Mount: the workload's file, on its writable layer.
    assert_eq!(run.stdout(&[], &["cat", "/made"]), "from-the-workload\n");
    // UTS.
    assert_eq!(run.stdout(&[], &["hostname"]), "exec-host\n");
    // Every namespace is PID 1's, and not vmc's.
    let script = NAMESPACES
        .iter()
        .map(|ns| format!("echo {ns} $(readlink /proc/1/ns/{ns}) $(readlink /proc/self/ns/{ns})"))
        .collect::<Vec<_>>()
        .join("; ");
    let listed = run.stdout(&[], &["sh", "-c", &script]);
    assert_eq!(listed.lines().count(), NAMESPACES.len(), "{listed}");
    for line in listed.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        assert_eq!(fields.len(), 3, "{line}");
        assert_eq!(
            fields[1], fields[2],
            "the exec is not in PID 1's namespace: {line}"
        );
        let host = std::fs::read_link(format!("/proc/self/ns/{}", fields[0])).unwrap();
        assert_ne!(
            Path::new(fields[1]),
            host,
            "the run shares vmc's namespace: {line}"
        );
    }
    // Network: loopback only, as in the workload.
    let links = run.stdout(&[], &["sh", "-c", "ls /sys/class/net"]);
    assert_eq!(links, "lo\n");
    // Cgroup: the same paths as the workload's (the run's cgroup, the root of its namespace),
    // and the run's limit.
    assert_eq!(
        run.stdout(&[], &["cat", "/proc/self/cgroup"]),
        run.stdout(&[], &["cat", "/proc/1/cgroup"])
    );
    let limit = run.stdout(
        &[],
        &[
            "sh",
            "-c",
            "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes",
        ],
    );
    assert_eq!(limit, "67108864\n");
}

#[test]
fn exec_follows_the_exit_status_contract_and_its_flags() {
    skip_without_containers!();
    let home = home();
    let mut run = LiveRun::start(
        home.path(),
        "flags",
        &["-e", "FROM_RUN=1", "busybox", "sleep", "120"],
    );
    // Exit codes: the command's, 127 and 126 with Docker's messages, 128+N for a signal.
    assert_eq!(
        run.exec(&[], &["sh", "-c", "exit 7"]).status.code(),
        Some(7)
    );
    let missing = run.exec(&[], &["no-such-command"]);
    assert_eq!(missing.status.code(), Some(127));
    assert_eq!(
        text(&missing.stderr),
        "vmc: exec: \"no-such-command\": executable file not found in $PATH\n"
    );
    let not_executable = run.exec(&[], &["/etc/passwd"]);
    assert_eq!(not_executable.status.code(), Some(126));
    assert!(text(&not_executable.stderr).contains("permission denied"));
    assert_eq!(
        run.exec(&[], &["sh", "-c", "kill -9 $$"]).status.code(),
        Some(137)
    );
    // -e adds to the run's environment; what follows the run's name is the command's.
    assert_eq!(
        run.stdout(
            &["-e", "FROM_EXEC=2"],
            &["sh", "-c", "echo $FROM_RUN $FROM_EXEC $0", "-e"]
        ),
        "1 2 -e\n"
    );
    // -w, and one that does not exist: 126 and one line.
    assert_eq!(run.stdout(&["-w", "/tmp"], &["pwd"]), "/tmp\n");
    let no_dir = run.exec(&["-w", "/nowhere"], &["true"]);
    assert_eq!(no_dir.status.code(), Some(126));
    assert_eq!(
        text(&no_dir.stderr).lines().count(),
        1,
        "{}",
        text(&no_dir.stderr)
    );
    // -u resolved against the run's /etc/passwd, with its home; a non-root user gets no
    // capabilities, as the workload would.
    assert_eq!(
        run.stdout(
            &["-u", "nobody"],
            &[
                "sh",
                "-c",
                "id -u; id -g; echo $HOME; grep CapEff /proc/self/status"
            ]
        ),
        "65534\n65534\n/nonexistent\nCapEff:\t0000000000000000\n"
    );
    // -i passes stdin on.
    let mut cat = Command::new(VMC)
        .args(["exec", "-i", "flags", "cat"])
        .env("VMC_HOME", home.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    cat.stdin
        .take()
        .unwrap()
        .write_all(b"through stdin\n")
        .unwrap();
    let out = cat.wait_with_output().unwrap();
    assert_eq!(text(&out.stdout), "through stdin\n");
    // -t: a pty of the run's own devpts, TERM=xterm (under script(1), which gives vmc a
    // terminal).
    if Path::new("/usr/bin/script").exists() {
        let out = Command::new("script")
            .args([
                "-qec",
                &format!("{VMC} exec -it flags sh -c 'tty; echo $TERM'"),
                "/dev/null",
            ])
            .env("VMC_HOME", home.path())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let shown = text(&out.stdout);
        // script(1) forwards its own (empty) input too, which the pty may echo in between.
        assert!(shown.contains("/dev/pts/0\r\n"), "{shown:?}");
        assert!(shown.contains("xterm\r\n"), "{shown:?}");
    } else {
        eprintln!("SKIPPED: -t (script(1) from util-linux is missing)");
    }
    // -d returns at once; the command runs on in the run.
    let detached = run.exec(&["-d"], &["sh", "-c", "sleep 0.3; echo later > /detached"]);
    assert!(detached.status.success(), "{}", text(&detached.stderr));
    assert!(text(&detached.stdout).is_empty());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !run.exec(&[], &["test", "-e", "/detached"]).status.success() {
        assert!(
            Instant::now() < deadline,
            "the detached command never wrote"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Signals sent to vmc reach the command.
    let mut trapped = Command::new(VMC)
        .args(["exec", "flags", "sh", "-c"])
        .arg("trap 'echo got TERM; exit 3' TERM; echo ready; while :; do sleep 0.1; done")
        .env("VMC_HOME", home.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = [0u8; 6];
    std::io::Read::read_exact(trapped.stdout.as_mut().unwrap(), &mut ready).unwrap();
    assert_eq!(&ready, b"ready\n");
    // SAFETY: kill takes a pid and a signal number.
    assert_eq!(unsafe { libc::kill(trapped.id() as i32, libc::SIGTERM) }, 0);
    let out = trapped.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(text(&out.stdout), "got TERM\n");
    // A run that is gone: one line, 125.
    run.remove();
    for reference in ["flags", "no-such-run"] {
        let gone = vmc(home.path(), &["exec", reference, "true"]);
        assert_eq!(gone.status.code(), Some(125), "{reference}");
        assert_eq!(
            text(&gone.stderr).lines().count(),
            1,
            "{}",
            text(&gone.stderr)
        );
    }
}

#[test]
fn exec_runs_under_the_workloads_confinement() {
    skip_without_containers!();
    let home = home();
    let probe = |args: &[&str]| -> String {
        let out = vmc(home.path(), args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    };
    for (name, flags) in [
        ("default", &["-m", "64m", "--pids-limit", "100"][..]),
        (
            "tightened",
            &["--cap-drop", "ALL", "--security-opt", "no-new-privileges"][..],
        ),
        ("loosened", &["--cap-add", "SYS_ADMIN"][..]),
    ] {
        let mut args = vec!["run", "--rm"];
        args.extend(flags);
        args.extend(["vmc-workload", "confinement"]);
        let own_run = probe(&args);
        let mut run_args = flags.to_vec();
        run_args.extend(["vmc-workload", "sleep", "120"]);
        let run = LiveRun::start(home.path(), name, &run_args);
        let exec = probe(&["exec", name, "/usr/bin/vmc-workload", "confinement"]);
        assert_eq!(
            exec, own_run,
            "{name}: the exec's confinement is not the workload's"
        );
        assert!(own_run.contains("Seccomp=2\n"), "{name}: {own_run}");
        drop(run);
    }
}

#[test]
fn exec_refuses_a_finished_run() {
    skip_without_containers!();
    let home = home();
    let out = vmc(home.path(), &["run", "--name", "done", "busybox", "true"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let refused = vmc(home.path(), &["exec", "done", "true"]);
    assert_eq!(refused.status.code(), Some(125));
    assert_eq!(
        text(&refused.stderr),
        "vmc: run done is not running: `vmc exec` needs a running run (see `vmc ps -a`)\n"
    );
}

/// `setpriv` as nobody, with vmc's home in `home`: how a rootless vmc is run here.
fn as_nobody(home: &Path) -> Command {
    let mut command = Command::new("setpriv");
    command
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", VMC])
        .env("VMC_HOME", home.join("home"))
        .env("HOME", home);
    command
}

#[test]
fn exec_joins_a_rootless_runs_user_namespace() {
    skip_without_containers!();
    let unprivileged_userns = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "unshare",
            "-U",
            "true",
        ])
        .status()
        .is_ok_and(|status| status.success());
    if !unprivileged_userns {
        eprintln!("SKIPPED: nobody cannot make a user namespace here (setpriv, unshare -U)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::chown(dir.path(), Some(65534), Some(65534)).unwrap();
    let rootfs = dir.path().join("rootfs");
    common::busybox_rootfs(&rootfs);
    let imported = as_nobody(dir.path())
        .args(["import", rootfs.to_str().unwrap(), "--tag", "bb"])
        .output()
        .unwrap();
    assert!(imported.status.success(), "{}", text(&imported.stderr));
    let mut run = as_nobody(dir.path())
        .args(["run", "--name", "rootless", "bb", "sh", "-c"])
        .arg("echo mine > /made; exec sleep 120")
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let exec = |command: &str| {
        as_nobody(dir.path())
            .args(["exec", "rootless", "sh", "-c", command])
            .output()
            .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !exec("true").status.success() {
        assert!(
            Instant::now() < deadline,
            "the rootless run never became reachable"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = exec("id -u; cat /made; for ns in user pid mnt; do [ $(readlink /proc/1/ns/$ns) = $(readlink /proc/self/ns/$ns) ] && echo same $ns; done");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "0\nmine\nsame user\nsame pid\nsame mnt\n"
    );
    let removed = as_nobody(dir.path())
        .args(["rm", "-f", "rootless"])
        .output()
        .unwrap();
    assert!(removed.status.success(), "{}", text(&removed.stderr));
    let _ = run.wait();
}
