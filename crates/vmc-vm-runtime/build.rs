//! Builds `vmc-init`, the guest's PID 1, as a static binary and embeds it in this crate (and
//! so in `vmc`), so the `vmc` executable alone can turn any image into a bootable microVM.
//!
//! The init is built by a nested cargo into its own target directory under OUT_DIR, for the
//! explicit target triple, so `crt-static` applies to the init only (not to build scripts
//! or proc macros). `VMC_INIT_BINARY=PATH` embeds a prebuilt static init instead.

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "x86_64-unknown-linux-gnu";

fn main() {
    println!("cargo:rerun-if-env-changed=VMC_INIT_BINARY");
    let manifest_dir =
        PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let init_crate = manifest_dir.join("../vmc-init");
    // The init and the workspace crates it is built from.
    for input_crate in ["vmc-init", "vmc-protocol", "vmc-runtime"] {
        for input in ["src", "Cargo.toml"] {
            println!(
                "cargo:rerun-if-changed={}",
                manifest_dir
                    .join("..")
                    .join(input_crate)
                    .join(input)
                    .display()
            );
        }
    }
    let binary = match std::env::var_os("VMC_INIT_BINARY") {
        Some(path) => PathBuf::from(path),
        None => build_static_init(&init_crate),
    };
    println!("cargo:rustc-env=VMC_INIT_EMBEDDED={}", binary.display());
    println!("cargo:rerun-if-changed={}", binary.display());
    // vmc names the init it writes out by this hash; knowing it up front spares every VM run
    // from reading (and keeping resident) the 1.5 MiB of embedded bytes to hash them.
    let bytes = std::fs::read(&binary).expect("reading the static vmc-init");
    let hash: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    println!("cargo:rustc-env=VMC_INIT_SHA256={hash}");
}

fn build_static_init(init_crate: &Path) -> PathBuf {
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets it"));
    let target_dir = out_dir.join("vmc-init-target");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--quiet",
            "--target",
            TARGET,
            "--manifest-path",
        ])
        .arg(init_crate.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        // The outer build's settings are not meant for the nested one.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CARGO_TARGET_DIR")
        .status()
        .expect("cannot run cargo to build vmc-init");
    assert!(status.success(), "building the static vmc-init failed");
    target_dir.join(TARGET).join("release/vmc-init")
}
