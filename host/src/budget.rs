//! One VU's memory budget (`--max-vu-memory`): its instance's linear
//! memories and tables (from their initial sizes at instantiation) plus the
//! bytes the host holds on its behalf (request bodies, messages and
//! documents it is building, header sets), so a VU cannot grow the host past
//! its cap through a host call or a table; and the store's limiter that
//! holds the instance to it.

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

/// Host bytes each table element counts for in the budget. wasmtime stores
/// a funcref in 8 bytes (a GC reference in 4, a continuation in 16), and a
/// grown table's storage may have room for up to twice its elements; the
/// limiter is not told a table's element type, so every element counts 16.
pub const TABLE_ELEMENT_BYTES: u64 = 16;

/// A VU's memory budget, shared by its store's limiter and its capabilities.
#[derive(Debug)]
pub struct MemoryBudget {
    max: u64,
    /// Bytes of linear memory the instance has (all memories).
    linear: AtomicU64,
    /// Bytes the instance's tables take on the host (all tables, at
    /// [`TABLE_ELEMENT_BYTES`] an element).
    tables: AtomicU64,
    /// Bytes the host holds for the VU.
    host: AtomicU64,
}

impl MemoryBudget {
    /// A budget of `max` bytes.
    pub fn new(max: u64) -> Arc<MemoryBudget> {
        Arc::new(MemoryBudget {
            max,
            linear: AtomicU64::new(0),
            tables: AtomicU64::new(0),
            host: AtomicU64::new(0),
        })
    }

    /// The budget in bytes.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// Bytes in use: linear memory, tables and what the host holds.
    pub fn used(&self) -> u64 {
        self.linear
            .load(Ordering::Relaxed)
            .saturating_add(self.tables.load(Ordering::Relaxed))
            .saturating_add(self.host.load(Ordering::Relaxed))
    }

    /// Bytes the instance's tables take (at [`TABLE_ELEMENT_BYTES`] each).
    pub fn tables(&self) -> u64 {
        self.tables.load(Ordering::Relaxed)
    }

    /// A linear memory grows from `current` to `desired` bytes: true (and
    /// counted) when the budget allows it.
    pub fn grow_linear(&self, current: usize, desired: usize) -> bool {
        let more = desired.saturating_sub(current) as u64;
        self.take(&self.linear, more)
    }

    /// A table grows from `current` to `desired` elements (from 0 when it
    /// is created): true (and counted) when the budget allows it.
    pub fn grow_table(&self, current: usize, desired: usize) -> bool {
        let more = (desired.saturating_sub(current) as u64).saturating_mul(TABLE_ELEMENT_BYTES);
        self.take(&self.tables, more)
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

/// The store limiter of one VU: holds its linear memories and tables to
/// its [`MemoryBudget`], at instantiation (initial sizes) and as they grow.
/// Past the budget the instantiation fails, or the growing instruction
/// traps, with a message naming the budget and `--max-vu-memory`.
#[derive(Debug)]
pub struct MemoryCap {
    budget: Arc<MemoryBudget>,
}

impl MemoryCap {
    /// The limiter for `budget`.
    pub fn new(budget: Arc<MemoryBudget>) -> MemoryCap {
        MemoryCap { budget }
    }

    /// The budget it holds the instance to.
    pub fn budget(&self) -> &Arc<MemoryBudget> {
        &self.budget
    }
}

impl wasmtime::ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if !self.budget.grow_linear(current, desired) {
            return Err(wasmtime::format_err!(
                "the VU exceeded its memory limit: it asked for {} MiB of linear memory, the \
                 limit is {} MiB (with its tables and what the host holds for it: {} MiB in \
                 use; raise it with --max-vu-memory)",
                desired.div_ceil(1 << 20),
                self.budget.max() >> 20,
                self.budget.used().div_ceil(1 << 20)
            ));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if !self.budget.grow_table(current, desired) {
            let asked = (desired as u64).saturating_mul(TABLE_ELEMENT_BYTES);
            return Err(wasmtime::format_err!(
                "the VU exceeded its memory limit: a table of {desired} elements ({} MiB at \
                 {TABLE_ELEMENT_BYTES} bytes an element) does not fit; the limit is {} MiB \
                 (its tables: {} MiB, with its linear memory and what the host holds for it: \
                 {} MiB in use; raise it with --max-vu-memory)",
                asked.div_ceil(1 << 20),
                self.budget.max() >> 20,
                self.budget.tables().div_ceil(1 << 20),
                self.budget.used().div_ceil(1 << 20)
            ));
        }
        Ok(true)
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

    /// A store for `component` (WAT) held to a `max`-byte budget, and the
    /// instantiation's result.
    fn instantiate(
        max: u64,
        component: &str,
    ) -> (
        wasmtime::Store<MemoryCap>,
        wasmtime::Result<wasmtime::component::Instance>,
    ) {
        let engine = crate::engine::new_engine().unwrap();
        let component =
            wasmtime::component::Component::new(&engine, wat::parse_str(component).unwrap())
                .unwrap();
        let mut store = wasmtime::Store::new(&engine, MemoryCap::new(MemoryBudget::new(max)));
        store.limiter(|cap| cap);
        store.set_epoch_deadline(1);
        let instance =
            wasmtime::component::Linker::new(&engine).instantiate(&mut store, &component);
        (store, instance)
    }

    #[test]
    fn initial_tables_and_memories_count_at_instantiation() {
        let small = r#"(component (core module (memory 1) (table 1000 funcref) (table 24 funcref))
            (core instance (instantiate 0)))"#;
        let (store, instance) = instantiate(1 << 20, small);
        instance.unwrap();
        let budget = store.data().budget();
        assert_eq!(budget.tables(), 1024 * TABLE_ELEMENT_BYTES);
        assert_eq!(budget.used(), 65536 + 1024 * TABLE_ELEMENT_BYTES);
        // 3M elements are 48 MiB: over a 32 MiB budget before any code runs.
        let big =
            r#"(component (core module (table 3000000 funcref)) (core instance (instantiate 0)))"#;
        let (store, instance) = instantiate(32 << 20, big);
        let error = format!("{:#}", instance.unwrap_err());
        assert!(
            error.contains("exceeded its memory limit: a table of 3000000 elements (46 MiB"),
            "{error}"
        );
        assert!(error.contains("--max-vu-memory"), "{error}");
        assert_eq!(store.data().budget().used(), 0);
    }

    #[test]
    fn growing_tables_past_the_budget_traps() {
        // 40 tables grown by 1M elements each: 640 MiB counted, 320 MB of
        // host memory without the budget.
        let grows: String = (0..40)
            .map(|t| format!("(drop (table.grow {t} (ref.null func) (i32.const 1000000)))"))
            .collect();
        let tables = "(table 0 funcref)".repeat(40);
        let component = format!(
            r#"(component
                (core module $m {tables} (func (export "grow") {grows}))
                (core instance $i (instantiate $m))
                (func (export "grow") (canon lift (core func $i "grow"))))"#
        );
        let (mut store, instance) = instantiate(32 << 20, &component);
        let grow = instance
            .unwrap()
            .get_typed_func::<(), ()>(&mut store, "grow")
            .unwrap();
        let error = format!("{:#}", grow.call(&mut store, ()).unwrap_err());
        assert!(
            error.contains("exceeded its memory limit: a table of 1000000 elements"),
            "{error}"
        );
        // Two tables of 16 MB fitted in 32 MiB; the third did not.
        assert_eq!(
            store.data().budget().tables(),
            2 * 1_000_000 * TABLE_ELEMENT_BYTES
        );
    }
}
