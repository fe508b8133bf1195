//! The per-run initramfs archive: the run's settings at [`RUN_CONFIG_PATH`], loaded right
//! behind the image's archive (the kernel unpacks concatenated archives in order).

use crate::error::VmRuntimeError;
use std::path::Path;
use vmc_image::cpio::{Attributes, CpioWriter};
use vmc_protocol::{RunConfig, RUN_CONFIG_PATH};

/// Writes the per-run archive of `config` to `out`.
pub fn write_run_archive(config: &RunConfig, out: &Path) -> Result<(), VmRuntimeError> {
    std::fs::write(out, run_archive(config)).map_err(VmRuntimeError::io("write", out))
}

/// The per-run archive holding [`RUN_CONFIG_PATH`] (readable by root only) and its
/// directory, as bytes.
pub fn run_archive(config: &RunConfig) -> Vec<u8> {
    let name = RUN_CONFIG_PATH.trim_start_matches('/');
    let mut writer = CpioWriter::new(Vec::new());
    let written = match name.rsplit_once('/') {
        Some((dir, _)) => writer.add_dir(dir, Attributes::root(0o755)),
        None => Ok(()),
    }
    .and_then(|()| writer.add_file(name, Attributes::root(0o600), &config.to_json()));
    written
        .and_then(|()| writer.finish())
        .expect("writing to a Vec cannot fail")
}
