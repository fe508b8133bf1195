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
            while let Some(chain) = active.queue.pop_descriptor_chain(memory) {
                let head = chain.head_index();
                let descriptors: Vec<Descriptor> = chain.collect();
                let written = disk.serve(memory, &descriptors);
                if active.queue.add_used(memory, head, written).is_err() {
                    return;
                }
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
