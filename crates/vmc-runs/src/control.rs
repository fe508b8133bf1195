//! The control channel of a run: a FIFO, `control` in the run directory, on which `vmc kill`,
//! `vmc stop` and `vmc rm -f` write signal numbers (4 bytes each, native order) and the run's
//! supervisor reads them, asleep in read(2) until one comes. A FIFO without a reader cannot be
//! opened for writing without blocking, so a dead supervisor is noticed at once.

use crate::error::{Result, RunsError};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The FIFO's name in the run directory.
pub const CONTROL_FIFO: &str = "control";

/// The FIFO of run directory `dir`.
fn fifo_path(dir: &Path) -> PathBuf {
    dir.join(CONTROL_FIFO)
}

/// Makes the run directory's FIFO (anew) and starts a thread that passes each signal number
/// written to it to `deliver`. The thread blocks the signals the runtime forwards, so that
/// they stay the runtime's, and ends with the process.
pub fn listen(dir: &Path, deliver: impl Fn(i32) + Send + 'static) -> Result<()> {
    let path = fifo_path(dir);
    let _ = std::fs::remove_file(&path);
    nix::unistd::mkfifo(
        &path,
        nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR,
    )
    .map_err(|err| RunsError::io(format!("cannot make {}", path.display()), err.into()))?;
    // Read and write: the FIFO never reads as ended when a writer closes it.
    let mut fifo = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|err| RunsError::io(format!("cannot open {}", path.display()), err))?;
    std::thread::Builder::new()
        .name("control".into())
        .spawn(move || {
            let _ = vmc_runtime::signals::block_forwarded_in_this_thread();
            let mut word = [0u8; 4];
            while fifo.read_exact(&mut word).is_ok() {
                deliver(i32::from_ne_bytes(word));
            }
        })
        .map_err(|err| RunsError::io("cannot start the control thread", err))?;
    Ok(())
}

/// Asks the supervisor of run directory `dir` (named `run` in errors) to send `signal` to
/// the workload.
pub fn send(dir: &Path, run: &str, signal: i32) -> Result<()> {
    let path = fifo_path(dir);
    let mut fifo: File = match OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&path)
    {
        Ok(fifo) => fifo,
        // ENXIO: nobody reads it; ENOENT: no supervisor ever made it.
        Err(err) if matches!(err.raw_os_error(), Some(libc::ENXIO | libc::ENOENT)) => {
            return Err(RunsError::NotRunning(run.to_string()))
        }
        Err(err) => {
            return Err(RunsError::io(
                format!("cannot open {}", path.display()),
                err,
            ))
        }
    };
    fifo.write_all(&signal.to_ne_bytes())
        .map_err(|err| RunsError::io(format!("cannot signal run {run}"), err))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn signals_written_reach_the_listener_and_a_missing_one_is_not_running() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            send(dir.path(), "r", 15),
            Err(RunsError::NotRunning(_))
        ));
        let (tx, rx) = mpsc::channel();
        let tx = std::sync::Mutex::new(tx);
        listen(dir.path(), move |signal| {
            let _ = tx.lock().unwrap().send(signal);
        })
        .unwrap();
        send(dir.path(), "r", 10).unwrap();
        send(dir.path(), "r", 9).unwrap();
        let timeout = std::time::Duration::from_secs(5);
        assert_eq!(rx.recv_timeout(timeout), Ok(10));
        assert_eq!(rx.recv_timeout(timeout), Ok(9));
    }
}
