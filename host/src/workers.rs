//! Thread-per-core runtimes that run the VUs. Each VU, with the connections
//! and timers it creates, lives on one single-threaded tokio runtime, so a
//! request and its response never wake another thread (cross-thread
//! wake-ups cost more CPU than the HTTP exchange itself on loopback).

use std::future::Future;
use std::thread::JoinHandle;

use tokio::runtime::Handle;
use tokio::sync::oneshot;
use tokio::task::JoinHandle as TaskHandle;

/// A fixed set of single-threaded runtimes; VUs are spread by id.
#[derive(Debug)]
pub struct VuWorkers {
    handles: Vec<Handle>,
    shutdown: Vec<oneshot::Sender<()>>,
    threads: Vec<JoinHandle<()>>,
}

impl VuWorkers {
    /// One runtime per available core (at least one).
    pub fn per_core() -> std::io::Result<VuWorkers> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        VuWorkers::start(cores)
    }

    /// `count` runtimes, each on its own thread.
    pub fn start(count: usize) -> std::io::Result<VuWorkers> {
        let mut workers = VuWorkers {
            handles: Vec::new(),
            shutdown: Vec::new(),
            threads: Vec::new(),
        };
        for index in 0..count.max(1) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let (stop, stopped) = oneshot::channel::<()>();
            workers.handles.push(runtime.handle().clone());
            workers.shutdown.push(stop);
            workers.threads.push(
                std::thread::Builder::new()
                    .name(format!("horde-vu-{index}"))
                    .spawn(move || {
                        runtime.block_on(async {
                            let _ = stopped.await;
                        });
                        // Dropping the runtime here cancels what is left on it.
                    })?,
            );
        }
        Ok(workers)
    }

    /// The runtime of VU `vu_id`.
    pub fn handle(&self, vu_id: u32) -> &Handle {
        &self.handles[vu_id as usize % self.handles.len()]
    }

    /// Run `future` on VU `vu_id`'s runtime.
    pub fn spawn<F>(&self, vu_id: u32, future: F) -> TaskHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle(vu_id).spawn(in_vu(vu_id, future))
    }
}

/// `future`, run as VU `vu_id`'s (its new names count against its share:
/// [`crate::stats::CURRENT_VU`]).
pub fn in_vu<F: Future>(vu_id: u32, future: F) -> impl Future<Output = F::Output> {
    crate::stats::CURRENT_VU.scope(vu_id, future)
}

impl Drop for VuWorkers {
    fn drop(&mut self) {
        for stop in self.shutdown.drain(..) {
            let _ = stop.send(());
        }
        // The last holder may be a task on one of these threads (a VU cut
        // at the end): a thread cannot join itself, it ends on its own.
        let current = std::thread::current().id();
        for thread in self.threads.drain(..) {
            if thread.thread().id() != current {
                let _ = thread.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn vus_run_on_their_own_threads() {
        let workers = VuWorkers::start(2).unwrap();
        let name = || {
            std::thread::current()
                .name()
                .unwrap_or_default()
                .to_string()
        };
        let first = workers.spawn(1, async move { name() }).await.unwrap();
        let second = workers.spawn(2, async move { name() }).await.unwrap();
        let again = workers.spawn(3, async move { name() }).await.unwrap();
        assert_eq!(first, "horde-vu-1");
        assert_eq!(second, "horde-vu-0");
        assert_eq!(again, first);
    }
}
