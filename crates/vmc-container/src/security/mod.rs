//! The workload's confinement beyond its namespaces, as Docker's defaults: capabilities,
//! a seccomp filter and no_new_privs (`--cap-add`, `--cap-drop`, `--privileged`,
//! `--security-opt`).
//!
//! The parent prepares a [`Confinement`] before clone (capability sets, the compiled BPF
//! program, cached under `$VMC_HOME/cache/seccomp`); the child applies it with [`apply`].

pub mod apply;
pub mod cache;
pub mod capabilities;
pub mod profile;
pub mod seccomp;
pub mod syscalls;

use crate::error::ContainerError;
use capabilities::CapSet;
use profile::{Profile, Target};
use seccompiler::BpfProgram;
use std::io::Read;
use std::path::Path;
use vmc_runtime::{SeccompPolicy, Security};

/// Docker's default seccomp profile, in Docker's format (the bench script converts this
/// file for crun and runc).
pub const DEFAULT_PROFILE: &[u8] = include_bytes!("docker-default-seccomp.json");

/// Changes whenever the compiled form of a profile may change (compiler, syscall table).
const CACHE_FORMAT: &[u8] = b"vmc seccomp cache 1";

/// The largest profile file vmc reads.
const MAX_PROFILE_BYTES: u64 = 1 << 20;

/// Everything that confines one workload, prepared before clone.
#[derive(Debug)]
pub struct Confinement {
    /// The bounding set; also the permitted and effective sets of a root workload. Docker
    /// (moby >= 23, after CVE-2022-24769) leaves the inheritable and ambient sets empty, and
    /// so does vmc. A non-root workload has no permitted or effective capabilities; a
    /// setuid-root file it executes regains the bounding set (unless no_new_privs).
    pub capabilities: CapSet,
    /// The workload runs as uid 0 (inside its user namespace, if any).
    pub root: bool,
    /// Set no_new_privs before exec.
    pub no_new_privs: bool,
    /// The seccomp filter, or None for none.
    pub filter: Option<BpfProgram>,
    /// One line for the trace.
    summary: String,
}

impl Confinement {
    /// Resolves `security` for a workload running as `uid`. `rootless` runs hold every
    /// capability inside their user namespace; root runs can hand on at most vmc's own
    /// permitted set. Compiled filters are cached in `cache_dir`.
    pub fn prepare(
        security: &Security,
        uid: u32,
        rootless: bool,
        cache_dir: &Path,
    ) -> Result<Confinement, ContainerError> {
        let all = CapSet::all_up_to(capabilities::kernel_last_cap()?);
        let wanted = capabilities::resolve(
            &security.cap_add,
            &security.cap_drop,
            security.privileged,
            all,
        )?;
        let available = if rootless {
            all
        } else {
            apply::own_permitted()
                .map_err(|e| ContainerError::sys("reading vmc's own capabilities", e))?
        };
        let caps = wanted.intersect(available);
        let mut summary = format!("capabilities: {} ({})", caps.len(), describe_caps(security));
        let missing = CapSet(wanted.0 & !caps.0);
        if !missing.is_empty() {
            summary += &format!(
                ", without {} (vmc itself lacks it)",
                missing.names().join(" ")
            );
        }
        if uid != 0 {
            summary += &format!(" in the bounding set, none effective for uid {uid}");
        }
        let source = match (&security.seccomp, security.privileged) {
            (SeccompPolicy::Profile(path), _) => Some(ProfileSource::File(path)),
            (SeccompPolicy::Unconfined, _) => {
                summary += "; seccomp: none (seccomp=unconfined)";
                None
            }
            (SeccompPolicy::Default, true) => {
                summary += "; seccomp: none (--privileged)";
                None
            }
            (SeccompPolicy::Default, false) => Some(ProfileSource::Default),
        };
        let filter = match source {
            None => None,
            Some(source) => {
                let (program, cached) = compile_cached(&source, caps, cache_dir)?;
                summary += &format!(
                    "; seccomp: {}, {:.1}k BPF instructions ({})",
                    source.describe(),
                    program.len() as f64 / 1000.0,
                    if cached {
                        "cached"
                    } else {
                        "compiled and cached"
                    }
                );
                Some(program)
            }
        };
        summary += if security.no_new_privileges {
            "; no_new_privs on"
        } else {
            "; no_new_privs off"
        };
        Ok(Confinement {
            capabilities: caps,
            root: uid == 0,
            no_new_privs: security.no_new_privileges,
            filter,
            summary,
        })
    }

