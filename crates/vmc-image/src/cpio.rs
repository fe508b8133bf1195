//! Writing newc ("SVR4 new ASCII") cpio archives, the format the kernel unpacks as initramfs.
//!
//! The header encoding comes from the `cpio` crate; this module adds what an initramfs needs
//! on top: walking a directory tree in a parent-first order, every kind of entry (directories,
//! regular files, symlinks, device nodes, FIFOs, sockets), hard links (the entries of one inode
//! share an inode number and `nlink`, and only the last one carries the data, as GNU cpio and
//! the kernel expect), and the `TRAILER!!!` entry. Archives are padded with zeros to a
//! multiple of 512 bytes like GNU cpio's, so concatenated archives stay readable one after
//! the other by `cpio -i` as well as by the kernel (which skips zeros between archives).

use crate::error::{IoContext, Result};
use ::cpio::newc::Builder;
use std::collections::HashMap;
use std::fs::Metadata;
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Owner, permissions and time of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attributes {
    /// Permission bits, including setuid/setgid/sticky (the file type is added per entry).
    pub permissions: u32,
    /// Owner user id.
    pub uid: u32,
    /// Owner group id.
    pub gid: u32,
    /// Modification time, seconds since the epoch.
    pub mtime: u32,
}

impl Attributes {
    /// Root-owned, with `permissions`, time zero (reproducible archives).
    pub fn root(permissions: u32) -> Self {
        Attributes {
            permissions,
            uid: 0,
            gid: 0,
            mtime: 0,
        }
    }

    /// The attributes of a file on disk.
    fn of(meta: &Metadata) -> Self {
        Attributes {
            permissions: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
            mtime: u32::try_from(meta.mtime()).unwrap_or(0),
        }
    }
}

/// Archives are padded to a multiple of this many bytes.
pub const BLOCK_SIZE: u64 = 512;

/// Streams entries into a newc archive; call [`CpioWriter::finish`] to end it.
pub struct CpioWriter<W: Write> {
    out: CountingWriter<W>,
    next_ino: u32,
}

