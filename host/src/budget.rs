//! One VU's memory budget (`--max-vu-memory`): its instance's linear
//! memories plus the bytes the host holds on its behalf (request bodies,
//! messages and documents it is building, header sets), so a VU cannot grow
//! the host past its cap through a host call.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Most host resources (of any kind) one VU may hold at once; a guest that
/// asks for more traps and its instance is replaced (its resources freed).
/// Sockets have a lower cap ([`crate::caps::resources::MAX_SOCKETS`]) and
/// header sets count in the memory budget.
pub const MAX_RESOURCES: usize = 1_000_000;

/// Largest in-memory size of one wasi:http header set (`fields`), in bytes;
/// with [`MAX_RESOURCES`] it bounds what header sets can hold per VU.
pub const MAX_FIELDS_BYTES: usize = 64 * 1024;

/// A VU's memory budget, shared by its store's limiter and its capabilities.
#[derive(Debug)]
pub struct MemoryBudget {
    max: u64,
    /// Bytes of linear memory the instance has (all memories).
    linear: AtomicU64,
    /// Bytes the host holds for the VU.
    host: AtomicU64,
}

impl MemoryBudget {
    /// A budget of `max` bytes.
    pub fn new(max: u64) -> Arc<MemoryBudget> {
        Arc::new(MemoryBudget {
            max,
            linear: AtomicU64::new(0),
            host: AtomicU64::new(0),
        })
    }

    /// The budget in bytes.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// Bytes in use: linear memory plus what the host holds.
    pub fn used(&self) -> u64 {
        self.linear
            .load(Ordering::Relaxed)
            .saturating_add(self.host.load(Ordering::Relaxed))
    }

    /// A linear memory grows from `current` to `desired` bytes: true (and
    /// counted) when the budget allows it.
    pub fn grow_linear(&self, current: usize, desired: usize) -> bool {
        let more = desired.saturating_sub(current) as u64;
        self.take(&self.linear, more)
    }

    fn take(&self, counter: &AtomicU64, bytes: u64) -> bool {
        let mut ok = false;
        let _ = counter.fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
            let other = self.used().saturating_sub(now);
            let after = now.saturating_add(bytes);
            ok = other.saturating_add(after) <= self.max;
            ok.then_some(after)
        });
        ok
    }

    /// An empty hold of host memory, grown as bytes arrive and given back
    /// when dropped.
    pub fn hold(self: &Arc<Self>) -> HostHold {
        HostHold {
            budget: self.clone(),
            bytes: 0,
        }
    }
}

/// Host memory held for a VU; released on drop.
#[derive(Debug)]
pub struct HostHold {
    budget: Arc<MemoryBudget>,
    bytes: u64,
}

impl HostHold {
    /// Hold `bytes` more: false (nothing taken) when that would pass the budget.
    pub fn grow(&mut self, bytes: usize) -> bool {
        let bytes = bytes as u64;
        if self.budget.take(&self.budget.host, bytes) {
            self.bytes += bytes;
            true
        } else {
            false
        }
    }
}

impl HostHold {
    /// Hold exactly `bytes` (more or fewer than now): false (nothing
    /// changed) when more would pass the budget.
    pub fn set(&mut self, bytes: usize) -> bool {
        let bytes = bytes as u64;
        if bytes >= self.bytes {
            let more = usize::try_from(bytes - self.bytes).unwrap_or(usize::MAX);
            self.grow(more)
        } else {
            self.budget
                .host
                .fetch_sub(self.bytes - bytes, Ordering::AcqRel);
            self.bytes = bytes;
            true
        }
    }
}

impl Drop for HostHold {
    fn drop(&mut self) {
        self.budget.host.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_memory_and_host_holds_share_one_budget() {
        let budget = MemoryBudget::new(100);
        assert!(budget.grow_linear(0, 60));
        let mut hold = budget.hold();
        assert!(hold.grow(30));
        assert!(!hold.grow(20), "60 + 30 + 20 is over 100");
        assert!(!budget.grow_linear(60, 80), "70 + 30 is over 100");
        assert_eq!(budget.used(), 90);
        drop(hold);
        assert_eq!(budget.used(), 60);
        assert!(budget.grow_linear(60, 100));
        let budget = MemoryBudget::new(100);
        let mut hold = budget.hold();
        assert!(hold.set(80));
        assert!(!hold.set(120));
        assert!(hold.set(10));
        assert_eq!(budget.used(), 10);
    }
}
