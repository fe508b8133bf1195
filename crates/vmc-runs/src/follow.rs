//! `vmc logs -f`: the log's new entries as they are written, until the run's supervisor
//! exits. Event-driven: inotify on the run directory says when the log grows or rotates, the
//! supervisor's pidfd when it is gone.

use crate::error::{Result, RunsError};
use crate::log::{LogEntry, LogReader};
use crate::process::ProcessIdentity;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

/// Passes each batch of new entries of the log in run directory `dir` (read by `reader`) to
/// `print`, until `supervisor` exits; then passes what it wrote last.
pub fn follow(
    dir: &Path,
    reader: &mut LogReader,
    supervisor: &ProcessIdentity,
    mut print: impl FnMut(Vec<LogEntry>),
) -> Result<()> {
    let inotify = watch_dir(
        dir,
        AddWatchFlags::IN_MODIFY | AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MOVED_TO,
        "cannot watch the run's log",
    )?;
    let Some(pidfd) = supervisor.pidfd()? else {
        print(reader.read_available());
        return Ok(());
    };
    // Entries written before the watch began.
    print(reader.read_available());
    loop {
        let gone = wait_for_change(&inotify, &pidfd, "waiting for the run's log")?;
        print(reader.read_available());
        if gone {
            return Ok(());
        }
    }
}

/// An inotify instance watching the run directory `dir` for `events`; `what` names the watch
/// in errors ("cannot watch the run's log").
pub(crate) fn watch_dir(dir: &Path, events: AddWatchFlags, what: &str) -> Result<Inotify> {
    let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)
        .map_err(|err| RunsError::io(what, err.into()))?;
    inotify
        .add_watch(dir, events)
        .map_err(|err| RunsError::io(format!("cannot watch {}", dir.display()), err.into()))?;
    Ok(inotify)
}

/// Waits until `inotify` has events (which are dropped: what changed is read from the files
/// themselves) or the process of `pidfd` exits; true when it has. `what` names the wait in
/// errors.
pub(crate) fn wait_for_change(inotify: &Inotify, pidfd: &OwnedFd, what: &str) -> Result<bool> {
    loop {
        let mut fds = [
            PollFd::new(inotify.as_fd(), PollFlags::POLLIN),
            PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
        ];
        match nix::poll::poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(err) => return Err(RunsError::io(what, err.into())),
            Ok(_) => {}
        }
        while inotify.read_events().is_ok_and(|events| !events.is_empty()) {}
        return Ok(fds[1].revents().is_some_and(|r| !r.is_empty()));
    }
}
