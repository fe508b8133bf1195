//! The runtime of a mode, without the command line: shared by the CLI and `vmc-supervisor`.

use vmc_runtime::{Mode, Runtime};
use vmc_vm_runtime::{VmOptions, VmRuntime};

/// The runtime that implements `mode` (VM mode with `vm`'s kernel and console).
pub fn runtime(mode: Mode, vm: VmOptions) -> Box<dyn Runtime> {
    match mode {
        Mode::Container => Box::new(vmc_container::ContainerRuntime::new()),
        Mode::Vm => Box::new(VmRuntime::new(vm)),
    }
}
