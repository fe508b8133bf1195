//! virtio-blk: a raw host file as the guest's disk (`/dev/vda`, `/dev/vdb`, …).
//!
//! One request queue, served on the event-loop thread: each request's data moves between the
//! file and guest RAM with one `preadv`/`pwritev` straight into (out of) the guest's buffers.
//! A read-only disk is opened read-only and offers VIRTIO_BLK_F_RO; a write to it fails with
//! VIRTIO_BLK_S_IOERR. Nothing is ever written but what the guest writes, so a sparse file
//! stays sparse. Offered: VERSION_1, EVENT_IDX, SEG_MAX, SIZE_MAX, FLUSH (`fdatasync`) and RO;
//! requests IN, OUT, FLUSH and GET_ID (anything else: VIRTIO_BLK_S_UNSUPP). The capacity is
//! the file's size in 512-byte sectors (a partial last sector is not part of the disk).
//! Requests may lay their header, data and status out over the descriptors in any way.

use super::queue::{serve_available, ChainUse};
use super::{
    ActivateError, Activation, Interrupt, QueueEvents, VirtioDevice, FEATURE_EVENT_IDX,
    FEATURE_VERSION_1,
};
use crate::config::DiskConfig;
use crate::error::VmError;
use crate::memory::GuestRam;
use event_manager::{EventOps, Events, MutEventSubscriber};
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use virtio_bindings::virtio_blk::{
    VIRTIO_BLK_F_FLUSH, VIRTIO_BLK_F_RO, VIRTIO_BLK_F_SEG_MAX, VIRTIO_BLK_F_SIZE_MAX,
    VIRTIO_BLK_ID_BYTES, VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_OK, VIRTIO_BLK_S_UNSUPP,
    VIRTIO_BLK_T_FLUSH, VIRTIO_BLK_T_GET_ID, VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT,
};
use virtio_bindings::virtio_ids::VIRTIO_ID_BLOCK;
use virtio_queue::desc::split::Descriptor;
use virtio_queue::{Queue, QueueT};
use vm_memory::{Address, Bytes, GuestAddress, GuestMemoryBackend};

/// Bytes per sector, the unit of the capacity and of request offsets.
pub const SECTOR_SIZE: u64 = 512;
/// Size of the request queue.
const QUEUE_SIZE: u16 = 256;
/// The most data segments in one request (the queue holds the header and status too).
const SEG_MAX: u32 = QUEUE_SIZE as u32 - 2;
/// The largest data segment.
const SIZE_MAX: u32 = 1 << 20;
/// Size of a request header: type (u32), reserved (u32), sector (u64).
const HEADER_SIZE: usize = 16;
/// Size of `struct virtio_blk_config` up to and including `seg_max` (capacity, size_max,
/// seg_max); the rest of the config space reads as zero.
const CONFIG_SIZE: usize = 16;

/// A virtio block device backed by a file.
pub struct Block {
    file: File,
    read_only: bool,
    capacity_sectors: u64,
    id: [u8; VIRTIO_BLK_ID_BYTES as usize],
    config: [u8; CONFIG_SIZE],
    queue_events: QueueEvents,
    active: Option<ActiveQueue>,
}

/// The request queue once the driver started the device.
struct ActiveQueue {
    memory: GuestRam,
    queue: Queue,
    interrupt: Arc<Interrupt>,
}

