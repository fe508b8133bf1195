//! Starting the VMM's threads, each confined by its own seccomp filter before it runs.
//!
//! A thread inherits its creator's filters and can only add to them. Once the thread that
//! runs a VM carries the main filter (no KVM_RUN), a later VM of the same process (`vmc
//! bench`, a test binary) could not start vCPU threads from it. So a confined thread has its
//! vCPU and I/O threads started by one launcher thread per process, started before the first
//! main filter and confined by the union of the vCPU and I/O filters plus starting threads;
//! each new thread narrows that to its own kind before running anything else. The launcher
//! blocks every asynchronous signal, and a thread it starts takes the signal mask of the
//! thread that asked for it, as if that thread had started it.

use crate::error::VmError;
use crate::seccomp::{self, Filters, ThreadKind};
use std::sync::mpsc::{self, Sender};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::thread::JoinHandle;

/// Work for the launcher: start one thread.
type Job = Box<dyn FnOnce() + Send>;

/// The launcher's queue, once it runs.
static LAUNCHER: OnceLock<Sender<Job>> = OnceLock::new();

/// Starts the launcher (once per process) confined by its filter. Call it before the calling
/// thread takes the main filter.
pub fn start_launcher(filters: &'static Filters) -> Result<(), VmError> {
    static STARTING: Mutex<()> = Mutex::new(());
    let _starting = STARTING.lock().unwrap_or_else(PoisonError::into_inner);
    if LAUNCHER.get().is_some() {
        return Ok(());
    }
    let (jobs, queue) = mpsc::channel::<Job>();
    let (confined_tx, confined) = mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("vmc-vm-launcher".into())
        .spawn(move || {
            block_asynchronous_signals();
            let result = filters.confine_this_thread(ThreadKind::Launcher);
            let ok = result.is_ok();
            let _ = confined_tx.send(result);
            if ok {
                // The queue never closes: the launcher lives as long as the process.
                queue.into_iter().for_each(|job| job());
            }
        })
        .map_err(|source| VmError::Host {
            what: "start the VMM's thread launcher",
            source,
        })?;
    confined.recv().map_err(|_| VmError::Host {
        what: "start the VMM's thread launcher",
        source: std::io::Error::other("the launcher thread ended at once"),
    })??;
    let _ = LAUNCHER.set(jobs);
    Ok(())
}

/// Starts thread `name` running `body`, first confined as `kind` by `filters` when given
/// (`what` names it in errors). Returns once the thread carries its filter; the thread
/// yields `None` instead of running `body` if it could not take it (the error is returned
/// here). When the calling thread carries one of the VMM's filters, the launcher starts it.
pub fn spawn<T, F>(
    what: &'static str,
    name: String,
    confinement: Option<(&'static Filters, ThreadKind)>,
    body: F,
) -> Result<JoinHandle<Option<T>>, VmError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let mask = current_signal_mask();
    let (confined_tx, confined) = mpsc::sync_channel(1);
    let thread = move || {
        set_signal_mask(&mask);
        let result =
            confinement.map_or(Ok(()), |(filters, kind)| filters.confine_this_thread(kind));
        let ok = result.is_ok();
        let _ = confined_tx.send(result);
        ok.then(body)
    };
    let host = |source| VmError::Host { what, source };
    let builder = std::thread::Builder::new().name(name);
    // A confined thread cannot start guest-running threads itself: the launcher starts them.
    let launcher = seccomp::confined_as().and(LAUNCHER.get());
    let handle = match launcher {
        None => builder.spawn(thread).map_err(host)?,
        Some(launcher) => {
            let (reply, handle) = mpsc::sync_channel(1);
            let job: Job = Box::new(move || {
                let _ = reply.send(builder.spawn(thread));
            });
            let gone = || host(std::io::Error::other("the VMM's thread launcher has ended"));
            launcher.send(job).map_err(|_| gone())?;
            handle.recv().map_err(|_| gone())?.map_err(host)?
        }
    };
    let gone = || host(std::io::Error::other("the new thread ended at once"));
    confined.recv().map_err(|_| gone())??;
    Ok(handle)
}

/// The calling thread's signal mask.
fn current_signal_mask() -> libc::sigset_t {
    // SAFETY: an all-zero sigset_t is a valid (empty) set.
    let mut mask: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: with a null new set, pthread_sigmask only writes the current mask into `mask`.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut mask) };
    mask
}

/// Sets the calling thread's signal mask to `mask`.
fn set_signal_mask(mask: &libc::sigset_t) {
    // SAFETY: `mask` is a valid signal set; the old mask is not asked for.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, mask, std::ptr::null_mut()) };
}

/// Blocks every signal but the synchronous ones (faults, and SIGSYS from a seccomp trap,
/// which must reach its handler), so that a signal meant for the thread that asks for a new
/// thread is never taken by the launcher or by the new thread before it takes that mask.
fn block_asynchronous_signals() {
    // SAFETY: sigfillset/sigdelset only write into `mask`, a local signal set.
    let mask = unsafe {
        let mut mask: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut mask);
        for signal in [
            libc::SIGSYS,
            libc::SIGSEGV,
            libc::SIGBUS,
            libc::SIGILL,
            libc::SIGFPE,
            libc::SIGABRT,
        ] {
            libc::sigdelset(&mut mask, signal);
        }
        mask
    };
    set_signal_mask(&mask);
}
