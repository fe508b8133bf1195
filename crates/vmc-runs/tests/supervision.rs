//! A supervised run's states and control channel, without a runtime: the record goes Created
//! → Up → Exited (N), signals written to the control FIFO reach the workload, and `--rm`
//! removes the run directory at the end.

use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use vmc_runs::{control, RunRecord, RunStatus, RunStore, Supervision};
use vmc_runtime::{ExitOutcome, RunObserver, WorkloadSignals};

/// A workload that only records the signals it gets.
struct Recorder(Mutex<Sender<i32>>);

impl WorkloadSignals for Recorder {
    fn signal(&self, signal: i32) -> std::io::Result<()> {
        let _ = self.0.lock().unwrap().send(signal);
        Ok(())
    }
}

fn record(id: &str, auto_remove: bool) -> RunRecord {
    serde_json::from_value(serde_json::json!({
        "id": id, "name": "r", "mode": "container", "image": "busybox", "command": ["sleep"],
        "created": 1, "supervisor_pid": 0, "outcome": null, "auto_remove": auto_remove,
    }))
    .unwrap()
}

#[test]
fn a_supervised_run_goes_created_up_exited_and_takes_signals() {
    let home = tempfile::tempdir().unwrap();
    let store = RunStore::at(home.path().join("runs")).unwrap();
    let supervision = Supervision::start(store.clone(), record("ab", false)).unwrap();
    assert_eq!(store.load("ab").unwrap().status(), RunStatus::Created);

    let (sender, received) = channel();
    supervision.workload_started(Arc::new(Recorder(Mutex::new(sender))));
    assert_eq!(store.load("ab").unwrap().status(), RunStatus::Up);
    let dir = store.run_dir("ab");
    control::send(&dir, "r", libc::SIGUSR1).unwrap();
    control::send(&dir, "r", libc::SIGKILL).unwrap();
    let timeout = Duration::from_secs(5);
    assert_eq!(received.recv_timeout(timeout), Ok(libc::SIGUSR1));
    assert_eq!(received.recv_timeout(timeout), Ok(libc::SIGKILL));

    supervision.finish(ExitOutcome::Exited(3)).unwrap();
    let ended = store.load("ab").unwrap();
    assert_eq!(ended.status(), RunStatus::Exited(ExitOutcome::Exited(3)));
    assert!(ended.finished.is_some() && ended.started.is_some());
}

#[test]
fn a_run_with_rm_leaves_no_directory() {
    let home = tempfile::tempdir().unwrap();
    let store = RunStore::at(home.path().join("runs")).unwrap();
    let supervision = Supervision::start(store.clone(), record("cd", true)).unwrap();
    assert!(store.run_dir("cd").join(control::CONTROL_FIFO).exists());
    supervision.finish(ExitOutcome::Exited(0)).unwrap();
    assert!(!store.run_dir("cd").exists());
}
