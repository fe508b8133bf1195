//! End-to-end runs of a busybox rootfs through `ContainerRuntime` (root only).

mod common;

use common::{assert_nothing_left, run, skipped, spec};
use vmc_runtime::{ExitOutcome, Milestone};

#[test]
fn output_and_exit_code_pass_through() {
    if skipped() {
        return;
    }
    let dir = common::Fixture::new();
    let s = spec(&["sh", "-c", "echo hello; echo oops >&2; exit 3"], &dir);
    let ran = run(&s).unwrap();
    assert_eq!(ran.outcome, ExitOutcome::Exited(3));
    assert_eq!(ran.stdout, "hello\n");
    assert_eq!(ran.stderr, "oops\n");
    assert_nothing_left(&s);
}

#[test]
fn true_exits_zero_and_marks_every_milestone_in_order() {
    if skipped() {
        return;
    }
    let dir = common::Fixture::new();
    let s = spec(&["/bin/true"], &dir);
    let ran = run(&s).unwrap();
    assert_eq!(ran.outcome, ExitOutcome::Exited(0));
    let order = [
        Milestone::VmcStart,
        Milestone::RuntimeReady,
        Milestone::InitStarted,
        Milestone::WorkloadExec,
        Milestone::WorkloadExit,
        Milestone::TornDown,
    ];
    let offsets: Vec<_> = order
        .iter()
        .map(|m| {
            ran.timeline
                .offset_of(*m)
                .unwrap_or_else(|| panic!("{m:?} missing"))
        })
        .collect();
    assert!(offsets.windows(2).all(|w| w[0] <= w[1]), "{offsets:?}");
    let steps: Vec<&str> = ran
        .timeline
        .steps()
        .iter()
        .map(|s| s.what.as_str())
        .collect();
    for expected in [
        "clone3(CLONE_NEWPID|CLONE_NEWNS",
        "cgroup vmc/",
        "overlay mounted",
        "pivot_root into",
        "exec /bin/true",
    ] {
        assert!(
            steps.iter().any(|s| s.contains(expected)),
            "no step {expected:?} in {steps:#?}"
        );
    }
}

#[test]
fn missing_command_is_127_with_docker_message() {
    if skipped() {
        return;
    }
    let dir = common::Fixture::new();
    let s = spec(&["no-such-command"], &dir);
    let ran = run(&s).unwrap();
    assert_eq!(ran.outcome, ExitOutcome::Exited(127));
    assert_eq!(
        ran.stderr,
        "vmc: exec: \"no-such-command\": executable file not found in $PATH\n"
    );
    assert_eq!(ran.timeline.offset_of(Milestone::WorkloadExec), None);
    let s = spec(&["/bin/nope"], &dir);
    let ran = run(&s).unwrap();
    assert_eq!(ran.outcome, ExitOutcome::Exited(127));
    assert!(
        ran.stderr.contains("no such file or directory"),
        "{}",
        ran.stderr
    );
    assert_nothing_left(&s);
}

#[test]
fn non_executable_is_126() {
    if skipped() {
        return;
    }
    let dir = common::Fixture::new();
    let ran = run(&spec(&["/etc/passwd"], &dir)).unwrap();
    assert_eq!(ran.outcome, ExitOutcome::Exited(126));
    assert_eq!(
        ran.stderr,
        "vmc: exec: \"/etc/passwd\": permission denied\n"
    );
    let ran = run(&spec(&["/tmp"], &dir)).unwrap();
    assert_eq!(ran.outcome, ExitOutcome::Exited(126));
    assert_eq!(ran.stderr, "vmc: exec: \"/tmp\": is a directory\n");
}

#[test]
fn env_workdir_and_user_are_applied() {
    if skipped() {
        return;
    }
    let dir = common::Fixture::new();
    let mut s = spec(
        &["sh", "-c", "echo $FOO; pwd; id -u; id -g; echo $HOME"],
        &dir,
    );
    s.env.push("FOO=bar baz".into());
    s.workdir = "/made/by/vmc".into();
    s.uid = 1000;
    s.gid = 1000;
    let ran = run(&s).unwrap();
    assert_eq!(ran.outcome, ExitOutcome::Exited(0), "{}", ran.stderr);
    assert_eq!(
        ran.stdout,
        "bar baz\n/made/by/vmc\n1000\n1000\n/home/user\n"
    );
    assert!(!dir.image.path().join("made").exists());
}