impl Block {
    /// Opens `disk` (read-only or read-write as it says); `id` is the serial the guest reads
    /// with GET_ID (at most 20 bytes are kept).
    pub fn open(disk: &DiskConfig, id: &str) -> Result<Block, VmError> {
        let unreadable = |source| VmError::DiskUnreadable {
            path: disk.path.clone(),
            source,
        };
        let file = File::options()
            .read(true)
            .write(!disk.read_only)
            .open(&disk.path)
            .map_err(unreadable)?;
        let metadata = file.metadata().map_err(unreadable)?;
        if !metadata.is_file() {
            return Err(unreadable(io::Error::other("not a regular file")));
        }
        let capacity_sectors = metadata.len() / SECTOR_SIZE;
        let mut config = [0u8; CONFIG_SIZE];
        config[0..8].copy_from_slice(&capacity_sectors.to_le_bytes());
        config[8..12].copy_from_slice(&SIZE_MAX.to_le_bytes());
        config[12..16].copy_from_slice(&SEG_MAX.to_le_bytes());
        let mut serial = [0u8; VIRTIO_BLK_ID_BYTES as usize];
        let id = &id.as_bytes()[..id.len().min(serial.len())];
        serial[..id.len()].copy_from_slice(id);
        Ok(Block {
            file,
            read_only: disk.read_only,
            capacity_sectors,
            id: serial,
            config,
            queue_events: QueueEvents::new(1).map_err(|source| VmError::Host {
                what: "create a virtio-blk queue eventfd",
                source,
            })?,
            active: None,
        })
    }

    /// The disk's size in bytes, as the guest sees it.
    pub fn capacity_bytes(&self) -> u64 {
        self.capacity_sectors * SECTOR_SIZE
    }

    /// Serves every request the driver has made available, then raises the interrupt if the
    /// driver wants one.
    fn process_queue(&mut self) {
        let Some(active) = self.active.as_mut() else {
            return;
        };
        let disk = Disk {
            file: &self.file,
            read_only: self.read_only,
            capacity_sectors: self.capacity_sectors,
            id: &self.id,
        };
        let memory = &active.memory;
        loop {
            // A ring the guest broke makes these fail: the queue then just stops.
            if active.queue.disable_notification(memory).is_err() {
                return;
            }
            let served = serve_available(&mut active.queue, memory, |chain| {
                let descriptors: Vec<Descriptor> = chain.collect();
                ChainUse::Used(disk.serve(memory, &descriptors))
            });
            if served.is_err() {
                return;
            }
            match active.queue.enable_notification(memory) {
                Ok(true) => continue,
                Ok(false) => break,
                Err(_) => return,
            }
        }
        if active.queue.needs_notification(memory).unwrap_or(true) {
            let _ = active.interrupt.signal_used_queue();
        }
    }
}

impl VirtioDevice for Block {
    fn device_type(&self) -> u32 {
        VIRTIO_ID_BLOCK
    }

    fn features(&self) -> u64 {
        let mut features = FEATURE_VERSION_1
            | FEATURE_EVENT_IDX
            | 1 << VIRTIO_BLK_F_SEG_MAX
            | 1 << VIRTIO_BLK_F_SIZE_MAX
            | 1 << VIRTIO_BLK_F_FLUSH;
        if self.read_only {
            features |= 1 << VIRTIO_BLK_F_RO;
        }
        features
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &[QUEUE_SIZE]
    }

    fn queue_events(&self) -> &QueueEvents {
        &self.queue_events
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        data.fill(0);
        let start = (offset as usize).min(CONFIG_SIZE);
        let available = &self.config[start..];
        let n = available.len().min(data.len());
        data[..n].copy_from_slice(&available[..n]);
    }

    fn activate(&mut self, activation: Activation) -> Result<(), ActivateError> {
        let queue = activation
            .queues
            .into_iter()
            .next()
            .filter(|queue| queue.ready())
            .ok_or(ActivateError::QueueNotReady(0))?;
        self.active = Some(ActiveQueue {
            memory: activation.memory,
            queue,
            interrupt: activation.interrupt,
        });
        Ok(())
    }

    fn reset(&mut self) {
        self.active = None;
    }
}

impl MutEventSubscriber for Block {
    fn process(&mut self, events: Events, _ops: &mut EventOps) {
        if self.queue_events.take(&events).is_some() {
            self.process_queue();
        }
    }

