//! The device bus: which device answers a guest access to an I/O port or an MMIO address.
//!
//! Every device the VMM emulates implements [`BusDevice`] and is inserted at a range of one
//! of the two address spaces ([`Space::Pio`], the x86 I/O ports; [`Space::Mmio`], guest
//! physical addresses outside RAM). The vCPU threads share one [`Bus`] (built before the
//! guest runs, never changed afterwards) and hand it every port and MMIO exit; each device
//! sits behind its own mutex, so vCPUs touching different devices do not wait for each other.

use crate::devices::exit_device::ExitDeviceEvent;
use crate::error::VmError;
use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};

/// The two address spaces a device can live in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Space {
    /// x86 I/O ports (`in`/`out`).
    Pio,
    /// Guest physical addresses that are not RAM (memory-mapped I/O).
    Mmio,
}

impl Space {
    /// How error messages name the space.
    fn label(self) -> &'static str {
        match self {
            Space::Pio => "I/O port",
            Space::Mmio => "MMIO",
        }
    }
}

/// What a write means for the VM beyond the device's own state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusEffect {
    /// Nothing beyond the device.
    None,
    /// No device lives at the address.
    Unclaimed,
    /// The guest asked for a CPU reset (i8042): the VM ends.
    Reset,
    /// The exit device reported something.
    Exit(ExitDeviceEvent),
}

/// A device on the bus. Offsets are relative to the start of the range it was inserted at.
pub trait BusDevice: Send {
    /// Handles a guest read of `data.len()` bytes at `offset`, filling `data`.
    fn read(&mut self, offset: u64, data: &mut [u8]);

    /// Handles a guest write of `data` at `offset`. An error is a host failure (e.g. the
    /// console's output cannot be written) that ends the VM.
    fn write(&mut self, offset: u64, data: &[u8]) -> io::Result<BusEffect>;
}

/// A device shared between the bus and whoever else drives it (e.g. a UART's input thread).
pub type SharedDevice = Arc<Mutex<dyn BusDevice>>;

/// One device's range.
struct Slot {
    len: u64,
    device: SharedDevice,
}

/// The VM's devices by address space and range.
#[derive(Default)]
pub struct Bus {
    pio: BTreeMap<u64, Slot>,
    mmio: BTreeMap<u64, Slot>,
}

impl Bus {
    /// Inserts `device` at `base..base + len` of `space`; fails if the range is empty or
    /// overlaps a device already there.
    pub fn insert(
        &mut self,
        space: Space,
        base: u64,
        len: u64,
        device: SharedDevice,
    ) -> Result<(), VmError> {
        let conflict = || VmError::DeviceConflict {
            space: space.label(),
            base,
            len,
        };
        let end = base
            .checked_add(len)
            .filter(|_| len > 0)
            .ok_or_else(conflict)?;
        let map = self.map_mut(space);
        let before = map.range(..end).next_back();
        if before.is_some_and(|(start, slot)| start + slot.len > base) {
            return Err(conflict());
        }
        map.insert(base, Slot { len, device });
        Ok(())
    }

    /// Handles a guest read at `addr` of `space`; returns whether a device answered.
    /// Unanswered, `data` is left as it was.
    pub fn read(&self, space: Space, addr: u64, data: &mut [u8]) -> bool {
        match self.find(space, addr) {
            Some((offset, device)) => {
                lock(device).read(offset, data);
                true
            }
            None => false,
        }
    }

    /// Handles a guest write at `addr` of `space` ([`BusEffect::Unclaimed`] when no device
    /// lives there).
    pub fn write(&self, space: Space, addr: u64, data: &[u8]) -> io::Result<BusEffect> {
        match self.find(space, addr) {
            Some((offset, device)) => lock(device).write(offset, data),
            None => Ok(BusEffect::Unclaimed),
        }
    }

