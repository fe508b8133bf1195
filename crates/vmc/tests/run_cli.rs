//! `vmc run`, `vmc ps` and `vmc rm` end to end through the binary, with a temporary VMC_HOME
//! holding a busybox image: the exit-status contract, the run records, and the one-line
//! errors for bad input. Container runs need root and cgroups (CI has both).

mod common;

use common::{busybox_rootfs, container_skip_reason, text, vmc, VMC};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// A temporary vmc home with a minimal busybox image tagged `busybox`.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn with_busybox() -> Home {
        let dir = tempfile::tempdir().unwrap();
        let rootfs = dir.path().join("rootfs-src");
        busybox_rootfs(&rootfs);
        let home = Home { dir };
        let out = home.vmc(&["import", rootfs.to_str().unwrap(), "--tag", "busybox"]);
        assert!(out.status.success(), "import failed: {}", text(&out.stderr));
        home
    }

    fn vmc(&self, args: &[&str]) -> Output {
        vmc(self.dir.path(), args)
    }
}

macro_rules! skip_without_containers {
    () => {
        if let Some(reason) = container_skip_reason() {
            eprintln!("SKIPPED: {reason}");
            return;
        }
    };
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("vmc exited normally")
}

#[test]
fn exit_status_contract_in_container_mode() {
    skip_without_containers!();
    let home = Home::with_busybox();
    let out = home.vmc(&["run", "--rm", "busybox", "echo", "hello", "world"]);
    assert_eq!((code(&out), text(&out.stdout)), (0, "hello world\n".into()));
    assert_eq!(
        code(&home.vmc(&["run", "--rm", "busybox", "sh", "-c", "exit 3"])),
        3
    );
    // PID 1 of a container ignores its own SIGKILL, as in Docker: exceed the memory limit instead.
    let oom = home.vmc(&[
        "run",
        "--rm",
        "-m",
        "32m",
        "busybox",
        "dd",
        "if=/dev/zero",
        "of=/dev/null",
        "bs=64M",
        "count=1",
    ]);
    assert_eq!(code(&oom), 137, "{}", text(&oom.stderr));
    assert!(
        text(&oom.stderr).contains("OOM killer"),
        "{}",
        text(&oom.stderr)
    );
    let missing = home.vmc(&["run", "--rm", "busybox", "no-such-command"]);
    assert_eq!(code(&missing), 127, "{}", text(&missing.stderr));
    assert!(text(&missing.stderr).contains("no-such-command"));
    let not_executable = home.vmc(&["run", "--rm", "busybox", "/etc/passwd"]);
    assert_eq!(
        code(&not_executable),
        126,
        "{}",
        text(&not_executable.stderr)
    );
}

#[test]
fn image_config_and_flags_reach_the_workload() {
    skip_without_containers!();
    let home = Home::with_busybox();
    let out = home.vmc(&[
        "run",
        "--rm",
        "-e",
        "GREETING=hi",
        "-w",
        "/tmp",
        "-u",
        "nobody",
        "--hostname",
        "box",
        "busybox",
        "sh",
        "-c",
        "echo $GREETING; pwd; id -u; hostname",
    ]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "hi\n/tmp\n65534\nbox\n");
}

#[test]
fn everything_after_the_image_reaches_the_workload() {
    skip_without_containers!();
    let home = Home::with_busybox();
    // vmc's flags go before the image; after it, --help and -e are the workload's words.
    let out = home.vmc(&[
        "run",
        "--rm",
        "--entrypoint",
        "/bin/echo",
        "busybox",
        "--help",
        "-e",
        "FOO=1",
    ]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "--help -e FOO=1\n");
    let out = home.vmc(&["run", "--rm", "-e", "FOO=1", "busybox", "env"]);
    assert!(
        text(&out.stdout).contains("FOO=1\n"),
        "{}",
        text(&out.stdout)
    );
    // As with Docker, `-e` after the image is the command to run: there is no such program.
    let out = home.vmc(&["run", "--rm", "busybox", "-e", "FOO=1", "env"]);
    assert_eq!(code(&out), 127, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("-e"), "{}", text(&out.stderr));
}