/// Counts the bytes written through it (for the final padding).
struct CountingWriter<W> {
    inner: W,
    written: u64,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<W: Write> CpioWriter<W> {
    /// Starts an archive written to `out`.
    pub fn new(out: W) -> Self {
        CpioWriter {
            out: CountingWriter {
                inner: out,
                written: 0,
            },
            next_ino: 1,
        }
    }

    /// Adds a directory. `name` is relative to the archive root, e.g. `"dev"`.
    pub fn add_dir(&mut self, name: &str, attrs: Attributes) -> io::Result<()> {
        let ino = self.new_ino();
        self.write_entry(header(name, libc::S_IFDIR, attrs, ino), &[])
    }

    /// Adds a regular file holding `data`.
    pub fn add_file(&mut self, name: &str, attrs: Attributes, data: &[u8]) -> io::Result<()> {
        let ino = self.new_ino();
        self.write_entry(header(name, libc::S_IFREG, attrs, ino), data)
    }

    /// Adds a regular file whose `size` bytes are read from `data`.
    pub fn add_file_from(
        &mut self,
        name: &str,
        attrs: Attributes,
        data: impl Read,
        size: u64,
    ) -> io::Result<()> {
        let ino = self.new_ino();
        self.write_streamed(header(name, libc::S_IFREG, attrs, ino), data, size)
    }

    /// Adds a symbolic link pointing to `target`.
    pub fn add_symlink(&mut self, name: &str, attrs: Attributes, target: &str) -> io::Result<()> {
        let ino = self.new_ino();
        self.write_entry(header(name, libc::S_IFLNK, attrs, ino), target.as_bytes())
    }

    /// Adds a character device node `major:minor`.
    pub fn add_char_device(
        &mut self,
        name: &str,
        attrs: Attributes,
        major: u32,
        minor: u32,
    ) -> io::Result<()> {
        let ino = self.new_ino();
        let builder = header(name, libc::S_IFCHR, attrs, ino)
            .rdev_major(major)
            .rdev_minor(minor);
        self.write_entry(builder, &[])
    }

    /// Adds `root` as `.` (so its owner and mode apply to the unpacked root) and everything
    /// below it, parents before children, names sorted, skipping the entries (and their
    /// subtrees) whose archive name `skip` accepts.
    pub fn add_tree(&mut self, root: &Path, skip: &dyn Fn(&str) -> bool) -> Result<()> {
        let root_meta = root.metadata().io_ctx("inspecting", root)?;
        self.add_dir(".", Attributes::of(&root_meta))
            .io_ctx("archiving", root)?;
        let entries = walk(root, skip)?;
        let links = hard_link_groups(&entries);
        for (index, entry) in entries.iter().enumerate() {
            let ino_key = (entry.meta.dev(), entry.meta.ino());
            match links.get(&ino_key) {
                // Every name of a multiply-linked file is written at its last name's turn.
                Some(group) if *group.last().expect("groups are never empty") == index => {
                    self.add_hard_links(&entries, group)?;
                }
                Some(_) => {}
                None => self.add_disk_entry(entry)?,
            }
        }
        Ok(())
    }

    /// Writes the `TRAILER!!!` entry and the padding, and returns the output.
    pub fn finish(self) -> io::Result<W> {
        let mut out = ::cpio::newc::trailer(self.out)?;
        let padding = out.written.next_multiple_of(BLOCK_SIZE) - out.written;
        io::copy(&mut io::repeat(0).take(padding), &mut out)?;
        Ok(out.inner)
    }

    fn new_ino(&mut self) -> u32 {
        self.next_ino += 1;
        self.next_ino - 1
    }

    /// Writes one entry of a file on disk (its only name inside the archive).
    fn add_disk_entry(&mut self, entry: &DiskEntry) -> Result<()> {
        let attrs = Attributes::of(&entry.meta);
        let file_type = entry.meta.file_type();
        let name = entry.name.as_str();
        let written = if file_type.is_dir() {
            self.add_dir(name, attrs)
        } else if file_type.is_symlink() {
            let target = std::fs::read_link(&entry.path).io_ctx("reading link", &entry.path)?;
            let target = utf8(&target.into_os_string().into_encoded_bytes(), &entry.path)?;
            self.add_symlink(name, attrs, &target)
        } else if file_type.is_file() {
            let file = std::fs::File::open(&entry.path).io_ctx("opening", &entry.path)?;
            self.add_file_from(name, attrs, file, entry.meta.len())
        } else {
            let ino = self.new_ino();
            self.write_entry(special_header(name, &entry.meta, attrs, ino), &[])
        };
        written.io_ctx("archiving", &entry.path)
    }

    /// Writes all names of one multiply-linked regular file: one inode number, `nlink` = the
    /// number of names in the archive, the data with the last name only.
    fn add_hard_links(&mut self, entries: &[DiskEntry], group: &[usize]) -> Result<()> {
        let ino = self.new_ino();
        let nlink = group.len() as u32;
        let (last, first) = group.split_last().expect("groups are never empty");
        for &index in first {
            let entry = &entries[index];
            let builder = header(&entry.name, libc::S_IFREG, Attributes::of(&entry.meta), ino);
            self.write_entry(builder.nlink(nlink), &[])
                .io_ctx("archiving", &entry.path)?;
        }
        let entry = &entries[*last];
        let builder = header(&entry.name, libc::S_IFREG, Attributes::of(&entry.meta), ino);
        let file = std::fs::File::open(&entry.path).io_ctx("opening", &entry.path)?;
        self.write_streamed(builder.nlink(nlink), file, entry.meta.len())
            .io_ctx("archiving", &entry.path)
    }

    fn write_entry(&mut self, builder: Builder, data: &[u8]) -> io::Result<()> {
        self.write_streamed(builder, data, data.len() as u64)
    }

    fn write_streamed(&mut self, builder: Builder, data: impl Read, size: u64) -> io::Result<()> {
        let size32 = u32::try_from(size).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "files of 4 GiB or more do not fit in a cpio archive",
            )
        })?;
        let mut writer = builder.write(&mut self.out, size32);
        let copied = io::copy(&mut data.take(size), &mut writer)?;
        if copied != size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file shrank while it was being archived",
            ));
        }
        writer.finish()?;
        Ok(())
    }
}

