//! virtio devices, one module each.

pub mod vsock;
