//! `vmc-workload`: a tiny static program that vmc's tests and benchmarks run inside images.
//!
//! Subcommands: `print TEXT…`, `sleep SECONDS`, `exit CODE`, `alloc MIB [--hold SECONDS]`,
//! `memory-cycle --mib N --hold SECONDS`, `burn SECONDS`, `env`, `pwd`, `id`, `confinement`.
//! Each phase of a memory scenario prints one line, so a harness can time it.

mod confinement;
mod memory;

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

const USAGE: &str = "usage: vmc-workload COMMAND [ARGS]
  print TEXT...                 print the words on one line
  sleep SECONDS                 sleep (fractions allowed)
  exit CODE                     exit with CODE (0-255)
  alloc MIB [--hold SECONDS]    allocate and touch MIB MiB, hold, exit
  memory-cycle --mib N --hold S allocate+touch N MiB, hold S, free (RSS drops), hold S
  burn SECONDS                  spin one CPU
  env                           print the environment
  pwd                           print the working directory
  id                            print uid, gid and groups
  confinement                   probe capabilities, seccomp, masked paths... (key=value lines)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(code) => ExitCode::from(code),
        Err(message) => {
            eprintln!("vmc-workload: {message}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// Dispatches a subcommand; returns the exit status or a usage error.
fn run(args: &[String]) -> Result<u8, String> {
    let (command, rest) = args.split_first().ok_or("missing command")?;
    match (command.as_str(), rest) {
        ("print", words) => say(&words.join(" ")),
        ("sleep", [seconds]) => std::thread::sleep(parse_seconds(seconds)?),
        ("exit", [code]) => {
            return code
                .parse()
                .map_err(|_| format!("exit code {code:?} is not 0-255"))
        }
        ("alloc", [mib, rest @ ..]) => {
            let hold = match rest {
                [] => Duration::ZERO,
                [flag, seconds] if flag == "--hold" => parse_seconds(seconds)?,
                _ => return Err("alloc takes MIB [--hold SECONDS]".into()),
            };
            let mib = parse_mib(mib)?;
            let region = memory::Region::allocate(mib)?;
            say(&format!("allocated {mib} MiB"));
            std::thread::sleep(hold);
            drop(region);
        }
        ("memory-cycle", rest) => memory_cycle(rest)?,
        ("burn", [seconds]) => burn(parse_seconds(seconds)?),
        ("env", []) => std::env::vars_os()
            .for_each(|(k, v)| say(&format!("{}={}", k.to_string_lossy(), v.to_string_lossy()))),
        ("pwd", []) => say(&std::env::current_dir()
            .map_err(|e| e.to_string())?
            .display()
            .to_string()),
        ("id", []) => say(&identity()),
        ("confinement", []) => confinement::probe(),
        ("help" | "--help" | "-h", _) => say(USAGE),
        _ => {
            return Err(format!(
                "unknown command or wrong arguments: {}",
                args.join(" ")
            ))
        }
    }
    Ok(0)
}

/// Allocates, holds, frees and holds again, printing a line at each phase.
fn memory_cycle(args: &[String]) -> Result<(), String> {
    let (mut mib, mut hold) = (None, None);
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--mib" => mib = Some(parse_mib(value)?),
            "--hold" => hold = Some(parse_seconds(value)?),
            _ => return Err(format!("unknown memory-cycle option {flag}")),
        }
    }
    let mib = mib.ok_or("memory-cycle needs --mib N")?;
    let hold = hold.ok_or("memory-cycle needs --hold SECONDS")?;
    let region = memory::Region::allocate(mib)?;
    say(&format!("phase=allocated mib={mib}"));
    std::thread::sleep(hold);
    drop(region);
    say(&format!("phase=freed mib={mib}"));
    std::thread::sleep(hold);
    say("phase=done");
    Ok(())
}

/// Spins on the CPU for `duration`.
fn burn(duration: Duration) {
    let start = Instant::now();
    let mut x: u64 = 1;
    while start.elapsed() < duration {
        for _ in 0..10_000 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
    say(&format!("burned {:.3}s", start.elapsed().as_secs_f64()));
}

/// `uid=0 gid=0 groups=0,1`.
fn identity() -> String {
    // SAFETY: getuid/getgid have no preconditions and cannot fail.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let mut groups = vec![0 as libc::gid_t; 256];
    // SAFETY: the buffer holds `groups.len()` gid_t values; getgroups writes at most that many.
    let n = unsafe { libc::getgroups(groups.len() as libc::c_int, groups.as_mut_ptr()) };
    groups.truncate(n.max(0) as usize);
    let list: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
    format!("uid={uid} gid={gid} groups={}", list.join(","))
}

/// Prints a line and flushes (stdout may be a pipe or a serial console).
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn parse_seconds(text: &str) -> Result<Duration, String> {
    text.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
        .ok_or(format!("{text:?} is not a number of seconds"))
}

fn parse_mib(text: &str) -> Result<usize, String> {
    text.parse()
        .map_err(|_| format!("{text:?} is not a number of MiB"))
}
