//! Test tool: runs a command on a fresh pseudo-terminal and types into it, as a person at a
//! terminal would, to test `vmc run -t` in both modes (tests/vm_e2e.sh).
//!
//! `pty_session [--size ROWSxCOLS] [--expect TEXT | --send TEXT | --resize ROWSxCOLS]...
//! -- CMD [ARG...]`
//!
//! The steps run in order: `--expect` waits until the terminal's output (after the previous
//! match) contains TEXT, `--send` types TEXT (`\n`, `\r`, `\\`, `\xHH` are escapes: `\x03` is
//! Ctrl-C, `\x04` Ctrl-D), `--resize` changes the terminal's size (the command gets SIGWINCH).
//! Everything the command writes to the terminal is copied to stdout.
//! When the command has exited, one line on stderr says whether it left the terminal's mode
//! as it found it: `pty_session: terminal restored` or `pty_session: terminal left changed`.
//! Exits with the command's exit code (128+N if killed by signal N); 99 if a step timed out
//! (after 180 s) or the terminal could not be set up.

use nix::pty::{openpty, Winsize};
use nix::sys::termios::{tcgetattr, Termios};
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

/// How long one `--expect` may wait, and how long the command may run after the last step.
const STEP_TIMEOUT: Duration = Duration::from_secs(180);
/// The exit code for a failure of this tool rather than of the command.
const TOOL_FAILED: i32 = 99;

/// One scripted action.
enum Step {
    Expect(String),
    Send(Vec<u8>),
    Resize(Winsize),
}

fn main() {
    let (size, steps, command) = parse_args(std::env::args().skip(1).collect());
    let code = match run(size, &steps, &command) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("pty_session: {message}");
            TOOL_FAILED
        }
    };
    std::process::exit(code);
}

/// The terminal size, the steps and the command line.
fn parse_args(args: Vec<String>) -> (Winsize, Vec<Step>, Vec<String>) {
    let mut size = parse_size("24x80");
    let mut steps = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{arg} needs a value")))
        };
        match arg.as_str() {
            "--size" => size = parse_size(&value()),
            "--resize" => steps.push(Step::Resize(parse_size(&value()))),
            "--expect" => steps.push(Step::Expect(value())),
            "--send" => steps.push(Step::Send(unescape(&value()))),
            "--" => break,
            other => usage(&format!("unknown option {other}")),
        }
    }
    let command: Vec<String> = args.collect();
    if command.is_empty() {
        usage("no command given");
    }
    (size, steps, command)
}

/// A terminal size from `ROWSxCOLS`.
fn parse_size(text: &str) -> Winsize {
    let (rows, cols) = text
        .split_once('x')
        .and_then(|(r, c)| Some((r.parse().ok()?, c.parse().ok()?)))
        .unwrap_or_else(|| usage("a size is ROWSxCOLS"));
    Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    }
}

fn usage(problem: &str) -> ! {
    eprintln!("pty_session: {problem}\nusage: pty_session [--size ROWSxCOLS] [--expect TEXT | --send TEXT | --resize ROWSxCOLS]... -- CMD [ARG...]");
    std::process::exit(TOOL_FAILED)
}

/// Decodes the escapes `--send` accepts.
fn unescape(text: &str) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            bytes.extend_from_slice(c.to_string().as_bytes());
            continue;
        }
        match chars.next() {
            Some('n') => bytes.push(b'\n'),
            Some('r') => bytes.push(b'\r'),
            Some('\\') => bytes.push(b'\\'),
            Some('x') => {
                let hex: String = chars.by_ref().take(2).collect();
                bytes.push(u8::from_str_radix(&hex, 16).unwrap_or_else(|_| usage("bad \\xHH")));
            }
            _ => usage("unknown escape in --send"),
        }
    }
    bytes
}

