//! Where vmc keeps its state.

use std::path::PathBuf;

/// The vmc home: `$VMC_HOME`, else `/var/lib/vmc` for root, else `$XDG_DATA_HOME/vmc`
/// (`~/.local/share/vmc`).
pub fn vmc_home() -> PathBuf {
    if let Some(home) = std::env::var_os("VMC_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(home);
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return PathBuf::from("/var/lib/vmc");
    }
    if let Some(data) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(data).join("vmc");
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/".into());
    PathBuf::from(home).join(".local/share/vmc")
}

/// The directory holding per-run state: `$VMC_HOME/runs`.
pub fn runs_dir() -> PathBuf {
    vmc_home().join("runs")
}

/// The user's cache directory for vmc artefacts that can be rebuilt (guest kernels):
/// `$VMC_CACHE`, else `$XDG_CACHE_HOME/vmc`, else `~/.cache/vmc`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("VMC_CACHE").filter(|v| !v.is_empty()) {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(dir).join("vmc");
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    PathBuf::from(home).join(".cache/vmc")
}