#[test]
fn path_lookup_uses_the_container_path() {
    if skipped() {
        return;
    }
    let dir = common::Fixture::new();
    let mut s = spec(&["mytool"], &dir);
    s.env = vec!["PATH=/opt/tools:/bin".into()];
    s.args = vec!["sh".into(), "-c".into(), "mkdir -p /opt/tools && printf '#!/bin/sh\\necho tool ran\\n' > /opt/tools/mytool && chmod +x /opt/tools/mytool && exec mytool".into()];
    let ran = run(&s).unwrap();
    assert_eq!(ran.stdout, "tool ran\n", "{}", ran.stderr);
}

#[test]
fn rootfs_is_the_image_and_writes_stay_in_the_run() {
    if skipped() {
        return;
    }
    let dir = common::Fixture::new();
    let s = spec(
        &["sh", "-c", "cat /etc/marker; test -e /work && echo host-visible; echo changed > /etc/marker; rm /bin/ls; touch /newfile; cat /etc/marker"],
        &dir,
    );
    let ran = run(&s).unwrap();
    assert_eq!(ran.outcome, ExitOutcome::Exited(0), "{}", ran.stderr);
    assert_eq!(ran.stdout, "image\nchanged\n");
    let image = dir.image.path();
    assert_eq!(
        std::fs::read_to_string(image.join("etc/marker")).unwrap(),
        "image\n"
    );
    assert!(image.join("bin/ls").symlink_metadata().is_ok());
    assert!(!image.join("newfile").exists());
    assert_nothing_left(&s);
}

#[test]
fn workload_is_pid_1_with_isolated_hostname() {
    if skipped() {
        return;
    }
    let dir = common::Fixture::new();
    let ran = run(&spec(
        &[
            "sh",
            "-c",
            "echo $$; hostname; ps -o pid,comm >/tmp/ps; wc -l </tmp/ps",
        ],
        &dir,
    ))
    .unwrap();
    // ps shows its header, sh (PID 1) and itself: nothing of the host. (Through a file, not a
    // pipe: whether a piped wc already existed when ps read /proc was a race.)
    assert_eq!(ran.stdout, "1\nvmctest\n3\n", "{}", ran.stderr);
    let host = nix::unistd::gethostname().unwrap();
    assert_ne!(host.to_str(), Some("vmctest"));
}

#[test]
fn only_loopback_without_host_network() {
    if skipped() {
        return;
    }
    let dir = common::Fixture::new();
    let ran = run(&spec(
        &[
            "sh",
            "-c",
            "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '; ip -o link show lo",
        ],
        &dir,
    ))
    .unwrap();
    let mut lines = ran.stdout.lines();
    assert_eq!(lines.next(), Some("lo"), "{}", ran.stdout);
    let lo = lines.next().unwrap_or_default();
    assert!(lo.contains("UP"), "loopback not up: {lo}");
    assert_eq!(lines.next(), None);

    let host_interfaces = std::fs::read_to_string("/proc/net/dev")
        .unwrap()
        .lines()
        .count()
        - 2;
    let mut s = spec(&["sh", "-c", "tail -n +3 /proc/net/dev | wc -l"], &dir);
    s.network = vmc_runtime::NetworkMode::Host;
    let ran = run(&s).unwrap();
    assert_eq!(ran.stdout.trim(), host_interfaces.to_string());
}

#[test]
fn memory_limit_oom_kills_and_is_reported() {
    if skipped() {
        return;
    }
    let dir = common::Fixture::new();
    // dd holds a 64 MiB block in memory: PID 1 itself exceeds the 32 MiB limit.
    let mut s = spec(
        &["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"],
        &dir,
    );
    s.resources.memory_bytes = Some(32 << 20);
    let ran = run(&s).unwrap();
    assert_eq!(ran.outcome, ExitOutcome::OomKilled, "{}", ran.stderr);
    assert_eq!(ran.outcome.exit_code(), 137);
    assert_nothing_left(&s);
    // The same workload fits in 128 MiB.
    s.id = common::new_id();
    s.resources.memory_bytes = Some(128 << 20);
    let ran = run(&s).unwrap();
    assert_eq!(ran.outcome, ExitOutcome::Exited(0), "{}", ran.stderr);
}

#[test]
fn pids_limit_stops_forks() {
    if skipped() {
        return;
    }
    let dir = common::Fixture::new();
    let mut s = spec(
        &[
            "sh",
            "-c",
            "for i in $(seq 1 20); do sleep 30 & done; echo loop done",
        ],
        &dir,
    );
    s.resources.pids_limit = Some(8);
    let ran = run(&s).unwrap();
    assert!(ran.stderr.contains("can't fork"), "stderr: {}", ran.stderr);
    assert_nothing_left(&s);
}

