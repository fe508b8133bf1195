//! The workload's subcommands as tests and benchmarks use them.

use std::process::{Command, Output};

fn workload(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vmc-workload"))
        .args(args)
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn print_exit_env_pwd_id() {
    assert_eq!(
        stdout(&workload(&["print", "hello", "world"])),
        "hello world\n"
    );
    assert_eq!(workload(&["exit", "42"]).status.code(), Some(42));
    let env = Command::new(env!("CARGO_BIN_EXE_vmc-workload"))
        .arg("env")
        .env("VMC_TEST_MARK", "x=1")
        .output()
        .unwrap();
    assert!(stdout(&env).lines().any(|l| l == "VMC_TEST_MARK=x=1"));
    let pwd = Command::new(env!("CARGO_BIN_EXE_vmc-workload"))
        .arg("pwd")
        .current_dir("/tmp")
        .output()
        .unwrap();
    assert_eq!(stdout(&pwd), "/tmp\n");
    let id = stdout(&workload(&["id"]));
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc::getuid() };
    assert!(id.starts_with(&format!("uid={uid} gid=")), "{id}");
}

/// Resident set size of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn memory_phases_are_announced_and_rss_drops_after_free() {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_vmc-workload"))
        .args(["memory-cycle", "--mib", "64", "--hold", "0.5"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "phase=allocated mib=64");
    let held = rss_kib(child.id());
    assert_eq!(lines.next().unwrap().unwrap(), "phase=freed mib=64");
    let freed = rss_kib(child.id());
    assert_eq!(lines.next().unwrap().unwrap(), "phase=done");
    assert!(child.wait().unwrap().success());
    assert!(held >= 64 * 1024, "RSS while holding: {held} KiB");
    assert!(freed < 16 * 1024, "RSS after free: {freed} KiB");
    assert_eq!(
        stdout(&workload(&["alloc", "8", "--hold", "0"])),
        "allocated 8 MiB\n"
    );
}

#[test]
fn burn_and_sleep_take_their_time() {
    let start = std::time::Instant::now();
    assert!(workload(&["sleep", "0.1"]).status.success());
    assert!(start.elapsed().as_secs_f64() >= 0.1);
    assert!(stdout(&workload(&["burn", "0.05"])).starts_with("burned 0.0"));
}

#[test]
fn bad_usage_exits_2_with_usage() {
    for args in [
        &[][..],
        &["nope"],
        &["exit", "300"],
        &["alloc", "x"],
        &["memory-cycle", "--mib", "1"],
    ] {
        let out = workload(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("usage: vmc-workload"));
    }
}
