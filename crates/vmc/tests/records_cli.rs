//! Run records against pid reuse and a full store: `vmc ps` and `vmc rm -f` never take an
//! unrelated process for a run's supervisor, and a workload's exit status survives a record
//! that cannot be written.

mod common;

use common::{busybox_rootfs, container_skip_reason, text, vmc, VMC};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A `sleep 60` that is killed when the test ends.
struct Sleeper(Child);

impl Sleeper {
    fn spawn() -> Sleeper {
        Sleeper(Command::new("sleep").arg("60").spawn().unwrap())
    }

    fn pid(&self) -> i32 {
        self.0.id() as i32
    }

    /// Whether the sleep is still running (not exited, not a zombie).
    fn alive(&mut self) -> bool {
        self.0.try_wait().unwrap().is_none()
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Field 22 of /proc/PID/stat.
fn start_time(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = stat.rsplit_once(')').unwrap().1;
    after_name
        .split_whitespace()
        .nth(19)
        .unwrap()
        .parse()
        .unwrap()
}

fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .unwrap()
        .trim()
        .to_string()
}

/// Writes a "running" record of run `name` (id = `digit` repeated) supervised by `pid`, with
/// the given extra fields, the way vmc writes its records.
fn write_record(home: &Path, name: &str, digit: char, pid: i32, extra: serde_json::Value) {
    let id: String = std::iter::repeat_n(digit, 64).collect();
    let mut record = serde_json::json!({
        "id": id,
        "name": name,
        "mode": "container",
        "image": "busybox",
        "image_id": "",
        "command": ["sleep", "60"],
        "created": 1,
        "supervisor_pid": pid,
        "outcome": null,
    });
    record
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let dir = home.join("runs").join(&id);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("state.json"), record.to_string()).unwrap();
}

fn ps_line(home: &Path, name: &str) -> String {
    let ps = text(&vmc(home, &["ps", "-a"]).stdout);
    ps.lines()
        .find(|line| line.ends_with(name))
        .unwrap_or_else(|| panic!("{name} not in {ps}"))
        .to_string()
}

