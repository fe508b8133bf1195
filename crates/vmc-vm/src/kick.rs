//! Getting a vCPU thread out of KVM_RUN: a real-time signal with an empty handler makes the
//! ioctl return EINTR; the thread then sees its stop flag. The signal is re-sent until the
//! thread has ended, which covers a signal arriving just before the thread entered KVM_RUN.

use crate::error::VmError;
use std::os::unix::thread::JoinHandleExt;
use std::sync::OnceLock;
use std::thread::JoinHandle;
use vmm_sys_util::signal::{register_signal_handler, SIGRTMIN};

/// The signal used to kick vCPU threads.
fn kick_signal() -> libc::c_int {
    SIGRTMIN() + 1
}

/// Installs the (empty) handler for the kick signal, once per process.
pub fn install() -> Result<(), VmError> {
    static INSTALLED: OnceLock<Result<(), i32>> = OnceLock::new();
    extern "C" fn on_kick(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {}
    INSTALLED
        .get_or_init(|| register_signal_handler(kick_signal(), on_kick).map_err(|e| e.errno()))
        .map_err(|errno| VmError::Host {
            what: "install the vCPU kick signal handler",
            source: std::io::Error::from_raw_os_error(errno),
        })
}

/// Sends the kick signal to `thread` if it is still running.
pub fn kick<T>(thread: &JoinHandle<T>) {
    if !thread.is_finished() {
        // SAFETY: the handle's pthread is alive (not yet joined), and the signal has a
        // handler installed by `install`. A failure means the thread just ended.
        unsafe { libc::pthread_kill(thread.as_pthread_t(), kick_signal()) };
    }
}

/// Makes sure the calling thread can receive the kick signal.
pub fn unblock_in_this_thread() {
    let _ = vmm_sys_util::signal::unblock_signal(kick_signal());
}