    fn init(&mut self, ops: &mut EventOps) {
        // Cannot fail: the eventfd is new to this epoll instance.
        let _ = self.queue_events.subscribe(ops);
    }
}

/// What serving a request needs of the device (borrowed apart from its queue).
struct Disk<'a> {
    file: &'a File,
    read_only: bool,
    capacity_sectors: u64,
    id: &'a [u8],
}

impl Disk<'_> {
    /// Serves one request made of `descriptors`; returns how many bytes it wrote into guest
    /// memory (data and status), for the used ring.
    fn serve(&self, memory: &GuestRam, descriptors: &[Descriptor]) -> u32 {
        let readable = Buffers::new(descriptors.iter().filter(|d| !d.is_write_only()));
        let writable = Buffers::new(descriptors.iter().filter(|d| d.is_write_only()));
        let Some(status_at) = writable.len.checked_sub(1) else {
            return 0; // Nowhere to put the status: nothing to answer.
        };
        let (status, data_written) = match self.execute(memory, &readable, &writable, status_at) {
            Ok(data_written) => (VIRTIO_BLK_S_OK, data_written),
            Err(status) => (status, 0),
        };
        let status_written = writable
            .range(status_at, 1)
            .and_then(|mut ranges| ranges.pop())
            .is_some_and(|(addr, _)| memory.write_obj(status as u8, addr).is_ok());
        data_written + u32::from(status_written)
    }

    /// Executes the request; returns the data bytes written into guest memory, or the
    /// failure status.
    fn execute(
        &self,
        memory: &GuestRam,
        readable: &Buffers,
        writable: &Buffers,
        status_at: u64,
    ) -> Result<u32, u32> {
        let mut header = [0u8; HEADER_SIZE];
        readable
            .read(memory, 0, &mut header)
            .ok_or(VIRTIO_BLK_S_IOERR)?;
        let kind = u32::from_le_bytes(header[0..4].try_into().expect("4 bytes"));
        let sector = u64::from_le_bytes(header[8..16].try_into().expect("8 bytes"));
        match kind {
            VIRTIO_BLK_T_IN => {
                let ranges = writable.range(0, status_at).ok_or(VIRTIO_BLK_S_IOERR)?;
                self.transfer(memory, &ranges, sector, status_at, Direction::Read)?;
                Ok(status_at as u32)
            }
            VIRTIO_BLK_T_OUT => {
                let len = readable.len - HEADER_SIZE as u64;
                let ranges = readable
                    .range(HEADER_SIZE as u64, len)
                    .ok_or(VIRTIO_BLK_S_IOERR)?;
                if self.read_only {
                    return Err(VIRTIO_BLK_S_IOERR);
                }
                self.transfer(memory, &ranges, sector, len, Direction::Write)?;
                Ok(0)
            }
            VIRTIO_BLK_T_FLUSH => {
                if !self.read_only {
                    self.file.sync_data().map_err(|_| VIRTIO_BLK_S_IOERR)?;
                }
                Ok(0)
            }
            VIRTIO_BLK_T_GET_ID => {
                let len = status_at.min(self.id.len() as u64);
                let ranges = writable.range(0, len).ok_or(VIRTIO_BLK_S_IOERR)?;
                let mut from = 0;
                for (addr, size) in ranges {
                    memory
                        .write_slice(&self.id[from..from + size], addr)
                        .map_err(|_| VIRTIO_BLK_S_IOERR)?;
                    from += size;
                }
                Ok(len as u32)
            }
            _ => Err(VIRTIO_BLK_S_UNSUPP),
        }
    }

    /// Moves `len` bytes between the disk from `sector` on and the guest buffers `ranges`.
    fn transfer(
        &self,
        memory: &GuestRam,
        ranges: &[(GuestAddress, usize)],
        sector: u64,
        len: u64,
        direction: Direction,
    ) -> Result<(), u32> {
        let end = sector
            .checked_mul(SECTOR_SIZE)
            .and_then(|start| start.checked_add(len));
        let inside = end.is_some_and(|end| end <= self.capacity_sectors * SECTOR_SIZE);
        if !inside || !len.is_multiple_of(SECTOR_SIZE) {
            return Err(VIRTIO_BLK_S_IOERR);
        }
        let mut iovecs = Vec::with_capacity(ranges.len());
        for &(addr, size) in ranges {
            for slice in memory.get_slices(addr, size) {
                let slice = slice.map_err(|_| VIRTIO_BLK_S_IOERR)?;
                iovecs.push(libc::iovec {
                    iov_base: slice.ptr_guard_mut().as_ptr().cast(),
                    iov_len: slice.len(),
                });
            }
        }
        transfer_all(self.file, &mut iovecs, sector * SECTOR_SIZE, direction)
            .map_err(|_| VIRTIO_BLK_S_IOERR)
    }
}