#[test]
fn sigkilled_workload_is_137_and_cleaned_up() {
    if skipped() {
        return;
    }
    let dir = common::Fixture::new();
    let s = spec(&["sleep", "100"], &dir);
    let id = s.id.clone();
    let killer = std::thread::spawn(move || common::kill_when_running(&id, "sleep"));
    let ran = run(&s).unwrap();
    killer.join().unwrap();
    assert_eq!(ran.outcome, ExitOutcome::Signaled(9));
    assert_eq!(ran.outcome.exit_code(), 137);
    assert_nothing_left(&s);
}

#[test]
fn setup_failure_is_an_error_and_leaves_nothing() {
    if skipped() {
        return;
    }
    let dir = common::Fixture::new();
    let mut s = spec(&["true"], &dir);
    s.workdir = "/etc/marker/sub".into();
    let err = run(&s).unwrap_err();
    assert!(
        err.contains("creating the working directory /etc/marker/sub: Not a directory"),
        "{err}"
    );
    assert_nothing_left(&s);
}

#[test]
fn volumes_bind_host_dirs_and_honour_read_only() {
    if skipped() {
        return;
    }
    let dir = common::Fixture::new();
    let shared = tempfile::tempdir().unwrap();
    std::fs::write(shared.path().join("in"), "from host\n").unwrap();
    let mut s = spec(
        &[
            "sh",
            "-c",
            "cat /rw/in; echo out > /rw/out; echo x > /ro/x 2>/dev/null || echo ro refused; cat /conf/d/file.txt",
        ],
        &dir,
    );
    s.mounts = vec![
        vmc_runtime::BindMount {
            host: shared.path().to_path_buf(),
            target: "/rw".into(),
            readonly: false,
        },
        vmc_runtime::BindMount {
            host: shared.path().to_path_buf(),
            target: "/ro".into(),
            readonly: true,
        },
        vmc_runtime::BindMount {
            host: shared.path().join("in"),
            target: "/conf/d/file.txt".into(),
            readonly: true,
        },
    ];
    let ran = run(&s).unwrap();
    assert_eq!(
        ran.stdout, "from host\nro refused\nfrom host\n",
        "{}",
        ran.stderr
    );
    assert_eq!(
        std::fs::read_to_string(shared.path().join("out")).unwrap(),
        "out\n"
    );
    assert!(!shared.path().join("x").exists());
}

#[test]
fn fifty_runs_leave_nothing_behind() {
    if skipped() {
        return;
    }
    let dir = common::Fixture::new();
    let mounts_before = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    for _ in 0..50 {
        let mut s = spec(&["true"], &dir);
        s.resources.memory_bytes = Some(64 << 20);
        s.resources.pids_limit = Some(16);
        s.resources.cpus = Some(0.5);
        let ran = run(&s).unwrap();
        assert_eq!(ran.outcome, ExitOutcome::Exited(0));
        assert_nothing_left(&s);
    }
    let mounts_after = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert_eq!(mounts_before, mounts_after);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn cleanup_removes_what_a_crashed_vmc_left() {
    if skipped() {
        return;
    }
    use vmc_runtime::Runtime;
    let dir = common::Fixture::new();
    let id = common::new_id();
    // What a vmc killed mid-run leaves: a cgroup holding a process (the writable layer was a
    // tmpfs in the dead container's mount namespace).
    let hierarchy =
        vmc_container::cgroups::Hierarchy::detect(std::path::Path::new("/sys/fs/cgroup")).unwrap();
    let (cgroup, _) = hierarchy
        .create(&id, &vmc_container::cgroups::Limits::default())
        .unwrap();
    let mut orphan = std::process::Command::new("sleep")
        .arg("100")
        .spawn()
        .unwrap();
    cgroup.create_late().unwrap();
    cgroup.add_process(orphan.id() as i32).unwrap();
    // One directory per hierarchy (v1), or the one of v2.
    assert!(!common::cgroup_dirs(&id).is_empty());

    let runtime = vmc_container::ContainerRuntime::new();
    runtime.cleanup(&id, dir.path()).unwrap();
    let status = orphan.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
    assert!(common::cgroup_dirs(&id).is_empty());
    // Idempotent.
    runtime.cleanup(&id, dir.path()).unwrap();
}

/// Sends `signal` to thread `tid` of this process once run `id` runs `comm`.
fn signal_thread_when_running(
    tid: libc::pid_t,
    id: String,
    comm: &'static str,
    signals: Vec<i32>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        common::wait_until_running(&id, comm);
        for signal in signals {
            // SAFETY: tgkill sends a signal to one thread of this process; the runtime has it
            // blocked and reads it from its signalfd.
            unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, signal) };
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    })
}

