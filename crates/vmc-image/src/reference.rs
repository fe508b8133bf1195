//! Image names (`name[:tag]`), how they are stored in `index.json`, and ID prefixes.

use crate::error::{ImageError, Result};

/// The tag used when a name has none.
pub const DEFAULT_TAG: &str = "latest";

/// The shortest image ID prefix accepted (Docker-like).
pub const MIN_ID_PREFIX: usize = 4;

/// A repository name with a tag, e.g. `busybox:latest`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaggedName {
    /// Repository, e.g. `busybox` or `localhost:5000/team/app`.
    pub repository: String,
    /// Tag, e.g. `latest`.
    pub tag: String,
}

impl TaggedName {
    /// Parses `name[:tag]`, validating both parts like Docker does.
    pub fn parse(text: &str) -> Result<TaggedName> {
        let invalid = |reason: &str| ImageError::InvalidReference {
            reference: text.to_string(),
            reason: reason.to_string(),
        };
        let (repository, tag) = match text.rsplit_once(':') {
            Some((repo, tag)) if !tag.contains('/') => (repo, tag),
            _ => (text, DEFAULT_TAG),
        };
        if repository.is_empty() {
            return Err(invalid("the name is empty"));
        }
        let repo_ok = repository
            .bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-' | b'/' | b':'))
            && repository.as_bytes()[0].is_ascii_alphanumeric();
        if !repo_ok {
            return Err(invalid(
                "names use lowercase letters, digits, '.', '_', '-' and '/', starting with a letter or digit",
            ));
        }
        let tag_ok = !tag.is_empty()
            && tag.len() <= 128
            && tag
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
            && tag.as_bytes()[0] != b'.'
            && tag.as_bytes()[0] != b'-';
        if !tag_ok {
            return Err(invalid("tags are 1-128 letters, digits, '_', '.' or '-'"));
        }
        Ok(TaggedName {
            repository: repository.to_string(),
            tag: tag.to_string(),
        })
    }

    /// The `org.opencontainers.image.ref.name` value: the bare repository for `latest` (so
    /// `skopeo inspect oci:$VMC_HOME/images:busybox` works), else `repository:tag`.
    pub fn ref_name(&self) -> String {
        if self.tag == DEFAULT_TAG {
            self.repository.clone()
        } else {
            self.to_string()
        }
    }

    /// Derives a valid name from a file name such as `My_Image-1.2.tar.gz` → `my_image-1.2`.
    pub fn from_file_stem(file_name: &str) -> Option<TaggedName> {
        let mut stem = file_name;
        for suffix in [".gz", ".tgz", ".zst", ".tar", ".oci", ".docker"] {
            stem = stem.strip_suffix(suffix).unwrap_or(stem);
        }
        let cleaned: String = stem
            .chars()
            .map(|c| c.to_ascii_lowercase())
            .map(|c| {
                if c.is_ascii_alphanumeric() || "._-".contains(c) {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        let cleaned = cleaned.trim_start_matches(|c: char| !c.is_ascii_alphanumeric());
        TaggedName::parse(cleaned).ok()
    }
}

impl std::fmt::Display for TaggedName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.repository, self.tag)
    }
}

/// If `text` can be an image ID prefix (`sha256:` optional, at least 4 hex digits), returns
/// the lowercase hex part.
pub fn id_prefix(text: &str) -> Option<String> {
    let hex = text
        .strip_prefix("sha256:")
        .unwrap_or(text)
        .to_ascii_lowercase();
    let ok =
        (MIN_ID_PREFIX..=64).contains(&hex.len()) && hex.bytes().all(|b| b.is_ascii_hexdigit());
    ok.then_some(hex)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_tag_and_registry_ports() {
        let n = TaggedName::parse("busybox").unwrap();
        assert_eq!(
            (n.repository.as_str(), n.tag.as_str()),
            ("busybox", "latest")
        );
        assert_eq!(n.ref_name(), "busybox");
        let n = TaggedName::parse("localhost:5000/app").unwrap();
        assert_eq!(
            (n.repository.as_str(), n.tag.as_str()),
            ("localhost:5000/app", "latest")
        );
        let n = TaggedName::parse("localhost:5000/app:v1").unwrap();
        assert_eq!(
            (n.repository.as_str(), n.tag.as_str()),
            ("localhost:5000/app", "v1")
        );
        assert_eq!(n.ref_name(), "localhost:5000/app:v1");
    }

    #[test]
    fn rejects_bad_names() {
        for bad in ["", "Busybox", "a b", ":tag", "x:", "x:-bad", "/abs"] {
            assert!(TaggedName::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn names_from_files_and_id_prefixes() {
        let n = TaggedName::from_file_stem("My Rootfs.tar.gz").unwrap();
        assert_eq!(n.to_string(), "my-rootfs:latest");
        assert_eq!(id_prefix("sha256:ABCD").as_deref(), Some("abcd"));
        assert_eq!(id_prefix("abc"), None);
        assert_eq!(id_prefix("busybox"), None);
    }
}
