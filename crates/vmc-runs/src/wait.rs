//! `vmc wait` of a run that removes itself when it ends (`--rm`), as `docker wait` of an
//! auto-removed container: a waiter holds a shared lock on the run's directory while it waits;
//! the supervisor, finding the lock taken when the workload ends, records the outcome first
//! and removes the run only once the waiters have let go (a waiter that comes after the
//! removal began finds no run, as in Docker).

use crate::error::{Result, RunsError};
use crate::record::RunRecord;
use crate::store::RunStore;
use nix::fcntl::{Flock, FlockArg};
use nix::sys::inotify::AddWatchFlags;
use std::fs::File;
use std::path::Path;
use std::time::{Duration, Instant};
use vmc_runtime::ExitOutcome;

/// How long a supervisor waits for its waiters to read the outcome before it removes the run
/// anyway (a waiter that was stopped, say).
const WAITERS_GRACE: Duration = Duration::from_secs(10);
/// How often the supervisor looks again whether its waiters have let go.
const WAITERS_RECHECK: Duration = Duration::from_millis(5);

/// A waiter's shared lock on a run directory: while it is held, the run is not removed.
pub struct WaitHold {
    _lock: Flock<File>,
}

/// The supervisor's exclusive lock on a run directory, held while it removes the run.
pub(crate) struct RemovalLock {
    _lock: Flock<File>,
}

impl RunStore {
    /// Holds run `id` for a waiter; `None` when its removal has begun (or it is gone).
    pub fn hold_for_wait(&self, id: &str) -> Result<Option<WaitHold>> {
        let dir = self.run_dir(id);
        let Ok(file) = File::open(&dir) else {
            return Ok(None);
        };
        match Flock::lock(file, FlockArg::LockSharedNonblock) {
            Ok(lock) => Ok(Some(WaitHold { _lock: lock })),
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
            Err((_, err)) => Err(RunsError::io(
                format!("cannot lock {}", dir.display()),
                err.into(),
            )),
        }
    }
}

/// The supervisor's side at the end of a `--rm` run: the exclusive lock on `dir` once no
/// waiter holds it. `before_waiting` is called once if some waiter does (to record the
/// outcome for it); after [`WAITERS_GRACE`] the lock is given up and `None` returned.
pub(crate) fn lock_for_removal(dir: &Path, before_waiting: impl FnOnce()) -> Option<RemovalLock> {
    let mut file = File::open(dir).ok()?;
    let mut before_waiting = Some(before_waiting);
    let deadline = Instant::now() + WAITERS_GRACE;
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Some(RemovalLock { _lock: lock }),
            Err((again, nix::errno::Errno::EWOULDBLOCK)) if Instant::now() < deadline => {
                if let Some(record_outcome) = before_waiting.take() {
                    record_outcome();
                }
                std::thread::sleep(WAITERS_RECHECK);
                file = again;
            }
            Err(_) => return None,
        }
    }
}

/// Waits, holding `_hold` until it returns, until `record`'s run has an outcome; `None` if its
/// supervisor ended without recording one, or the run was removed meanwhile (`vmc rm -f`).
pub fn wait_outcome(
    store: &RunStore,
    record: &RunRecord,
    _hold: WaitHold,
) -> Result<Option<ExitOutcome>> {
    let inotify = crate::follow::watch_dir(
        &store.run_dir(&record.id),
        AddWatchFlags::IN_MOVED_TO | AddWatchFlags::IN_CLOSE_WRITE | AddWatchFlags::IN_DELETE_SELF,
        "cannot watch the run",
    )?;
    let pidfd = match record.supervisor() {
        Some(supervisor) => supervisor.pidfd()?,
        None => None,
    };
    loop {
        // After the watch began: an outcome recorded before it is seen here.
        match store.load(&record.id) {
            Ok(now) if now.outcome.is_some() => return Ok(now.outcome),
            Ok(_) => {}
            Err(_) => return Ok(None),
        }
        let Some(pidfd) = &pidfd else {
            return Ok(None);
        };
        if crate::follow::wait_for_change(&inotify, pidfd, "waiting for the run")? {
            // The supervisor is gone: what it recorded last is all there is.
            return Ok(store.load(&record.id).ok().and_then(|now| now.outcome));
        }
    }
}