/// Which way data moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// Disk to guest (`preadv`).
    Read,
    /// Guest to disk (`pwritev`).
    Write,
}

/// Reads or writes all of `iovecs` at `offset` of `file`, however many calls it takes.
fn transfer_all(
    file: &File,
    mut iovecs: &mut [libc::iovec],
    mut offset: u64,
    direction: Direction,
) -> io::Result<()> {
    while !iovecs.is_empty() {
        let count = iovecs.len().min(libc::UIO_MAXIOV as usize) as libc::c_int;
        let at = libc::off_t::try_from(offset).map_err(io::Error::other)?;
        // SAFETY: every iovec points into guest RAM (a live mapping the VM keeps for its
        // whole life) with its length inside the mapping, as vm-memory's slices guarantee;
        // the kernel reads or writes only those bytes.
        let done = unsafe {
            match direction {
                Direction::Read => libc::preadv(file.as_raw_fd(), iovecs.as_ptr(), count, at),
                Direction::Write => libc::pwritev(file.as_raw_fd(), iovecs.as_ptr(), count, at),
            }
        };
        if done < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        if done == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        offset += done as u64;
        let mut left = done as usize;
        while let Some(first) = iovecs.first_mut() {
            if left < first.iov_len {
                // SAFETY: `left` is less than the iovec's length: the result stays inside it.
                first.iov_base = unsafe { first.iov_base.cast::<u8>().add(left) }.cast();
                first.iov_len -= left;
                break;
            }
            left -= first.iov_len;
            iovecs = &mut iovecs[1..];
        }
    }
    Ok(())
}

/// The readable (or the writable) buffers of a request as one run of bytes.
struct Buffers {
    parts: Vec<(GuestAddress, u64)>,
    len: u64,
}

