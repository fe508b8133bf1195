//! The guest kernel's drivers a run needs, and how the init names those it lacks
//! ([`WorkloadStatus::KernelLacks`](crate::exit_device::WorkloadStatus::KernelLacks)): a kernel
//! built without one would otherwise fail deep in the boot with an error far from its cause.

/// A driver (or filesystem) of the guest kernel that VM mode needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum GuestDriver {
    /// The virtio-mmio transport every device sits on.
    VirtioMmio = 1 << 0,
    /// virtio-blk: the image's and the scratch disk.
    VirtioBlk = 1 << 1,
    /// erofs: the image's disk.
    Erofs = 1 << 2,
    /// ext4: the scratch disk.
    Ext4 = 1 << 3,
    /// overlayfs: the writable layer over the image.
    Overlay = 1 << 4,
    /// virtio-vsock: the host↔guest channel.
    Vsock = 1 << 5,
}

impl GuestDriver {
    /// Every driver, in the order they are named.
    pub const ALL: [GuestDriver; 6] = [
        Self::VirtioMmio,
        Self::VirtioBlk,
        Self::Erofs,
        Self::Ext4,
        Self::Overlay,
        Self::Vsock,
    ];

    /// The kernel configuration options that build it in.
    pub fn config_options(self) -> &'static str {
        match self {
            Self::VirtioMmio => "CONFIG_VIRTIO_MMIO",
            Self::VirtioBlk => "CONFIG_VIRTIO_BLK",
            Self::Erofs => "CONFIG_EROFS_FS",
            Self::Ext4 => "CONFIG_EXT4_FS",
            Self::Overlay => "CONFIG_OVERLAY_FS",
            Self::Vsock => "CONFIG_VSOCKETS/CONFIG_VIRTIO_VSOCKETS",
        }
    }
}

/// A set of [`GuestDriver`]s (the ones a guest kernel lacks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MissingDrivers(u8);

impl MissingDrivers {
    /// The set of the drivers whose bits are in `bits` (other bits are ignored).
    pub fn from_bits(bits: u8) -> Self {
        let known = GuestDriver::ALL.iter().fold(0, |all, d| all | *d as u8);
        Self(bits & known)
    }

    /// The set as bits (one per [`GuestDriver`]).
    pub fn bits(self) -> u8 {
        self.0
    }

    /// Adds `driver`.
    pub fn insert(&mut self, driver: GuestDriver) {
        self.0 |= driver as u8;
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The drivers in the set.
    pub fn iter(self) -> impl Iterator<Item = GuestDriver> {
        GuestDriver::ALL
            .into_iter()
            .filter(move |driver| self.0 & *driver as u8 != 0)
    }

    /// Their configuration options, comma-separated.
    pub fn config_options(self) -> String {
        self.iter()
            .map(GuestDriver::config_options)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_names_its_options_in_order_and_drops_unknown_bits() {
        let mut missing = MissingDrivers::default();
        assert!(missing.is_empty());
        missing.insert(GuestDriver::Vsock);
        missing.insert(GuestDriver::Erofs);
        assert_eq!(
            missing.config_options(),
            "CONFIG_EROFS_FS, CONFIG_VSOCKETS/CONFIG_VIRTIO_VSOCKETS"
        );
        assert_eq!(MissingDrivers::from_bits(0xff).bits(), 0x3f);
        assert_eq!(MissingDrivers::from_bits(missing.bits()), missing);
    }
}