/// A header for `name` of type `kind` (an `S_IF*` constant).
fn header(name: &str, kind: libc::mode_t, attrs: Attributes, ino: u32) -> Builder {
    Builder::new(name)
        .ino(ino)
        .mode(kind | attrs.permissions)
        .uid(attrs.uid)
        .gid(attrs.gid)
        .mtime(attrs.mtime)
}

/// A header for a device node, FIFO or socket on disk.
fn special_header(name: &str, meta: &Metadata, attrs: Attributes, ino: u32) -> Builder {
    let rdev = meta.rdev();
    Builder::new(name)
        .ino(ino)
        .mode(meta.mode())
        .uid(attrs.uid)
        .gid(attrs.gid)
        .mtime(attrs.mtime)
        .rdev_major(libc::major(rdev))
        .rdev_minor(libc::minor(rdev))
}

/// One file found below the archived root.
struct DiskEntry {
    /// Its name inside the archive (relative, `/`-separated).
    name: String,
    /// Its path on disk.
    path: PathBuf,
    /// Its metadata (symlinks not followed).
    meta: Metadata,
}

/// Lists the tree below `root` depth-first, parents first, names sorted.
fn walk(root: &Path, skip: &dyn Fn(&str) -> bool) -> Result<Vec<DiskEntry>> {
    let mut entries = Vec::new();
    walk_dir(root, "", skip, &mut entries)?;
    Ok(entries)
}

/// Appends the entries of `dir` (archive name prefix `prefix`) and of its subdirectories.
fn walk_dir(
    dir: &Path,
    prefix: &str,
    skip: &dyn Fn(&str) -> bool,
    entries: &mut Vec<DiskEntry>,
) -> Result<()> {
    let mut children = Vec::new();
    for child in std::fs::read_dir(dir).io_ctx("reading directory", dir)? {
        let child = child.io_ctx("reading directory", dir)?;
        let path = child.path();
        let name = format!(
            "{prefix}{}",
            utf8(child.file_name().as_encoded_bytes(), &path)?
        );
        if !skip(&name) {
            let meta = path.symlink_metadata().io_ctx("inspecting", &path)?;
            children.push(DiskEntry { name, path, meta });
        }
    }
    children.sort_by(|a, b| a.name.cmp(&b.name));
    for child in children {
        let subdir = child
            .meta
            .is_dir()
            .then(|| (child.path.clone(), format!("{}/", child.name)));
        entries.push(child);
        if let Some((path, prefix)) = subdir {
            walk_dir(&path, &prefix, skip, entries)?;
        }
    }
    Ok(())
}

/// The indices of the regular files that have more than one name inside the archive, grouped
/// by inode, in archive order.
fn hard_link_groups(entries: &[DiskEntry]) -> HashMap<(u64, u64), Vec<usize>> {
    let mut groups: HashMap<(u64, u64), Vec<usize>> = HashMap::new();
    for (index, entry) in entries.iter().enumerate() {
        if entry.meta.is_file() && entry.meta.nlink() > 1 {
            groups
                .entry((entry.meta.dev(), entry.meta.ino()))
                .or_default()
                .push(index);
        }
    }
    groups.retain(|_, names| names.len() > 1);
    groups
}

/// `bytes` as UTF-8 (the `cpio` crate's names are strings), else an error naming `path`.
fn utf8(bytes: &[u8], path: &Path) -> Result<String> {
    String::from_utf8(bytes.to_vec())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "the name is not valid UTF-8"))
        .io_ctx("archiving", path)
}