#[test]
fn a_reused_pid_is_neither_shown_running_nor_killed() {
    let home = tempfile::tempdir().unwrap();
    let mut reused = Sleeper::spawn();
    let mut old_format = Sleeper::spawn();
    let mut supervisor = Sleeper::spawn();
    // The pid now belongs to a process that started at another time than the recorded one.
    let other_start = start_time(reused.pid()) - 1;
    write_record(
        home.path(),
        "reused",
        'a',
        reused.pid(),
        serde_json::json!({"supervisor_start_time": other_start, "boot_id": boot_id()}),
    );
    // A record from before vmc kept start times: its pid proves nothing.
    write_record(
        home.path(),
        "oldformat",
        'b',
        old_format.pid(),
        serde_json::json!({}),
    );
    // The recorded process itself, still alive.
    let start = start_time(supervisor.pid());
    write_record(
        home.path(),
        "live",
        'c',
        supervisor.pid(),
        serde_json::json!({"supervisor_start_time": start, "boot_id": boot_id(), "started": 1}),
    );
    for name in ["reused", "oldformat"] {
        let line = ps_line(home.path(), name);
        assert!(line.contains("Dead") && !line.contains("Up "), "{line}");
    }
    let live = ps_line(home.path(), "live");
    assert!(live.contains("Up "), "{live}");
    let running = text(&vmc(home.path(), &["ps"]).stdout);
    assert!(
        running.contains("live") && !running.contains("reused") && !running.contains("oldformat"),
        "{running}"
    );

    let out = vmc(home.path(), &["rm", "-f", "reused", "oldformat"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        reused.alive(),
        "rm -f killed the process that reused the pid"
    );
    assert!(
        old_format.alive(),
        "rm -f trusted a pid without a start time"
    );

    let refused = vmc(home.path(), &["rm", "live"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(text(&refused.stderr).contains("still running"));
    assert!(supervisor.alive());
    let out = vmc(home.path(), &["rm", "-f", "live"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let status = supervisor.0.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL),
        "rm -f kills the recorded supervisor"
    );
    assert_eq!(
        std::fs::read_dir(home.path().join("runs")).unwrap().count(),
        0
    );
}

/// A tmpfs mounted in a private mount namespace, held by a `sleep` inside it. Other processes
/// reach it through `/proc/<holder>/root` and enter it with `nsenter`.
struct PrivateTmpfs {
    holder: Child,
    mount_point: PathBuf,
    _dir: tempfile::TempDir,
}

impl PrivateTmpfs {
    fn mount(size: &str) -> PrivateTmpfs {
        let dir = tempfile::tempdir().unwrap();
        let mount_point = dir.path().join("home");
        std::fs::create_dir(&mount_point).unwrap();
        let mut holder = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(r#"mount -t tmpfs -o "size=$1,mode=0700" vmc-test "$2" && echo mounted && exec sleep 600"#)
            .args(["sh", size])
            .arg(&mount_point)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(holder.stdout.as_mut().unwrap()),
            &mut line,
        )
        .unwrap();
        assert_eq!(line, "mounted\n", "mounting the tmpfs failed");
        PrivateTmpfs {
            holder,
            mount_point,
            _dir: dir,
        }
    }

    /// `path` inside the mount, as this process reaches it.
    fn outside(&self, path: &Path) -> PathBuf {
        let relative = path.strip_prefix("/").unwrap();
        Path::new(&format!("/proc/{}/root", self.holder.id())).join(relative)
    }

    /// vmc with VMC_HOME on the tmpfs, inside its mount namespace.
    fn vmc(&self, args: &[&str]) -> Command {
        let mut command = Command::new("nsenter");
        command
            .arg(format!("--mount=/proc/{}/ns/mnt", self.holder.id()))
            .arg("--")
            .arg(VMC)
            .args(args)
            .env("VMC_HOME", &self.mount_point);
        command
    }

    /// Runs vmc as [`PrivateTmpfs::vmc`] does, to completion.
    fn output(&self, args: &[&str]) -> Output {
        self.vmc(args).output().unwrap()
    }

    /// A VMC_HOME on this tmpfs holding the busybox image, its rootfs already unpacked.
    fn with_busybox(size: &str) -> PrivateTmpfs {
        let tmpfs = PrivateTmpfs::mount(size);
        let source = tempfile::tempdir().unwrap();
        busybox_rootfs(source.path());
        let source = source.path().to_str().unwrap();
        let imported = tmpfs.output(&["import", source, "--tag", "busybox"]);
        assert!(imported.status.success(), "{}", text(&imported.stderr));
        let warm = tmpfs.output(&["run", "--rm", "busybox", "true"]);
        assert!(warm.status.success(), "{}", text(&warm.stderr));
        tmpfs
    }

    /// Starts `vmc run ARGS` in the tmpfs's mount namespace, output captured.
    fn spawn_run(&self, args: &[&str]) -> Child {
        self.vmc(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Waits until a run directory holds a record; returns that directory (as this process
    /// reaches it).
    fn wait_for_record(&self) -> PathBuf {
        let runs = self.outside(&self.mount_point.join("runs"));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let recorded = std::fs::read_dir(&runs).ok().and_then(|dir| {
                dir.flatten()
                    .map(|entry| entry.path())
                    .find(|dir| dir.join("state.json").exists())
            });
            if let Some(dir) = recorded {
                return dir;
            }
            assert!(Instant::now() < deadline, "the run never wrote its record");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for PrivateTmpfs {
    fn drop(&mut self) {
        // The mount dies with the last process of its namespace.
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// Writes zeros into `path` until the filesystem is full.
fn fill(path: &Path) {
    use std::io::Write;
    let mut file = std::fs::File::create(path).unwrap();
    let block = vec![0u8; 64 << 10];
    while file.write_all(&block).is_ok() {}
    let small = [0u8; 512];
    while file.write_all(&small).is_ok() {}
}

/// The one line of stderr, asserted to be the only one.
fn only_line(out: &Output) -> String {
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    stderr.trim_end().to_string()
}

#[test]
fn the_exit_status_survives_a_full_store() {
    if let Some(reason) = container_skip_reason() {
        eprintln!("SKIPPED: {reason}");
        return;
    }
    let tmpfs = PrivateTmpfs::with_busybox("24m");
    let started = Instant::now();
    let run = tmpfs.spawn_run(&[
        "run",
        "--name",
        "full",
        "busybox",
        "sh",
        "-c",
        "sleep 2; exit 42",
    ]);
    tmpfs.wait_for_record();
    // The workload runs once an exec reaches it (the runtime has written what it needs).
    while !tmpfs.output(&["exec", "full", "true"]).status.success() {
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the run never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    fill(&tmpfs.outside(&tmpfs.mount_point.join("filler")));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the store filled only after the workload may have ended"
    );
    let out = run.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(42), "{}", text(&out.stderr));
    let warning = only_line(&out);
    assert!(
        warning.starts_with("vmc: warning: cannot record the run's exit (")
            && warning.ends_with("): vmc ps will show it as dead"),
        "{warning}"
    );
    let ps = text(&tmpfs.output(&["ps", "-a"]).stdout);
    let line = ps.lines().find(|l| l.ends_with("full")).unwrap_or_default();
    assert!(line.contains("Dead"), "{ps}");
}

#[test]
fn the_exit_status_survives_a_record_that_cannot_be_removed() {
    if let Some(reason) = container_skip_reason() {
        eprintln!("SKIPPED: {reason}");
        return;
    }
    let tmpfs = PrivateTmpfs::with_busybox("24m");
    let run = tmpfs.spawn_run(&[
        "run",
        "--rm",
        "--name",
        "kept",
        "busybox",
        "sh",
        "-c",
        "sleep 2; exit 42",
    ]);
    let dir = tmpfs.wait_for_record();
    // A mount point inside the run directory: removing the directory fails with EBUSY.
    let pin = dir.join("pin");
    std::fs::create_dir(&pin).unwrap();
    let inside = Path::new("/").join(
        pin.strip_prefix(format!("/proc/{}/root", tmpfs.holder.id()))
            .unwrap(),
    );
    let mounted = Command::new("nsenter")
        .arg(format!("--mount=/proc/{}/ns/mnt", tmpfs.holder.id()))
        .args(["mount", "-t", "tmpfs", "pin"])
        .arg(&inside)
        .status()
        .unwrap();
    assert!(mounted.success());
    let out = run.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(42), "{}", text(&out.stderr));
    let warning = only_line(&out);
    assert!(
        warning.starts_with("vmc: warning: cannot remove the run's record (")
            && warning.ends_with("): remove it with `vmc rm kept`"),
        "{warning}"
    );
}
