//! The guest's disks for a run: the image's root filesystem (`/dev/vda`, read-only, built once
//! per image by `vmc_image` and cached) and the run's scratch disk (`/dev/vdb`, deleted when
//! the run ends, whatever way it ends).

use crate::error::VmRuntimeError;
use std::path::Path;
use vmc_image::disk::scratch::{ScratchDisk, SCRATCH_DISK_BYTES};
use vmc_image::Store;
use vmc_runtime::signals::SignalCatcher;
use vmc_runtime::{RunSpec, Timeline};
use vmc_vm::DiskConfig;

/// The scratch disk's file name in the run directory.
const SCRATCH_FILE: &str = "scratch.ext4";

/// A run's disks; the scratch disk is deleted when this is dropped.
pub struct RunDisks {
    /// What the VM gets, in guest order (vda, vdb).
    pub configs: Vec<DiskConfig>,
    /// Deletes the scratch disk file when dropped.
    _scratch: ScratchDisk,
}

/// Gets the image's disk (building it on first use) and makes the run's scratch disk in the
/// run directory (which must exist), each a step of the trace. A signal that ends a setup,
/// caught by `signals` while a disk is built, stops the build.
pub fn prepare(
    home: &Path,
    spec: &RunSpec,
    timeline: &mut Timeline,
    signals: &SignalCatcher,
) -> Result<RunDisks, VmRuntimeError> {
    let store = Store::open(home)?;
    let image = store.rootfs_disk(&spec.image_id, &spec.rootfs, signals)?;
    let how = match image.built_in {
        Some(took) => format!(
            "built by mkfs.erofs in {:.0} ms",
            took.as_secs_f64() * 1000.0
        ),
        None => "cached".to_string(),
    };
    timeline.step(format!(
        "image disk /dev/vda: {} ({how}, {}, read-only)",
        image.path.display(),
        mib(image.bytes)
    ));
    let scratch = store.scratch_disk(&spec.run_dir.join(SCRATCH_FILE), signals)?;
    timeline.step(format!(
        "scratch disk /dev/vdb: {} (ext4, {} sparse, deleted after the run)",
        scratch.path().display(),
        mib(SCRATCH_DISK_BYTES)
    ));
    Ok(RunDisks {
        configs: vec![
            DiskConfig {
                path: image.path,
                read_only: true,
            },
            DiskConfig {
                path: scratch.path().to_path_buf(),
                read_only: false,
            },
        ],
        _scratch: scratch,
    })
}

/// `bytes` in MiB, for the trace.
fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
}