    /// What was applied, for the trace.
    pub fn summary(&self) -> &str {
        &self.summary
    }
}

fn describe_caps(security: &Security) -> String {
    if security.privileged {
        return "--privileged: every capability".into();
    }
    let mut text = String::from("Docker's default");
    for (flag, names) in [
        ("--cap-drop", &security.cap_drop),
        ("--cap-add", &security.cap_add),
    ] {
        if !names.is_empty() {
            text += &format!(" {flag} {}", names.join(","));
        }
    }
    text
}

/// Where a profile comes from.
enum ProfileSource<'a> {
    Default,
    File(&'a Path),
}

impl ProfileSource<'_> {
    fn describe(&self) -> String {
        match self {
            ProfileSource::Default => "Docker's default profile".into(),
            ProfileSource::File(path) => format!("profile {}", path.display()),
        }
    }

    fn bytes(&self) -> Result<Vec<u8>, ContainerError> {
        let ProfileSource::File(path) = self else {
            return Ok(DEFAULT_PROFILE.to_vec());
        };
        let read = |source| ContainerError::RunDir {
            action: "read the seccomp profile",
            path: path.to_path_buf(),
            source,
        };
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_PROFILE_BYTES + 1).read_to_end(&mut bytes))
            .map_err(read)?;
        if bytes.len() as u64 > MAX_PROFILE_BYTES {
            return Err(self.error(format!("larger than {MAX_PROFILE_BYTES} bytes")));
        }
        Ok(bytes)
    }

    fn error(&self, problem: String) -> ContainerError {
        ContainerError::SeccompProfile {
            profile: match self {
                ProfileSource::Default => "(Docker's default)".into(),
                ProfileSource::File(path) => path.display().to_string(),
            },
            problem,
        }
    }
}

/// The filter for `source` and the capability set `caps`, from the cache when it is there.
fn compile_cached(
    source: &ProfileSource,
    caps: CapSet,
    cache_dir: &Path,
) -> Result<(BpfProgram, bool), ContainerError> {
    let bytes = source.bytes()?;
    let target = Target::host(caps);
    let kernel = format!("{}.{}", target.kernel.0, target.kernel.1);
    let key = cache::key(&[
        CACHE_FORMAT,
        std::env::consts::ARCH.as_bytes(),
        kernel.as_bytes(),
        &caps.0.to_le_bytes(),
        &bytes,
    ]);
    cache::load_or_compile(cache_dir, &key, || {
        let profile = Profile::parse(&bytes).map_err(|e| source.error(e))?;
        seccomp::compile(&profile, &target).map_err(|e| source.error(e))
    })
}