impl Buffers {
    fn new<'a>(descriptors: impl Iterator<Item = &'a Descriptor>) -> Self {
        let parts: Vec<(GuestAddress, u64)> = descriptors
            .map(|d| (d.addr(), u64::from(d.len())))
            .collect();
        let len = parts.iter().map(|(_, len)| len).sum();
        Buffers { parts, len }
    }

    /// The guest ranges holding bytes `start..start + len` of the run; `None` when the run is
    /// shorter.
    fn range(&self, start: u64, len: u64) -> Option<Vec<(GuestAddress, usize)>> {
        if start.checked_add(len)? > self.len {
            return None;
        }
        let mut ranges = Vec::new();
        let (mut skip, mut left) = (start, len);
        for &(addr, size) in &self.parts {
            if left == 0 {
                break;
            }
            if skip >= size {
                skip -= size;
                continue;
            }
            let take = (size - skip).min(left);
            ranges.push((addr.checked_add(skip)?, usize::try_from(take).ok()?));
            left -= take;
            skip = 0;
        }
        Some(ranges)
    }

    /// Reads bytes `start..start + out.len()` of the run into `out`.
    fn read(&self, memory: &GuestRam, start: u64, out: &mut [u8]) -> Option<()> {
        let mut at = 0;
        for (addr, size) in self.range(start, out.len() as u64)? {
            memory.read_slice(&mut out[at..at + size], addr).ok()?;
            at += size;
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, SeekFrom, Write};
    use std::os::unix::fs::MetadataExt;
    use std::path::Path;
    use virtio_bindings::virtio_ring::{VRING_DESC_F_NEXT, VRING_DESC_F_WRITE};
    use virtio_queue::desc::RawDescriptor;
    use virtio_queue::mock::MockSplitQueue;
    use vmm_sys_util::eventfd::EventFd;

    const QUEUE: u16 = 16;
    const HEADER: u64 = 0x10_0000;
    const DATA: u64 = 0x20_0000;
    const STATUS: u64 = 0x30_0000;

    /// A guest buffer of a request: address, length, written by the device.
    type Part = (u64, u32, bool);

    struct Setup {
        memory: GuestRam,
        /// Guest addresses of the queue's descriptor table, available and used rings.
        rings: (u64, u64, u64),
        block: Block,
        irq: EventFd,
        _dir: tempfile::TempDir,
        path: std::path::PathBuf,
    }

    /// A disk of `sectors` sectors, each filled with its own number, and its device started
    /// on a mock queue.
    fn setup(sectors: u64, read_only: bool) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk.img");
        let mut file = File::create(&path).unwrap();
        for sector in 0..sectors {
            file.write_all(&[sector as u8; SECTOR_SIZE as usize])
                .unwrap();
        }
        started(dir, path, read_only)
    }

    fn started(dir: tempfile::TempDir, path: std::path::PathBuf, read_only: bool) -> Setup {
        let disk = DiskConfig {
            path: path.clone(),
            read_only,
        };
        let block = Block::open(&disk, "vmc-vda").unwrap();
        let memory = GuestRam::from_ranges(&[(GuestAddress(0), 0x40_0000)]).unwrap();
        let irq = EventFd::new(libc::EFD_NONBLOCK).unwrap();
        let mock = MockSplitQueue::new(&memory, QUEUE);
        let rings = (
            mock.desc_table_addr().0,
            mock.avail_addr().0,
            mock.used_addr().0,
        );
        let queue = mock.create_queue::<Queue>().unwrap();
        let mut s = Setup {
            memory,
            rings,
            block,
            irq,
            _dir: dir,
            path,
        };
        s.block
            .activate(Activation {
                memory: s.memory.clone(),
                queues: vec![queue],
                interrupt: Arc::new(Interrupt::new(s.irq.try_clone().unwrap())),
                features: FEATURE_VERSION_1,
            })
            .unwrap();
        s
    }

    impl Setup {
        /// Makes one request of `parts` available, serves the queue, and returns the used
        /// length and the status byte.
        fn request(&mut self, parts: &[Part]) -> (u32, u8) {
            let slot = self.make_available(parts);
            self.block.process_queue();
            answer(&self.memory, self.rings.2, slot)
        }

        /// Writes a request of `parts` into the queue; returns its ring slot.
        fn make_available(&self, parts: &[Part]) -> u16 {
            let (table, avail, _) = self.rings;
            let descriptors: Vec<RawDescriptor> = parts
                .iter()
                .enumerate()
                .map(|(i, &(addr, len, write))| {
                    let mut flags = if write { VRING_DESC_F_WRITE as u16 } else { 0 };
                    if i + 1 < parts.len() {
                        flags |= VRING_DESC_F_NEXT as u16;
                    }
                    Descriptor::new(addr, len, flags, i as u16 + 1).into()
                })
                .collect();
            for (i, descriptor) in descriptors.into_iter().enumerate() {
                let at = GuestAddress(table + 16 * i as u64);
                self.memory.write_obj(descriptor, at).unwrap();
            }
            // Head 0 into the next available slot, then the new available index.
            let avail_index: u16 = self.memory.read_obj(GuestAddress(avail + 2)).unwrap();
            let slot = avail + 4 + 2 * u64::from(avail_index % QUEUE);
            self.memory.write_obj(0u16, GuestAddress(slot)).unwrap();
            let next = avail_index.wrapping_add(1);
            self.memory
                .write_obj(next, GuestAddress(avail + 2))
                .unwrap();
            self.memory.write_obj(0xffu8, GuestAddress(STATUS)).unwrap();
            avail_index
        }

        fn header(&self, kind: u32, sector: u64) {
            let mut header = [0u8; HEADER_SIZE];
            header[0..4].copy_from_slice(&kind.to_le_bytes());
            header[8..16].copy_from_slice(&sector.to_le_bytes());
            self.memory
                .write_slice(&header, GuestAddress(HEADER))
                .unwrap();
        }

        fn guest_bytes(&self, addr: u64, len: usize) -> Vec<u8> {
            let mut bytes = vec![0; len];
            self.memory
                .read_slice(&mut bytes, GuestAddress(addr))
                .unwrap();
            bytes
        }

        fn file_sector(&self, sector: u64) -> Vec<u8> {
            read_sector(&self.path, sector)
        }
    }

    /// The used length and status byte of the request in ring slot `slot`.
    fn answer(memory: &GuestRam, used: u64, slot: u16) -> (u32, u8) {
        let used_index: u16 = memory.read_obj(GuestAddress(used + 2)).unwrap();
        assert_eq!(
            used_index,
            slot.wrapping_add(1),
            "one used entry per request"
        );
        let element = used + 4 + 8 * u64::from(slot % QUEUE);
        let len: u32 = memory.read_obj(GuestAddress(element + 4)).unwrap();
        let status: u8 = memory.read_obj(GuestAddress(STATUS)).unwrap();
        (len, status)
    }

    fn read_sector(path: &Path, sector: u64) -> Vec<u8> {
        let mut file = File::open(path).unwrap();
        file.seek(SeekFrom::Start(sector * SECTOR_SIZE)).unwrap();
        let mut bytes = vec![0; SECTOR_SIZE as usize];
        file.read_exact(&mut bytes).unwrap();
        bytes
    }

    const OK: u8 = VIRTIO_BLK_S_OK as u8;
    const IOERR: u8 = VIRTIO_BLK_S_IOERR as u8;

    #[test]
    fn reads_land_in_guest_memory_and_raise_the_interrupt() {
        let mut s = setup(4, true);
        s.header(VIRTIO_BLK_T_IN, 1);
        let (len, status) =
            s.request(&[(HEADER, 16, false), (DATA, 1024, true), (STATUS, 1, true)]);
        assert_eq!((len, status), (1025, OK));
        assert_eq!(s.guest_bytes(DATA, 512), vec![1; 512]);
        assert_eq!(s.guest_bytes(DATA + 512, 512), vec![2; 512]);
        assert_eq!(s.irq.read().unwrap(), 1, "the used-buffer interrupt");
    }

    #[test]
    fn any_descriptor_layout_is_served() {
        let mut s = setup(4, true);
        s.header(VIRTIO_BLK_T_IN, 2);
        // Header in two pieces, data in three (one of them odd-sized), status after the data
        // in the same writable run.
        let parts = [
            (HEADER, 5, false),
            (HEADER + 5, 11, false),
            (DATA, 100, true),
            (DATA + 0x1000, 412, true),
            (DATA + 0x2000, 512, true),
            (STATUS, 1, true),
        ];
        assert_eq!(s.request(&parts), (1025, OK));
        assert_eq!(s.guest_bytes(DATA, 100), vec![2; 100]);
        assert_eq!(s.guest_bytes(DATA + 0x1000, 412), vec![2; 412]);
        assert_eq!(s.guest_bytes(DATA + 0x2000, 512), vec![3; 512]);
    }

    #[test]
    fn writes_reach_the_file() {
        let mut s = setup(4, false);
        s.memory
            .write_slice(&[0xab; 512], GuestAddress(DATA))
            .unwrap();
        s.header(VIRTIO_BLK_T_OUT, 3);
        let (len, status) =
            s.request(&[(HEADER, 16, false), (DATA, 512, false), (STATUS, 1, true)]);
        assert_eq!((len, status), (1, OK));
        assert_eq!(s.file_sector(3), vec![0xab; 512]);
        assert_eq!(s.file_sector(2), vec![2; 512]);
        s.header(VIRTIO_BLK_T_FLUSH, 0);
        assert_eq!(
            s.request(&[(HEADER, 16, false), (STATUS, 1, true)]),
            (1, OK)
        );
    }

    #[test]
    fn a_read_only_disk_refuses_writes() {
        let mut s = setup(4, true);
        assert_ne!(s.block.features() & 1 << VIRTIO_BLK_F_RO, 0);
        s.memory
            .write_slice(&[0xab; 512], GuestAddress(DATA))
            .unwrap();
        s.header(VIRTIO_BLK_T_OUT, 0);
        let (_, status) = s.request(&[(HEADER, 16, false), (DATA, 512, false), (STATUS, 1, true)]);
        assert_eq!(status, IOERR);
        assert_eq!(s.file_sector(0), vec![0; 512], "the file is unchanged");
        assert_eq!(setup(1, false).block.features() & 1 << VIRTIO_BLK_F_RO, 0);
    }

    #[test]
    fn requests_beyond_the_disk_or_malformed_fail() {
        let mut s = setup(4, true);
        s.header(VIRTIO_BLK_T_IN, 3);
        let read = [(HEADER, 16, false), (DATA, 1024, true), (STATUS, 1, true)];
        assert_eq!(s.request(&read), (1, IOERR), "sectors 3 and 4 of 4");
        s.header(VIRTIO_BLK_T_IN, u64::MAX);
        assert_eq!(s.request(&read), (1, IOERR), "an overflowing sector");
        s.header(VIRTIO_BLK_T_IN, 0);
        let partial = [(HEADER, 16, false), (DATA, 100, true), (STATUS, 1, true)];
        assert_eq!(s.request(&partial), (1, IOERR), "not whole sectors");
        assert_eq!(
            s.request(&[(HEADER, 8, false), (STATUS, 1, true)]).1,
            IOERR,
            "short header"
        );
        let outside = [
            (HEADER, 16, false),
            (0x1000_0000, 512, true),
            (STATUS, 1, true),
        ];
        assert_eq!(
            s.request(&outside),
            (1, IOERR),
            "a buffer outside guest RAM"
        );
        s.header(11, 0);
        assert_eq!(
            s.request(&[(HEADER, 16, false), (STATUS, 1, true)]),
            (1, VIRTIO_BLK_S_UNSUPP as u8),
            "DISCARD is not offered"
        );
    }

    #[test]
    fn get_id_returns_the_serial() {
        let mut s = setup(1, true);
        s.header(VIRTIO_BLK_T_GET_ID, 0);
        let (len, status) = s.request(&[(HEADER, 16, false), (DATA, 20, true), (STATUS, 1, true)]);
        assert_eq!((len, status), (21, OK));
        assert_eq!(
            s.guest_bytes(DATA, 20),
            b"vmc-vda\0\0\0\0\0\0\0\0\0\0\0\0\0"
        );
    }

    #[test]
    fn a_sparse_disk_stays_sparse() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scratch.img");
        File::create(&path).unwrap().set_len(1 << 30).unwrap();
        let mut s = started(dir, path.clone(), false);
        assert_eq!(s.block.capacity_bytes(), 1 << 30);
        s.memory
            .write_slice(&[7; 4096], GuestAddress(DATA))
            .unwrap();
        let last = (1 << 30) / SECTOR_SIZE - 8;
        s.header(VIRTIO_BLK_T_OUT, last);
        let write = [(HEADER, 16, false), (DATA, 4096, false), (STATUS, 1, true)];
        assert_eq!(s.request(&write), (1, OK));
        assert_eq!(read_sector(&path, last + 7), vec![7; 512]);
        let allocated = std::fs::metadata(&path).unwrap().blocks() * 512;
        assert!(
            allocated <= 64 << 10,
            "{allocated} bytes allocated for a 4 KiB write"
        );
    }

    #[test]
    fn config_space_has_capacity_and_limits() {
        let s = setup(2048 + 1, true);
        let mut config = [0xffu8; 24];
        s.block.read_config(0, &mut config);
        assert_eq!(u64::from_le_bytes(config[0..8].try_into().unwrap()), 2049);
        assert_eq!(
            u32::from_le_bytes(config[8..12].try_into().unwrap()),
            SIZE_MAX
        );
        assert_eq!(
            u32::from_le_bytes(config[12..16].try_into().unwrap()),
            SEG_MAX
        );
        assert_eq!(config[16..], [0; 8], "geometry, blk_size: not offered");
        let mut capacity_high = [0u8; 4];
        s.block.read_config(4, &mut capacity_high);
        assert_eq!(capacity_high, [0; 4]);
        let offered = s.block.features();
        for bit in [
            VIRTIO_BLK_F_SEG_MAX,
            VIRTIO_BLK_F_SIZE_MAX,
            VIRTIO_BLK_F_FLUSH,
        ] {
            assert_ne!(offered & 1 << bit, 0, "feature bit {bit}");
        }
        assert_ne!(offered & FEATURE_VERSION_1, 0);
    }

    #[test]
    fn a_missing_or_odd_disk_file_is_one_line_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let missing = DiskConfig {
            path: dir.path().join("nope.img"),
            read_only: true,
        };
        let Err(err) = Block::open(&missing, "x") else {
            panic!("opened a missing disk");
        };
        let text = err.to_string();
        assert!(
            text.starts_with(&format!("cannot open disk {}: ", missing.path.display())),
            "{text}"
        );
        assert!(!text.contains('\n'));
        let directory = DiskConfig {
            path: dir.path().to_path_buf(),
            read_only: true,
        };
        let Err(err) = Block::open(&directory, "x") else {
            panic!("opened a directory as a disk");
        };
        assert!(err.to_string().contains("not a regular file"), "{err}");
    }

    #[test]
    fn the_event_loop_serves_a_notified_queue() {
        use crate::devices::event_loop::EventLoop;
        let s = setup(2, true);
        s.header(VIRTIO_BLK_T_IN, 1);
        let slot = s.make_available(&[(HEADER, 16, false), (DATA, 512, true), (STATUS, 1, true)]);
        let notify = s.block.queue_events().get(0).unwrap().try_clone().unwrap();
        let block = Arc::new(std::sync::Mutex::new(s.block));
        let mut event_loop = EventLoop::new().unwrap();
        event_loop.add(block.clone());
        let running = event_loop.start(None, |err| panic!("{err}")).unwrap();
        notify.write(1).unwrap();
        let mut poll = libc::pollfd {
            fd: s.irq.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: polls one valid descriptor for at most 5 s.
        let ready = unsafe { libc::poll(&mut poll, 1, 5000) };
        running.stop();
        assert_eq!(ready, 1, "the interrupt was raised");
        assert_eq!(answer(&s.memory, s.rings.2, slot), (513, OK));
        let mut data = [0u8; 512];
        s.memory.read_slice(&mut data, GuestAddress(DATA)).unwrap();
        assert_eq!(data, [1; 512]);
    }

    #[test]
    fn a_reset_device_serves_nothing() {
        let mut s = setup(1, true);
        s.block.reset();
        s.block.process_queue();
        assert!(s.irq.read().is_err(), "no interrupt from a reset device");
    }
}