#[test]
fn a_terminal_gets_term_xterm_unless_the_image_or_user_sets_it() {
    skip_without_containers!();
    let home = Home::with_busybox();
    let term = |args: &[&str]| {
        let out = home.vmc(args);
        assert_eq!(code(&out), 0, "{}", text(&out.stderr));
        text(&out.stdout).trim_end().to_string()
    };
    let echo_term = ["sh", "-c", "echo TERM=${TERM-unset}"];
    let with = |flags: &[&'static str], image: &'static str| -> Vec<&'static str> {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(flags);
        args.push(image);
        args.extend_from_slice(&echo_term);
        args
    };
    assert_eq!(term(&with(&["-t"], "busybox")), "TERM=xterm");
    assert_eq!(term(&with(&[], "busybox")), "TERM=unset");
    assert_eq!(
        term(&with(&["-t", "-e", "TERM=vt100"], "busybox")),
        "TERM=vt100"
    );
    let rootfs = home.dir.path().join("rootfs-src");
    let out = home.vmc(&[
        "import",
        rootfs.to_str().unwrap(),
        "--tag",
        "screen",
        "--change",
        "ENV TERM=screen",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(term(&with(&["-t"], "screen")), "TERM=screen");
}

#[test]
fn etc_hosts_hostname_and_resolv_conf_are_dockers() {
    skip_without_containers!();
    let home = Home::with_busybox();
    let out = home.vmc(&[
        "run",
        "--rm",
        "--hostname",
        "box",
        "busybox",
        "sh",
        "-c",
        "cat /etc/hosts /etc/hostname; grep -c '^nameserver ' /etc/resolv.conf; grep -c '^nameserver 127[.]' /etc/resolv.conf",
    ]);
    // The last grep finds no loopback nameserver, so the script's status is 1.
    assert_eq!(code(&out), 1, "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let (files, counts) = stdout.split_at(vmc_runtime::etc_files::LOCALHOST_HOSTS.len() + 4);
    assert_eq!(
        files,
        format!("{}box\n", vmc_runtime::etc_files::LOCALHOST_HOSTS)
    );
    let counts: Vec<u32> = counts.lines().map(|n| n.parse().unwrap()).collect();
    assert!(counts[0] >= 1 && counts[1] == 0, "nameservers: {counts:?}");
    // With the host's network, the host's files; a volume onto one of them wins.
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    let out = home.vmc(&[
        "run",
        "--rm",
        "--network",
        "host",
        "busybox",
        "cat",
        "/etc/hosts",
    ]);
    assert_eq!((code(&out), text(&out.stdout)), (0, hosts));
    let mine = home.dir.path().join("my-hosts");
    std::fs::write(&mine, "10.9.9.9 mine\n").unwrap();
    let volume = format!("{}:/etc/hosts:ro", mine.display());
    let out = home.vmc(&["run", "--rm", "-v", &volume, "busybox", "cat", "/etc/hosts"]);
    assert_eq!(
        (code(&out), text(&out.stdout)),
        (0, "10.9.9.9 mine\n".into())
    );
}

#[test]
fn runs_are_recorded_until_removed() {
    skip_without_containers!();
    let home = Home::with_busybox();
    let out = home.vmc(&["run", "--name", "kept", "busybox", "sh", "-c", "exit 4"]);
    assert_eq!(code(&out), 4);
    let ps = text(&home.vmc(&["ps", "-a"]).stdout);
    assert!(ps.contains("kept") && ps.contains("Exited (4)"), "{ps}");
    assert!(
        !text(&home.vmc(&["ps"]).stdout).contains("kept"),
        "exited runs show only with -a"
    );
    let taken = home.vmc(&["run", "--name", "kept", "busybox", "true"]);
    assert_eq!(code(&taken), 125);
    assert!(text(&taken.stderr).contains("already in use"));
    assert_eq!(code(&home.vmc(&["rm", "kept"])), 0);
    assert!(!text(&home.vmc(&["ps", "-a"]).stdout).contains("kept"));
    assert_eq!(
        std::fs::read_dir(home.dir.path().join("runs"))
            .unwrap()
            .count(),
        0
    );
    assert_eq!(code(&home.vmc(&["run", "--rm", "busybox", "true"])), 0);
    assert_eq!(
        std::fs::read_dir(home.dir.path().join("runs"))
            .unwrap()
            .count(),
        0,
        "--rm leaves no record"
    );
}

#[test]
fn an_image_in_use_by_a_running_run_is_not_removed() {
    skip_without_containers!();
    let home = Home::with_busybox();
    let shared = home.dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    let volume = format!("{}:/shared", shared.display());
    // Runs until the test creates shared/stop.
    let mut busy = Command::new(VMC)
        .args(["run", "--rm", "--name", "busy", "-v", &volume, "busybox"])
        .args([
            "sh",
            "-c",
            "touch /shared/started; while [ ! -e /shared/stop ]; do sleep 0.05; done",
        ])
        .env("VMC_HOME", home.dir.path())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !shared.join("started").exists() {
        assert!(Instant::now() < deadline, "the run never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let refused = home.vmc(&["rmi", "busybox"]);
    let prune = home.vmc(&["image", "prune"]);
    std::fs::write(shared.join("stop"), b"").unwrap();
    assert!(busy.wait().unwrap().success());
    assert_one_line_error(
        &refused,
        125,
        "image busybox is in use by the running container run busy: wait for it to end (vmc ps), then remove the image",
    );
    assert_eq!(code(&prune), 0, "{}", text(&prune.stderr));
    let removed = home.vmc(&["rmi", "busybox"]);
    assert_eq!(code(&removed), 0, "{}", text(&removed.stderr));
    assert!(text(&removed.stdout).contains("Deleted: sha256:"));
}

#[test]
fn trace_json_lists_ordered_milestones() {
    skip_without_containers!();
    let home = Home::with_busybox();
    let out = home.vmc(&["run", "--rm", "--trace=json", "busybox", "true"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let trace: serde_json::Value = serde_json::from_str(text(&out.stderr).trim()).unwrap();
    let names: Vec<&str> = trace["milestones"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["milestone"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "vmc_start",
            "runtime_ready",
            "init_started",
            "workload_exec",
            "workload_exit",
            "torn_down"
        ]
    );
    let times: Vec<u64> = trace["milestones"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["at"].as_u64().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
}

/// Asserts that vmc failed with status `expected` and one line on stderr containing `needle`.
fn assert_one_line_error(out: &Output, expected: i32, needle: &str) {
    let stderr = text(&out.stderr);
    assert_eq!(code(out), expected, "{stderr}");
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "one line expected: {stderr}"
    );
    assert!(stderr.contains(needle), "{needle:?} not in {stderr:?}");
}

#[test]
fn bad_input_fails_with_one_clear_line() {
    let home = tempfile::tempdir().unwrap();
    let vmc = |args: &[&str]| {
        Command::new(VMC)
            .args(args)
            .env("VMC_HOME", home.path())
            .output()
            .unwrap()
    };
    assert_one_line_error(&vmc(&["run", "no-such-image"]), 125, "no such image");
    let bad_flag = vmc(&["run", "--no-such-flag", "busybox"]);
    assert_eq!(code(&bad_flag), 125);
    assert!(text(&bad_flag.stderr).contains("unexpected argument '--no-such-flag'"));
    let bad_size = vmc(&["run", "-m", "12x", "busybox"]);
    assert_eq!(code(&bad_size), 125);
    assert!(text(&bad_size.stderr).starts_with("error: invalid value '12x'"));
    assert_one_line_error(
        &vmc(&["run", "--mode", "vm", "-v", "/tmp:/x", "busybox"]),
        125,
        "not supported in VM mode",
    );
    assert_one_line_error(
        &vmc(&["run", "--kernel", "/boot/vmlinuz", "busybox", "true"]),
        125,
        "--kernel is not supported in container mode",
    );
    assert_one_line_error(
        &vmc(&["run", "--console", "busybox", "true"]),
        125,
        "--console is not supported in container mode",
    );
    assert_one_line_error(
        &vmc(&["run", "--security-opt", "apparmor=x", "busybox", "true"]),
        125,
        "invalid --security-opt \"apparmor=x\"",
    );
    assert_one_line_error(&vmc(&["rm", "no-such-run"]), 1, "no such run");
    // Command::output gives vmc a null stdin: no terminal.
    assert_one_line_error(
        &vmc(&["run", "-it", "busybox", "cat"]),
        125,
        "the input device is not a TTY: drop -t",
    );
}

#[test]
fn vm_mode_refuses_fast_where_kvm_cannot_run_linux() {
    let probe = vmc_vm::probe::probe();
    if probe.verdict == Some(vmc_vm::probe::Verdict::Full) {
        eprintln!("SKIPPED: this host's KVM can run Linux; the refusal path is not reachable");
        return;
    }
    let home = Home::with_busybox();
    let started = Instant::now();
    let out = home.vmc(&["run", "--mode", "vm", "--rm", "busybox", "echo", "hi"]);
    assert!(started.elapsed() < Duration::from_secs(30), "must not hang");
    assert_one_line_error(&out, 125, "vmc: ");
    let stderr = text(&out.stderr);
    assert!(stderr.contains("KVM") || stderr.contains("kvm"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn meaningless_limits_are_refused_before_anything_runs() {
    if !std::path::Path::new("/bin/busybox").exists() {
        eprintln!("SKIPPED: /bin/busybox is missing (apt-get install busybox-static)");
        return;
    }
    let home = Home::with_busybox();
    assert_one_line_error(
        &home.vmc(&["run", "-m", "1k", "busybox", "true"]),
        125,
        "Minimum memory limit allowed is 6MB",
    );
    assert_one_line_error(
        &home.vmc(&["run", "--cpus", "nan", "busybox", "true"]),
        125,
        "--cpus NaN: give a finite number of CPUs",
    );
    assert_one_line_error(
        &home.vmc(&["run", "--mode", "vm", "-m", "16m", "busybox", "true"]),
        125,
        "-m 16 MiB is too small for a VM",
    );
    let runs = home.dir.path().join("runs");
    let left = std::fs::read_dir(&runs).map_or(0, |dir| dir.count());
    assert_eq!(left, 0, "a refused run leaves no record");
}

#[test]
fn ps_images_and_inspect_take_a_go_template_format() {
    skip_without_containers!();
    let home = Home::with_busybox();
    let out = home.vmc(&["run", "--name", "fmt", "busybox", "sh", "-c", "exit 3"]);
    assert_eq!(code(&out), 3, "{}", text(&out.stderr));
    let id = text(&home.vmc(&["ps", "-aq"]).stdout).trim().to_string();
    let out = home.vmc(&["ps", "-a", "--format", "{{.ID}} {{.Names}} {{.Status}}"]);
    let line = text(&out.stdout);
    assert!(
        line.starts_with(&format!("{id} fmt Exited (3) ")) && line.ends_with(" ago\n"),
        "{line}"
    );
    let out = home.vmc(&["ps", "-a", "--format", r"table {{.Names}}\t{{.State}}"]);
    assert_eq!(text(&out.stdout), "NAMES\tSTATE\nfmt\texited\n");
    let out = home.vmc(&["ps", "-a", "--format", "{{json .}}"]);
    let row: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (row["ID"].as_str(), row["Image"].as_str()),
        (Some(id.as_str()), Some("busybox"))
    );
    let out = home.vmc(&["ps", "-a", "--format", "{{.Nope}}"]);
    assert_eq!(code(&out), 125);
    assert!(
        text(&out.stderr).contains("no field .Nope"),
        "{}",
        text(&out.stderr)
    );
    let out = home.vmc(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]);
    let image_id = text(&home.vmc(&["images", "-q"]).stdout).trim().to_string();
    assert_eq!(text(&out.stdout), format!("busybox:latest {image_id}\n"));
    // Docker's spelling finds vmc's JSON fields (`names`, `config.working_dir`).
    let out = home.vmc(&[
        "inspect",
        "--format",
        "{{json .Names}} [{{.Config.WorkingDir}}]",
        "busybox",
    ]);
    assert_eq!(text(&out.stdout), "[\"busybox:latest\"] []\n");
    let out = home.vmc(&["ps", "-a", "--json", "--format", "{{.ID}}"]);
    assert_eq!(code(&out), 125);
}

#[test]
fn system_df_and_prune_reclaim_stopped_runs_unused_images_and_caches() {
    skip_without_containers!();
    let home = Home::with_busybox();
    // Two names of one image: both stay with a plain prune.
    assert!(home.vmc(&["tag", "busybox", "other"]).status.success());
    let out = home.vmc(&["run", "--name", "stopped", "busybox", "true"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let rows = |home: &Home| -> Vec<Vec<String>> {
        let out = home.vmc(&["system", "df"]);
        assert_eq!(code(&out), 0, "{}", text(&out.stderr));
        text(&out.stdout)
            .lines()
            .skip(1)
            .map(|l| l.split_whitespace().take(3).map(str::to_string).collect())
            .collect()
    };
    // The image (used by the stopped run), the run, the image's rootfs cache.
    let expected = |rows: [[&str; 3]; 3]| -> Vec<Vec<String>> {
        rows.iter()
            .map(|r| r.iter().map(|c| c.to_string()).collect())
            .collect()
    };
    assert_eq!(
        rows(&home),
        expected([
            ["Images", "1", "1"],
            ["Runs", "1", "0"],
            ["Caches", "1", "1"]
        ])
    );
    let out = home.vmc(&["system", "prune"]);
    assert_eq!(code(&out), 125, "no terminal to ask on: -f is needed");
    assert_eq!(text(&home.vmc(&["ps", "-aq"]).stdout).lines().count(), 1);
    let out = home.vmc(&["system", "prune", "-f"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("Deleted runs:\n"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(text(&home.vmc(&["ps", "-aq"]).stdout), "");
    assert_eq!(text(&home.vmc(&["images", "-q"]).stdout).lines().count(), 1);
    let out = home.vmc(&["system", "prune", "-a", "-f"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("Untagged: other:latest\n"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(text(&home.vmc(&["images", "-q"]).stdout), "");
    assert_eq!(
        rows(&home),
        expected([
            ["Images", "0", "0"],
            ["Runs", "0", "0"],
            ["Caches", "0", "0"]
        ])
    );
}

#[test]
fn inspect_shows_a_run_before_an_image_of_that_name() {
    skip_without_containers!();
    let home = Home::with_busybox();
    // A run named like the image: `vmc inspect` shows the run, as `docker inspect` does.
    let out = home.vmc(&["run", "--name", "busybox", "busybox", "sh", "-c", "exit 3"]);
    assert_eq!(code(&out), 3);
    let format = "{{.Name}} {{.State.Status}} {{.State.ExitCode}}";
    let out = home.vmc(&["inspect", "--format", format, "busybox"]);
    assert_eq!(text(&out.stdout), "busybox exited 3\n");
    let out = home.vmc(&["container", "inspect", "--format", format, "busybox"]);
    assert_eq!(text(&out.stdout), "busybox exited 3\n");
    let names = ["--format", "{{json .Names}}", "busybox"];
    let out = home.vmc(&[&["image", "inspect"][..], &names].concat());
    assert_eq!(text(&out.stdout), "[\"busybox:latest\"]\n");
    assert!(home.vmc(&["rm", "busybox"]).status.success());
    let out = home.vmc(&[&["inspect"][..], &names].concat());
    assert_eq!(text(&out.stdout), "[\"busybox:latest\"]\n");
}