/// System calls Docker's default profile refuses to a workload with the default capabilities:
/// what the tests of the parsed profile and of the compiled filter both check.
#[cfg(test)]
const BLOCKED_BY_DEFAULT: [&str; 14] = [
    "mount",
    "umount2",
    "unshare",
    "setns",
    "keyctl",
    "add_key",
    "bpf",
    "open_by_handle_at",
    "kexec_load",
    "init_module",
    "reboot",
    "swapon",
    "perf_event_open",
    "userfaultfd",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn security() -> Security {
        Security::default()
    }

    #[test]
    fn the_default_is_dockers_caps_and_profile_compiled_once() {
        let dir = tempfile::tempdir().unwrap();
        let first = Confinement::prepare(&security(), 0, true, dir.path()).unwrap();
        assert_eq!(first.capabilities, CapSet::docker_default());
        assert!(first.root && !first.no_new_privs);
        assert!(first.filter.is_some());
        assert!(
            first.summary().starts_with(
                "capabilities: 14 (Docker's default); seccomp: Docker's default profile, "
            ),
            "{}",
            first.summary()
        );
        assert!(
            first
                .summary()
                .ends_with("(compiled and cached); no_new_privs off"),
            "{}",
            first.summary()
        );
        let second = Confinement::prepare(&security(), 0, true, dir.path()).unwrap();
        assert!(
            second.summary().contains("(cached)"),
            "{}",
            second.summary()
        );
        assert_eq!(first.filter, second.filter);
        // Another capability set is another program.
        let admin = Security {
            cap_add: vec!["SYS_ADMIN".into()],
            ..security()
        };
        let third = Confinement::prepare(&admin, 0, true, dir.path()).unwrap();
        assert!(
            third.summary().contains("compiled and cached"),
            "{}",
            third.summary()
        );
        assert_ne!(third.filter, first.filter);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn privileged_unconfined_and_no_new_privs() {
        let dir = tempfile::tempdir().unwrap();
        let privileged = Security {
            privileged: true,
            ..security()
        };
        let c = Confinement::prepare(&privileged, 1000, true, dir.path()).unwrap();
        let last = capabilities::kernel_last_cap().unwrap();
        assert_eq!(c.capabilities, CapSet::all_up_to(last));
        assert!(c.filter.is_none() && !c.root);
        assert!(
            c.summary().contains("none (--privileged)"),
            "{}",
            c.summary()
        );
        assert!(
            c.summary().contains("none effective for uid 1000"),
            "{}",
            c.summary()
        );
        let unconfined = Security {
            seccomp: SeccompPolicy::Unconfined,
            no_new_privileges: true,
            ..security()
        };
        let c = Confinement::prepare(&unconfined, 0, true, dir.path()).unwrap();
        assert!(c.filter.is_none() && c.no_new_privs);
        assert!(
            c.summary()
                .ends_with("none (seccomp=unconfined); no_new_privs on"),
            "{}",
            c.summary()
        );
        // An explicit profile still applies with --privileged.
        let file = dir.path().join("p.json");
        std::fs::write(&file, br#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mount"], "action": "SCMP_ACT_ERRNO"}]}"#).unwrap();
        let with_file = Security {
            privileged: true,
            seccomp: SeccompPolicy::Profile(file.clone()),
            ..security()
        };
        let c = Confinement::prepare(&with_file, 0, true, dir.path()).unwrap();
        assert!(c.filter.is_some());
        assert!(
            c.summary()
                .contains(&format!("seccomp: profile {}", file.display())),
            "{}",
            c.summary()
        );
    }

    #[test]
    fn bad_profiles_and_names_are_one_line_errors() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.json");
        std::fs::write(&file, br#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_MAYBE"}]}"#).unwrap();
        let bad = Security {
            seccomp: SeccompPolicy::Profile(file.clone()),
            ..security()
        };
        let err = Confinement::prepare(&bad, 0, true, dir.path())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&file.display().to_string()) && err.contains("syscalls[0].action"),
            "{err}"
        );
        let missing = Security {
            seccomp: SeccompPolicy::Profile(dir.path().join("none.json")),
            ..security()
        };
        let err = Confinement::prepare(&missing, 0, true, dir.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("none.json"), "{err}");
        let unknown = Security {
            cap_add: vec!["NET_ADMIM".into()],
            ..security()
        };
        let err = Confinement::prepare(&unknown, 0, true, dir.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("NET_ADMIM") && !err.contains('\n'), "{err}");
        // Nothing was cached for the failures.
        assert_eq!(
            std::fs::read_dir(dir.path())
                .unwrap()
                .filter(|e| e
                    .as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "bpf"))
                .count(),
            0
        );
    }
}