    /// The device whose range holds `addr`, and the offset of `addr` in it.
    fn find(&self, space: Space, addr: u64) -> Option<(u64, &SharedDevice)> {
        let (base, slot) = self.map(space).range(..=addr).next_back()?;
        let offset = addr - base;
        (offset < slot.len).then_some((offset, &slot.device))
    }

    fn map(&self, space: Space) -> &BTreeMap<u64, Slot> {
        match space {
            Space::Pio => &self.pio,
            Space::Mmio => &self.mmio,
        }
    }

    fn map_mut(&mut self, space: Space) -> &mut BTreeMap<u64, Slot> {
        match space {
            Space::Pio => &mut self.pio,
            Space::Mmio => &mut self.mmio,
        }
    }
}

/// Locks a device, going on after a panic of another thread that held it.
fn lock(device: &SharedDevice) -> std::sync::MutexGuard<'_, dyn BusDevice + 'static> {
    device.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Remembers the last access.
    #[derive(Default)]
    struct Recorder {
        last: Option<(u64, Vec<u8>)>,
    }

    impl BusDevice for Recorder {
        fn read(&mut self, offset: u64, data: &mut [u8]) {
            data.fill(offset as u8);
        }

        fn write(&mut self, offset: u64, data: &[u8]) -> io::Result<BusEffect> {
            self.last = Some((offset, data.to_vec()));
            Ok(BusEffect::None)
        }
    }

    #[test]
    fn accesses_reach_the_device_at_their_offset() {
        let device = Arc::new(Mutex::new(Recorder::default()));
        let mut bus = Bus::default();
        bus.insert(Space::Mmio, 0x1000, 0x100, device.clone())
            .unwrap();
        let mut data = [0u8; 4];
        assert!(bus.read(Space::Mmio, 0x1010, &mut data));
        assert_eq!(data, [0x10; 4]);
        assert_eq!(
            bus.write(Space::Mmio, 0x10ff, &[7]).unwrap(),
            BusEffect::None
        );
        assert_eq!(device.lock().unwrap().last, Some((0xff, vec![7])));
    }

    #[test]
    fn addresses_outside_every_range_are_unclaimed() {
        let mut bus = Bus::default();
        bus.insert(
            Space::Pio,
            0x3f8,
            8,
            Arc::new(Mutex::new(Recorder::default())),
        )
        .unwrap();
        let mut data = [0xaa];
        assert!(!bus.read(Space::Pio, 0x400, &mut data));
        assert!(!bus.read(Space::Pio, 0x3f7, &mut data));
        assert_eq!(data, [0xaa], "an unanswered read leaves the data alone");
        assert!(
            !bus.read(Space::Mmio, 0x3f8, &mut data),
            "the spaces are apart"
        );
        assert_eq!(
            bus.write(Space::Pio, 0x3f0, &[1]).unwrap(),
            BusEffect::Unclaimed
        );
    }

    #[test]
    fn overlapping_ranges_are_refused() {
        let mut bus = Bus::default();
        let device = || -> SharedDevice { Arc::new(Mutex::new(Recorder::default())) };
        bus.insert(Space::Mmio, 0x2000, 0x1000, device()).unwrap();
        for (base, len) in [
            (0x2800, 0x10),
            (0x1fff, 2),
            (0x1000, 0x2000),
            (0x2000, 0x1000),
        ] {
            let err = bus.insert(Space::Mmio, base, len, device()).unwrap_err();
            assert!(
                matches!(err, VmError::DeviceConflict { .. }),
                "{base:#x}+{len:#x}: {err}"
            );
        }
        bus.insert(Space::Mmio, 0x1000, 0x1000, device()).unwrap();
        bus.insert(Space::Mmio, 0x3000, 0x1000, device()).unwrap();
        assert!(
            bus.insert(Space::Mmio, 0x4000, 0, device()).is_err(),
            "empty range"
        );
        bus.insert(Space::Pio, 0x2000, 0x1000, device()).unwrap();
    }
}
