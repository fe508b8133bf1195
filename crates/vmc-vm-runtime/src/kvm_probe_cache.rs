//! The KVM probe's verdict, cached per host boot: `$VMC_HOME/cache/kvm-probe`.
//!
//! Whether KVM can deliver exceptions and interrupts to a guest is a fact about the running
//! kernel and its KVM module, so one probe per boot answers it for every run. The cache entry
//! names what the verdict depends on (a [`ProbeKey`]: the boot id, the identity of the loaded
//! KVM modules and of `/dev/kvm`, and this vmc's build); an entry whose key differs, or a file
//! that is not one vmc wrote (unparsable, too large, not a private regular file of ours), is
//! ignored and rewritten. Only verdicts that describe the host are cached: a probe that failed
//! for another reason (say, a timeout on a loaded machine) runs again next time.

use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use vmc_vm::probe::Verdict;

/// The cache file below the vmc home.
pub const CACHE_FILE: &str = "cache/kvm-probe";

/// The largest cache file read back; anything longer is not one vmc wrote.
const MAX_FILE_BYTES: u64 = 16 * 1024;

/// Where the facts of a [`ProbeKey`] are read from (the host's files, or a test's).
#[derive(Debug, Clone)]
pub struct KeySources {
    /// The boot id file (`/proc/sys/kernel/random/boot_id`).
    pub boot_id: PathBuf,
    /// The directory of loaded modules (`/sys/module`), where KVM's are `kvm` and `kvm_*`.
    pub modules: PathBuf,
    /// The KVM device (`/dev/kvm`).
    pub device: PathBuf,
    /// This vmc's build: its version and its executable's identity.
    pub build: String,
}

impl KeySources {
    /// The host's files, and the running executable's build.
    pub fn host() -> Self {
        KeySources {
            boot_id: "/proc/sys/kernel/random/boot_id".into(),
            modules: "/sys/module".into(),
            device: "/dev/kvm".into(),
            build: build_identity(),
        }
    }
}

/// What a probe verdict depends on: a cached verdict is used only under an equal key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeKey {
    /// The host boot (`/proc/sys/kernel/random/boot_id`).
    pub boot_id: String,
    /// The loaded KVM modules, by name.
    pub modules: Vec<ModuleIdentity>,
    /// `/dev/kvm`'s device number, inode and change time (a reloaded module makes a new node).
    pub device: [u64; 4],
    /// This vmc's build.
    pub build: String,
}

/// One loaded KVM module, as the kernel shows it under `/sys/module/<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModuleIdentity {
    /// The module's name (`kvm`, `kvm_intel`, `kvm_amd`, ...).
    pub name: String,
    /// The sysfs directory's inode: a new one each time the module is loaded.
    pub inode: u64,
    /// The module's `srcversion` (a hash of its sources; absent for built-in code).
    pub srcversion: Option<String>,
}

impl ProbeKey {
    /// The key of the host as `sources` show it; `None` when a fact cannot be read (then
    /// nothing is cached).
    pub fn gather(sources: &KeySources) -> Option<Self> {
        let boot_id = fs::read_to_string(&sources.boot_id)
            .ok()?
            .trim()
            .to_string();
        if boot_id.is_empty() {
            return None;
        }
        let device = fs::metadata(&sources.device).ok()?;
        Some(ProbeKey {
            boot_id,
            modules: kvm_modules(&sources.modules)?,
            device: [
                device.rdev(),
                device.ino(),
                device.ctime() as u64,
                device.ctime_nsec() as u64,
            ],
            build: sources.build.clone(),
        })
    }
}

/// The loaded KVM modules under `modules`, sorted by name; `None` if the directory cannot be
/// read or holds no KVM module.
fn kvm_modules(modules: &Path) -> Option<Vec<ModuleIdentity>> {
    let mut found = Vec::new();
    for entry in fs::read_dir(modules).ok()? {
        let entry = entry.ok()?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name != "kvm" && !name.starts_with("kvm_") {
            continue;
        }
        let srcversion = fs::read_to_string(entry.path().join("srcversion"))
            .ok()
            .map(|version| version.trim().to_string());
        found.push(ModuleIdentity {
            name,
            inode: entry.metadata().ok()?.ino(),
            srcversion,
        });
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    (!found.is_empty()).then_some(found)
}

/// This vmc's version and its executable's size and modification time, so a rebuilt vmc
/// probes again.
fn build_identity() -> String {
    let version = env!("CARGO_PKG_VERSION");
    match std::env::current_exe().and_then(fs::metadata) {
        Ok(exe) => format!(
            "{version} {} bytes {}.{:09}",
            exe.len(),
            exe.mtime(),
            exe.mtime_nsec()
        ),
        Err(_) => version.to_string(),
    }
}

/// A verdict as the cache file holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, tag = "kind", rename_all = "kebab-case")]
enum CachedVerdict {
    /// [`Verdict::Full`].
    Full,
    /// [`Verdict::NoGuestInterrupts`].
    NoGuestInterrupts {
        /// Its detail.
        detail: String,
    },
}

/// The cache file's content.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    key: ProbeKey,
    verdict: CachedVerdict,
}

