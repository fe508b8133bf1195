//! Resolving `-u USER[:GROUP]` against an image's /etc/passwd and /etc/group.

use std::path::Path;

/// Why a user specification could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// The name is not in the image's /etc/passwd.
    #[error("unable to find user {0}: no matching entries in the image's /etc/passwd")]
    UnknownUser(String),
    /// The name is not in the image's /etc/group.
    #[error("unable to find group {0}: no matching entries in the image's /etc/group")]
    UnknownGroup(String),
}

/// Resolves `USER[:GROUP]` (names or numbers) to a uid and gid using the image's files
/// under `rootfs`. An empty spec means root. A numeric uid with no group takes the user's
/// primary group when the image lists the uid, else gid 0 (Docker's rule).
pub fn resolve(spec: &str, rootfs: &Path) -> Result<(u32, u32), UserError> {
    if spec.is_empty() {
        return Ok((0, 0));
    }
    let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap_or_default();
    let group = std::fs::read_to_string(rootfs.join("etc/group")).unwrap_or_default();
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let passwd_entry = find_entry(&passwd, user_part);
    let uid = match (user_part.parse::<u32>(), &passwd_entry) {
        (Ok(uid), _) => uid,
        (Err(_), Some(fields)) => fields[2]
            .parse()
            .map_err(|_| UserError::UnknownUser(user_part.into()))?,
        (Err(_), None) => return Err(UserError::UnknownUser(user_part.into())),
    };
    let gid = match group_part {
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => find_entry(&group, g)
                .and_then(|fields| fields[2].parse().ok())
                .ok_or_else(|| UserError::UnknownGroup(g.into()))?,
        },
        None => passwd_entry
            .and_then(|fields| fields[3].parse().ok())
            .unwrap_or(0),
    };
    Ok((uid, gid))
}

/// The home directory of `uid` in the image's /etc/passwd text, else `/` (`/root` for root).
pub fn home_of(uid: u32, passwd: &str) -> String {
    passwd
        .lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .find(|fields| fields.len() >= 6 && fields[2].parse() == Ok(uid))
        .map(|fields| fields[5].to_string())
        .filter(|home| !home.is_empty())
        .unwrap_or_else(|| if uid == 0 { "/root" } else { "/" }.to_string())
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
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\nalice:x:1000:100::/home/alice:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("etc/group"),
            "root:x:0:\nusers:x:100:\nnogroup:x:65534:\n",
        )
        .unwrap();
        dir
    }

    #[test]
    fn resolves_names_and_numbers() {
        let fs = rootfs();
        assert_eq!(resolve("", fs.path()).unwrap(), (0, 0));
        assert_eq!(resolve("nobody", fs.path()).unwrap(), (65534, 65534));
        assert_eq!(resolve("alice:root", fs.path()).unwrap(), (1000, 0));
        assert_eq!(resolve("1000", fs.path()).unwrap(), (1000, 100));
        assert_eq!(resolve("4242", fs.path()).unwrap(), (4242, 0));
        assert_eq!(resolve("4242:7", fs.path()).unwrap(), (4242, 7));
    }

    #[test]
    fn home_comes_from_passwd_with_docker_defaults() {
        let passwd = "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:100::/home/alice:/bin/sh\n";
        assert_eq!(home_of(1000, passwd), "/home/alice");
        assert_eq!(home_of(0, ""), "/root");
        assert_eq!(home_of(42, passwd), "/");
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
}
