//! Resolving `-u USER[:GROUP]` against an image's /etc/passwd and /etc/group.
//!
//! Both files come from the image: they are read inside its root, at most
//! [`MAX_ACCOUNT_FILE_BYTES`] of them and only when they are regular files
//! ([`crate::rootfs::read_image_file`]), and every id is checked to lie in `0..=`[`MAX_ID`].

use crate::rootfs::{read_image_file, RootfsError};
use std::path::Path;

/// The largest user or group id vmc runs a workload as: 2^31 - 1, runc's limit (above it ids
/// wrap to negative values in some APIs, and 4294967295 means "no change" to setresuid).
pub const MAX_ID: u32 = i32::MAX as u32;

/// The most vmc reads of the image's /etc/passwd or /etc/group (real ones are a few KiB).
pub const MAX_ACCOUNT_FILE_BYTES: u64 = 1 << 20;

/// Why a user specification could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// The name is not in the image's /etc/passwd.
    #[error("unable to find user {0}: no matching entries in the image's /etc/passwd")]
    UnknownUser(String),
    /// The name is not in the image's /etc/group.
    #[error("unable to find group {0}: no matching entries in the image's /etc/group")]
    UnknownGroup(String),
    /// A uid or gid outside `0..=MAX_ID`, given or found in the image's files.
    #[error("invalid user {spec:?}: {what} {value}{origin} is out of range (user and group ids must be between 0 and {MAX_ID})")]
    IdOutOfRange {
        /// The `USER[:GROUP]` being resolved.
        spec: String,
        /// "uid" or "gid".
        what: &'static str,
        /// The id as written.
        value: String,
        /// Where the id was found: empty when given, else " in the image's /etc/passwd".
        origin: &'static str,
    },
    /// The image's /etc/passwd or /etc/group cannot be read safely.
    #[error(transparent)]
    AccountFile(#[from] RootfsError),
}

/// The identity a workload runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// User id, at most [`MAX_ID`].
    pub uid: u32,
    /// Primary group id, at most [`MAX_ID`].
    pub gid: u32,
    /// The home directory: the uid's /etc/passwd entry, else `/` (`/root` for root).
    pub home: String,
}

/// Resolves `USER[:GROUP]` (names or numbers) to a uid, gid and home using the image's files
/// under `rootfs`. An empty spec means root. A numeric uid with no group takes the user's
/// primary group when the image lists the uid, else gid 0 (Docker's rule).
pub fn resolve(spec: &str, rootfs: &Path) -> Result<User, UserError> {
    let passwd = read_account_file(rootfs, "/etc/passwd")?;
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let check = |what, value: &str, origin| check_id(spec, what, value, origin);
    let passwd_entry = find_entry(&passwd, user_part);
    let uid = match (user_part, check("uid", user_part, "")?, &passwd_entry) {
        ("", _, _) => 0,
        (_, Some(uid), _) => uid,
        (_, None, Some(fields)) => check("uid", fields[2], IN_PASSWD)?
            .ok_or_else(|| UserError::UnknownUser(user_part.into()))?,
        (_, None, None) => return Err(UserError::UnknownUser(user_part.into())),
    };
    let gid = match group_part {
        Some(g) => match check("gid", g, "")? {
            Some(gid) => gid,
            None => {
                let group = read_account_file(rootfs, "/etc/group")?;
                let fields =
                    find_entry(&group, g).ok_or_else(|| UserError::UnknownGroup(g.into()))?;
                check("gid", fields[2], IN_GROUP)?
                    .ok_or_else(|| UserError::UnknownGroup(g.into()))?
            }
        },
        None => match &passwd_entry {
            Some(fields) => check("gid", fields[3], IN_PASSWD)?.unwrap_or(0),
            None => 0,
        },
    };
    Ok(User {
        uid,
        gid,
        home: home_of(uid, &passwd),
    })
}

/// The workload's home: the `HOME` its environment `env` sets, else that of `uid` in the
/// /etc/passwd of the image under `rootfs` (see [`home_of`]), read only then.
pub fn home_for(env: &[String], rootfs: &Path, uid: u32) -> Result<String, UserError> {
    match crate::env::env_value(env, "HOME") {
        Some(home) => Ok(home.to_string()),
        None => Ok(home_of(uid, &read_account_file(rootfs, "/etc/passwd")?)),
    }
}

/// The home directory of `uid` in the image's /etc/passwd text, else `/` (`/root` for root).
fn home_of(uid: u32, passwd: &str) -> String {
    passwd
        .lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .find(|fields| fields.len() >= 6 && fields[2].parse() == Ok(uid))
        .map(|fields| fields[5].to_string())
        .filter(|home| !home.is_empty())
        .unwrap_or_else(|| if uid == 0 { "/root" } else { "/" }.to_string())
}

const IN_PASSWD: &str = " in the image's /etc/passwd";
const IN_GROUP: &str = " in the image's /etc/group";

/// The image's account file `path` as text; empty when the image has none.
fn read_account_file(rootfs: &Path, path: &str) -> Result<String, UserError> {
    let bytes = read_image_file(rootfs, Path::new(path), MAX_ACCOUNT_FILE_BYTES)?;
    Ok(bytes
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default())
}