#[test]
fn signals_to_vmc_are_forwarded_to_the_workload() {
    if skipped() {
        return;
    }
    let dir = common::Fixture::new();
    let s = spec(
        &[
            "sh",
            "-c",
            "trap 'echo got TERM; exit 42' TERM; sleep 100 & wait",
        ],
        &dir,
    );
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() };
    let sender = signal_thread_when_running(tid, s.id.clone(), "sleep", vec![libc::SIGTERM]);
    let ran = run(&s).unwrap();
    sender.join().unwrap();
    assert_eq!(ran.outcome, ExitOutcome::Exited(42));
    assert_eq!(ran.stdout, "got TERM\n");
    assert_nothing_left(&s);
}

#[test]
fn third_interrupt_kills_a_workload_that_ignores_them() {
    if skipped() {
        return;
    }
    let dir = common::Fixture::new();
    // PID 1 without a SIGINT handler does not die of SIGINT.
    let s = spec(&["sleep", "100"], &dir);
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() };
    let sender = signal_thread_when_running(tid, s.id.clone(), "sleep", vec![libc::SIGINT; 3]);
    let ran = run(&s).unwrap();
    sender.join().unwrap();
    assert_eq!(ran.outcome, ExitOutcome::Signaled(9));
    assert_nothing_left(&s);
}

#[test]
fn the_writable_layer_is_on_disk_and_outlives_the_run() {
    if skipped() {
        return;
    }
    let dir = common::Fixture::new();
    // 300 MB under a 64 MiB limit: the writes are disk blocks whose page cache the cgroup
    // reclaims, not memory the workload holds (a tmpfs layer is OOM-killed here).
    let mut s = spec(
        &[
            "sh",
            "-c",
            "dd if=/dev/zero of=/big bs=1M count=300 2>/dev/null && echo kept > /note && \
             { cat /sys/fs/cgroup/memory.peak 2>/dev/null || \
               cat /sys/fs/cgroup/memory/memory.max_usage_in_bytes; }",
        ],
        &dir,
    );
    s.resources.memory_bytes = Some(64 << 20);
    let ran = run(&s).unwrap();
    assert_eq!(ran.outcome, ExitOutcome::Exited(0), "{}", ran.stderr);
    let peak: u64 = ran.stdout.trim().parse().expect("the cgroup's peak");
    assert!(peak <= 64 << 20, "peak {peak}");
    let upper = vmc_container::WritableLayer::of(&s.run_dir);
    assert_eq!(
        std::fs::metadata(upper.upper().join("big")).unwrap().len(),
        300 << 20
    );
    // A later run on the same directory sees the files.
    let again = spec(&["cat", "/note"], &dir);
    let again = vmc_runtime::RunSpec {
        id: s.id.clone(),
        ..again
    };
    assert_eq!(run(&again).unwrap().stdout, "kept\n");
    assert_nothing_left(&again);
    assert!(!upper.exists());
}

#[test]
fn the_runs_etc_files_cover_the_images_without_copying_them_up() {
    if skipped() {
        return;
    }
    let dir = common::Fixture::new();
    for name in vmc_runtime::etc_files::NAMES {
        std::fs::write(dir.image.path().join("etc").join(name), "the image's\n").unwrap();
    }
    let s = spec(
        &["cat", "/etc/hosts", "/etc/hostname", "/etc/resolv.conf"],
        &dir,
    );
    let ran = run(&s).unwrap();
    assert_eq!(ran.outcome, ExitOutcome::Exited(0), "{}", ran.stderr);
    assert!(ran.stdout.contains("localhost") && !ran.stdout.contains("the image's"));
    // Covered by the run's files, not copied into its writable layer first.
    let layer = vmc_container::WritableLayer::of(&s.run_dir);
    assert!(!layer.upper().join("etc").exists());
    assert_nothing_left(&s);
}

#[test]
fn only_a_layer_removed_with_the_run_is_mounted_volatile() {
    if skipped() {
        return;
    }
    let dir = common::Fixture::new();
    // The root's mount options, from the container's own mount table.
    let root_options = |auto_remove: bool| {
        let mut s = spec(
            &["sh", "-c", "while read -r _ _ _ _ point options rest; do [ \"$point\" = / ] && echo \"$rest\"; done < /proc/self/mountinfo"],
            &dir,
        );
        s.auto_remove = auto_remove;
        let ran = run(&s).unwrap();
        assert_nothing_left(&s);
        ran.stdout
    };
    assert!(!root_options(false).contains("volatile"));
    assert!(root_options(true).contains("volatile"));
}