/// The verdict cached in `path` under `key`, if there is one vmc wrote for this key.
pub fn load(path: &Path, key: &ProbeKey) -> Option<Verdict> {
    let entry: Entry = serde_json::from_slice(&read_private_file(path)?).ok()?;
    if entry.key != *key {
        return None;
    }
    Some(match entry.verdict {
        CachedVerdict::Full => Verdict::Full,
        CachedVerdict::NoGuestInterrupts { detail } => Verdict::NoGuestInterrupts { detail },
    })
}

/// Caches `verdict` under `key` in `path` (atomically, private to this user); a verdict that
/// does not describe the host ([`Verdict::Failed`]) is not cached. Returns whether it was.
pub fn store(path: &Path, key: &ProbeKey, verdict: &Verdict) -> io::Result<bool> {
    let verdict = match verdict {
        Verdict::Full => CachedVerdict::Full,
        Verdict::NoGuestInterrupts { detail } => CachedVerdict::NoGuestInterrupts {
            detail: detail.clone(),
        },
        Verdict::Failed { .. } => return Ok(false),
    };
    let entry = Entry {
        key: key.clone(),
        verdict,
    };
    let bytes = serde_json::to_vec(&entry).map_err(io::Error::other)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let mut temp = tempfile::Builder::new()
        .prefix(".kvm-probe")
        .permissions(fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)?;
    temp.write_all(&bytes)?;
    temp.persist(path).map_err(|err| err.error)?;
    Ok(true)
}