/// Runs the session; returns the command's exit code.
fn run(size: Winsize, steps: &[Step], command: &[String]) -> Result<i32, String> {
    let pty = openpty(Some(&size), None).map_err(|e| format!("openpty: {e}"))?;
    let before = tcgetattr(&pty.slave).map_err(|e| format!("tcgetattr: {e}"))?;
    let mut child = spawn_on_terminal(command, &pty.slave)?;
    let mut output = Output::default();
    for step in steps {
        match step {
            Step::Expect(text) => {
                let deadline = Instant::now() + STEP_TIMEOUT;
                while !output.take_match(text) {
                    if Instant::now() > deadline || exited(&mut child)?.is_some() {
                        output.drain(&pty.master);
                        return Err(format!("never saw {text:?} on the terminal"));
                    }
                    output.read_some(&pty.master, Duration::from_millis(50));
                }
            }
            Step::Send(bytes) => nix::unistd::write(&pty.master, bytes)
                .map(drop)
                .map_err(|e| format!("typing: {e}"))?,
            Step::Resize(size) => {
                // SAFETY: TIOCSWINSZ reads one winsize from the valid pointer it is given.
                if unsafe { libc::ioctl(pty.master.as_raw_fd(), libc::TIOCSWINSZ, size) } != 0 {
                    return Err(format!("resizing: {}", std::io::Error::last_os_error()));
                }
            }
        }
    }
    let deadline = Instant::now() + STEP_TIMEOUT;
    let status = loop {
        if let Some(status) = exited(&mut child)? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return Err("the command did not exit".into());
        }
        output.read_some(&pty.master, Duration::from_millis(50));
    };
    output.drain(&pty.master);
    let after = tcgetattr(&pty.slave).map_err(|e| format!("tcgetattr: {e}"))?;
    eprintln!(
        "pty_session: terminal {}",
        if same_mode(&before, &after) {
            "restored"
        } else {
            "left changed"
        }
    );
    Ok(status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}

/// Starts `command` as a session leader whose controlling terminal and stdio are `terminal`.
fn spawn_on_terminal(command: &[String], terminal: &OwnedFd) -> Result<Child, String> {
    let stdio = || terminal.try_clone().map_err(|e| format!("dup: {e}"));
    let mut process = Command::new(&command[0]);
    process
        .args(&command[1..])
        .stdin(stdio()?)
        .stdout(stdio()?)
        .stderr(stdio()?);
    // SAFETY: setsid and ioctl are async-signal-safe; the closure allocates nothing.
    unsafe {
        process.pre_exec(|| {
            nix::unistd::setsid()?;
            if libc::ioctl(0, libc::TIOCSCTTY, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    process
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", command[0]))
}

/// The command's status if it has exited.
fn exited(child: &mut Child) -> Result<Option<ExitStatus>, String> {
    child.try_wait().map_err(|e| format!("wait: {e}"))
}

/// Whether two terminal modes are the same (flags and control characters).
fn same_mode(a: &Termios, b: &Termios) -> bool {
    a.input_flags == b.input_flags
        && a.output_flags == b.output_flags
        && a.control_flags == b.control_flags
        && a.local_flags == b.local_flags
        && a.control_chars == b.control_chars
}

/// The terminal's output so far, and how much of it the expectations have consumed.
#[derive(Default)]
struct Output {
    seen: Vec<u8>,
    matched_up_to: usize,
}

impl Output {
    /// Whether `text` appears after the last match; if so, consumes up to its end.
    fn take_match(&mut self, text: &str) -> bool {
        let rest = &self.seen[self.matched_up_to..];
        let needle = text.as_bytes();
        match rest.windows(needle.len()).position(|w| w == needle) {
            Some(at) => {
                self.matched_up_to += at + needle.len();
                true
            }
            None => false,
        }
    }

    /// Reads what the terminal has within `wait`, copying it to stdout.
    fn read_some(&mut self, master: &OwnedFd, wait: Duration) -> bool {
        let mut poll = [nix::poll::PollFd::new(
            master.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        let timeout = nix::poll::PollTimeout::try_from(wait).unwrap_or(nix::poll::PollTimeout::MAX);
        if !matches!(nix::poll::poll(&mut poll, timeout), Ok(n) if n > 0) {
            return false;
        }
        let mut buf = [0u8; 4096];
        match nix::unistd::read(master, &mut buf) {
            Ok(count) if count > 0 => {
                self.seen.extend_from_slice(&buf[..count]);
                let mut stdout = std::io::stdout();
                let _ = stdout.write_all(&buf[..count]);
                let _ = stdout.flush();
                true
            }
            _ => false,
        }
    }

    /// Reads what is left on the terminal.
    fn drain(&mut self, master: &OwnedFd) {
        while self.read_some(master, Duration::from_millis(100)) {}
    }
}