/// `value` as an id when it is a number (`None` for a name); a number outside `0..=MAX_ID`,
/// negative ones included, is an error.
fn check_id(
    spec: &str,
    what: &'static str,
    value: &str,
    origin: &'static str,
) -> Result<Option<u32>, UserError> {
    let digits = value.strip_prefix('-').unwrap_or(value);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    match value.parse::<u32>() {
        Ok(id) if id <= MAX_ID => Ok(Some(id)),
        _ => Err(UserError::IdOutOfRange {
            spec: spec.to_string(),
            what,
            value: value.to_string(),
            origin,
        }),
    }
}

/// Finds the colon-separated entry whose name (field 0) or id (field 2) is `key`.
fn find_entry<'a>(file: &'a str, key: &str) -> Option<Vec<&'a str>> {
    file.lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .filter(|fields| fields.len() >= 4)
        .find(|fields| fields[0] == key || fields[2] == key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rootfs() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\nalice:x:1000:100::/home/alice:/bin/sh\nwrap:x:4294967295:0::/:/bin/sh\nneg:x:1001:-1::/:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("etc/group"),
            "root:x:0:\nusers:x:100:\nnogroup:x:65534:\nhuge:x:2147483648:\n",
        )
        .unwrap();
        dir
    }

    fn ids(spec: &str, rootfs: &Path) -> (u32, u32) {
        let user = resolve(spec, rootfs).unwrap();
        (user.uid, user.gid)
    }

    #[test]
    fn resolves_names_and_numbers() {
        let fs = rootfs();
        assert_eq!(ids("", fs.path()), (0, 0));
        assert_eq!(ids("nobody", fs.path()), (65534, 65534));
        assert_eq!(ids("alice:root", fs.path()), (1000, 0));
        assert_eq!(ids("1000", fs.path()), (1000, 100));
        assert_eq!(ids("4242", fs.path()), (4242, 0));
        assert_eq!(ids("4242:7", fs.path()), (4242, 7));
        assert_eq!(ids("2147483647:2147483647", fs.path()), (MAX_ID, MAX_ID));
        assert_eq!(resolve("alice", fs.path()).unwrap().home, "/home/alice");
        assert_eq!(resolve("", fs.path()).unwrap().home, "/root");
    }

    #[test]
    fn ids_outside_runcs_range_are_refused() {
        let fs = rootfs();
        for (spec, needle) in [
            ("4294967295", "uid 4294967295 is out of range"),
            ("2147483648", "uid 2147483648 is out of range"),
            ("-1", "uid -1 is out of range"),
            (
                "99999999999999999999",
                "uid 99999999999999999999 is out of range",
            ),
            ("0:-1", "gid -1 is out of range"),
            ("0:4294967295", "gid 4294967295 is out of range"),
            (
                "wrap",
                "uid 4294967295 in the image's /etc/passwd is out of range",
            ),
            ("neg", "gid -1 in the image's /etc/passwd is out of range"),
            (
                "0:huge",
                "gid 2147483648 in the image's /etc/group is out of range",
            ),
        ] {
            let err = resolve(spec, fs.path()).unwrap_err();
            let message = err.to_string();
            assert!(
                matches!(err, UserError::IdOutOfRange { .. }),
                "{spec}: {message}"
            );
            assert!(message.contains(needle), "{spec}: {message}");
            assert!(message.contains("between 0 and 2147483647"), "{message}");
        }
    }

    #[test]
    fn home_comes_from_passwd_with_docker_defaults() {
        let passwd = "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:100::/home/alice:/bin/sh\n";
        assert_eq!(home_of(1000, passwd), "/home/alice");
        assert_eq!(home_of(0, ""), "/root");
        assert_eq!(home_of(42, passwd), "/");
        let fs = rootfs();
        assert_eq!(home_for(&[], fs.path(), 1000).unwrap(), "/home/alice");
        let set = ["HOME=/h".to_string()];
        assert_eq!(home_for(&set, fs.path(), 1000).unwrap(), "/h");
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(home_for(&[], empty.path(), 0).unwrap(), "/root");
    }

    #[test]
    fn unknown_names_are_errors() {
        let fs = rootfs();
        assert!(matches!(
            resolve("bob", fs.path()),
            Err(UserError::UnknownUser(_))
        ));
        assert!(matches!(
            resolve("alice:wheel", fs.path()),
            Err(UserError::UnknownGroup(_))
        ));
    }

    #[test]
    fn account_files_are_read_inside_the_image_only() {
        let fs = tempfile::tempdir().unwrap();
        std::fs::create_dir(fs.path().join("etc")).unwrap();
        let host = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(host.path(), "marker:x:4321:4321::/marker:/bin/sh\n").unwrap();
        std::os::unix::fs::symlink(host.path(), fs.path().join("etc/passwd")).unwrap();
        assert!(matches!(
            resolve("marker", fs.path()),
            Err(UserError::UnknownUser(_))
        ));
        std::fs::remove_file(fs.path().join("etc/passwd")).unwrap();
        nix::unistd::mkfifo(
            &fs.path().join("etc/passwd"),
            nix::sys::stat::Mode::from_bits_truncate(0o644),
        )
        .unwrap();
        let err = resolve("nobody", fs.path()).unwrap_err();
        assert!(err.to_string().contains("is a FIFO"), "{err}");
    }
}