/// The bytes of `path` if it is a regular file (not a link) owned by this user, writable by
/// no one else, and small; `None` otherwise.
fn read_private_file(path: &Path) -> Option<Vec<u8>> {
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    let meta = file.metadata().ok()?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if !meta.is_file()
        || meta.uid() != euid
        || meta.mode() & 0o022 != 0
        || meta.len() > MAX_FILE_BYTES
    {
        return None;
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes).ok()?;
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A fake host: a boot id, a module directory with `kvm` and `kvm_intel`, a "device".
    struct FakeHost {
        dir: tempfile::TempDir,
    }

    impl FakeHost {
        fn new() -> Self {
            let host = FakeHost {
                dir: tempfile::tempdir().unwrap(),
            };
            fs::write(
                host.path("boot_id"),
                "7e0632fe-fea7-49cf-b39d-88d137fdd98d\n",
            )
            .unwrap();
            host.load_module("kvm", None);
            host.load_module("kvm_intel", Some("ABC123"));
            fs::create_dir(host.path("modules/ext4")).unwrap();
            fs::write(host.path("kvm"), "").unwrap();
            host
        }

        fn path(&self, name: &str) -> PathBuf {
            self.dir.path().join(name)
        }

        /// (Re)loads module `name`: a fresh directory, as the kernel makes one.
        fn load_module(&self, name: &str, srcversion: Option<&str>) {
            let dir = self.path("modules").join(name);
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(dir.join("parameters")).unwrap();
            if let Some(srcversion) = srcversion {
                fs::write(dir.join("srcversion"), format!("{srcversion}\n")).unwrap();
            }
        }

        fn sources(&self) -> KeySources {
            KeySources {
                boot_id: self.path("boot_id"),
                modules: self.path("modules"),
                device: self.path("kvm"),
                build: "0.1.0 test".into(),
            }
        }

        fn key(&self) -> ProbeKey {
            ProbeKey::gather(&self.sources()).unwrap()
        }
    }

    #[test]
    fn the_key_names_the_boot_the_kvm_modules_the_device_and_the_build() {
        let host = FakeHost::new();
        let key = host.key();
        assert_eq!(key.boot_id, "7e0632fe-fea7-49cf-b39d-88d137fdd98d");
        let names: Vec<_> = key.modules.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["kvm", "kvm_intel"], "ext4 is not KVM's");
        assert_eq!(key.modules[0].srcversion, None);
        assert_eq!(key.modules[1].srcversion.as_deref(), Some("ABC123"));
        assert_eq!(host.key(), key, "the same host gives the same key");

        let mut sources = host.sources();
        sources.build = "0.2.0 test".into();
        assert_ne!(
            ProbeKey::gather(&sources).unwrap(),
            key,
            "another vmc build"
        );

        // Keep the old directory's inode from being reused by the reloaded module's.
        let keep = host.path("modules/kvm_old");
        fs::rename(host.path("modules/kvm_intel"), &keep).unwrap();
        host.load_module("kvm_intel", Some("ABC123"));
        fs::remove_dir_all(keep).unwrap();
        let reloaded = host.key();
        assert_ne!(reloaded.modules[1].inode, key.modules[1].inode);
        assert_ne!(reloaded, key, "a reloaded module");

        host.load_module("kvm_intel", Some("DEF456"));
        assert_ne!(host.key().modules[1].srcversion, key.modules[1].srcversion);

        fs::write(host.path("boot_id"), "another-boot\n").unwrap();
        assert_eq!(host.key().boot_id, "another-boot");
    }

    #[test]
    fn no_key_without_a_boot_id_a_kvm_module_or_the_device() {
        let host = FakeHost::new();
        fs::remove_file(host.path("kvm")).unwrap();
        assert_eq!(ProbeKey::gather(&host.sources()), None, "no device");

        let host = FakeHost::new();
        fs::remove_dir_all(host.path("modules/kvm")).unwrap();
        fs::remove_dir_all(host.path("modules/kvm_intel")).unwrap();
        assert_eq!(ProbeKey::gather(&host.sources()), None, "no KVM module");

        let host = FakeHost::new();
        fs::write(host.path("boot_id"), "\n").unwrap();
        assert_eq!(ProbeKey::gather(&host.sources()), None, "empty boot id");
    }

    #[test]
    fn verdicts_about_the_host_are_cached_under_their_key() {
        let host = FakeHost::new();
        let key = host.key();
        let cache = host.path("home/cache/kvm-probe");
        assert_eq!(load(&cache, &key), None, "nothing cached yet");

        assert!(store(&cache, &key, &Verdict::Full).unwrap());
        assert_eq!(load(&cache, &key), Some(Verdict::Full));
        let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&cache), 0o600);
        assert_eq!(mode(cache.parent().unwrap()), 0o700);

        let refused = Verdict::NoGuestInterrupts {
            detail: "KVM_EXIT_INTERNAL_ERROR at its first exception (int3)".into(),
        };
        assert!(store(&cache, &key, &refused).unwrap());
        assert_eq!(load(&cache, &key), Some(refused.clone()));

        let mut other = key.clone();
        other.boot_id = "another-boot".into();
        assert_eq!(load(&cache, &other), None, "another boot's verdict");

        let failed = Verdict::Failed {
            detail: "the probe guest did not finish within 5s".into(),
        };
        assert!(
            !store(&cache, &key, &failed).unwrap(),
            "a failure is not cached"
        );
        assert_eq!(
            load(&cache, &key),
            Some(refused),
            "and leaves the entry alone"
        );
        assert_eq!(
            fs::read_dir(cache.parent().unwrap()).unwrap().count(),
            1,
            "no temporary files left"
        );
    }

    #[test]
    fn a_foreign_file_is_ignored_and_rewritten() {
        let host = FakeHost::new();
        let key = host.key();
        let dir = host.path("cache");
        fs::create_dir(&dir).unwrap();
        let cache = dir.join("kvm-probe");
        let good = dir.join("good");
        store(&good, &key, &Verdict::Full).unwrap();
        let good_bytes = fs::read(&good).unwrap();

        let mut extra: serde_json::Value = serde_json::from_slice(&good_bytes).unwrap();
        extra["trusted"] = true.into();
        let mut padded = good_bytes.clone();
        padded.resize(MAX_FILE_BYTES as usize + 1, b' ');
        for foreign in [
            b"not json".to_vec(),
            b"{}".to_vec(),
            serde_json::to_vec(&extra).unwrap(),
            padded,
        ] {
            fs::write(&cache, &foreign).unwrap();
            fs::set_permissions(&cache, fs::Permissions::from_mode(0o600)).unwrap();
            assert_eq!(load(&cache, &key), None);
            assert!(store(&cache, &key, &Verdict::Full).unwrap());
            assert_eq!(load(&cache, &key), Some(Verdict::Full), "rewritten");
        }

        fs::set_permissions(&cache, fs::Permissions::from_mode(0o666)).unwrap();
        assert_eq!(load(&cache, &key), None, "writable by others");

        fs::remove_file(&cache).unwrap();
        std::os::unix::fs::symlink(&good, &cache).unwrap();
        assert_eq!(load(&cache, &key), None, "a symbolic link is not followed");
        assert!(store(&cache, &key, &Verdict::Full).unwrap());
        assert!(
            !fs::symlink_metadata(&cache).unwrap().is_symlink(),
            "replaced"
        );
        assert_eq!(load(&cache, &key), Some(Verdict::Full));
    }

    #[test]
    fn this_hosts_key_is_stable() {
        let Some(key) = ProbeKey::gather(&KeySources::host()) else {
            eprintln!("SKIPPED: no /dev/kvm or no kvm module on this host");
            return;
        };
        assert_eq!(ProbeKey::gather(&KeySources::host()), Some(key));
    }
}
