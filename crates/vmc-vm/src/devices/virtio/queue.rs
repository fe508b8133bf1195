//! The loop every device runs over a queue: take each descriptor chain the driver made
//! available, use it, put it in the used ring with the bytes written into it.

use virtio_queue::{DescriptorChain, Queue, QueueOwnedT, QueueT};
use vm_memory::GuestMemory;

/// What a device did with one descriptor chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainUse {
    /// Used: this many bytes were written into its device-writable buffers.
    Used(u32),
    /// Not used now (nothing to put in it yet): it stays the driver's, and the loop stops.
    Later,
}

/// Hands every chain available in `queue` to `serve` and puts it in the used ring as `serve`
/// says, until the queue is empty or `serve` keeps one for later; returns whether any chain
/// was used (the driver is then owed an interrupt). An error is a used ring the driver placed
/// outside guest memory.
pub fn serve_available<'m, M: GuestMemory>(
    queue: &mut Queue,
    memory: &'m M,
    mut serve: impl FnMut(DescriptorChain<&'m M>) -> ChainUse,
) -> Result<bool, virtio_queue::Error> {
    let mut used = false;
    while let Some(chain) = queue.pop_descriptor_chain(memory) {
        let head = chain.head_index();
        match serve(chain) {
            ChainUse::Used(written) => {
                queue.add_used(memory, head, written)?;
                used = true;
            }
            ChainUse::Later => {
                queue.go_to_previous_position();
                break;
            }
        }
    }
    Ok(used)
}
