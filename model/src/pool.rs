//! A small persistent thread pool for the fork-join of every linear layer
//! (feature `std`). A linear layer of a decode step takes tens of
//! microseconds, so spawning threads per call (also tens of microseconds)
//! would cost as much as the work; these workers spin briefly, then sleep.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use std::vec::Vec;

type Job = dyn Fn(usize) + Sync;

struct Inner {
    /// Incremented once per job; workers run each new epoch once.
    epoch: AtomicUsize,
    /// Workers finished with the current epoch.
    done: AtomicUsize,
    stop: AtomicBool,
    /// The current job, lifetime-erased; valid while `run` is executing.
    job: Mutex<Option<&'static Job>>,
    wake: Condvar,
    sleepers: Mutex<()>,
}

/// `n` threads in all: the caller plus `n - 1` workers.
pub struct Pool {
    n: usize,
    inner: Arc<Inner>,
    handles: Vec<JoinHandle<()>>,
    busy: Mutex<()>,
}

const SPIN: Duration = Duration::from_micros(200);

impl Pool {
    /// A pool of `n >= 1` threads (the caller counts as one).
    pub fn new(n: usize) -> Self {
        let n = n.max(1);
        let inner = Arc::new(Inner {
            epoch: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            job: Mutex::new(None),
            wake: Condvar::new(),
            sleepers: Mutex::new(()),
        });
        let handles = (1..n)
            .map(|i| {
                let inner = Arc::clone(&inner);
                std::thread::Builder::new()
                    .name(std::format!("edq-worker-{i}"))
                    .spawn(move || worker(i, &inner))
                    .expect("spawn worker thread")
            })
            .collect();
        Self {
            n,
            inner,
            handles,
            busy: Mutex::new(()),
        }
    }

    /// Threads in the pool.
    pub fn threads(&self) -> usize {
        self.n
    }

    /// Runs `f(0..n)`: `f(0)` on the caller, the others on the workers; returns
    /// when all have returned. Calls from several threads are serialized.
    pub fn run(&self, f: &(dyn Fn(usize) + Sync)) {
        if self.n == 1 {
            f(0);
            return;
        }
        let _guard = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: the reference is only used by workers between the epoch
        // increment below and their `done` increment, and this function does
        // not return (and so `f` stays alive) until every worker has
        // incremented `done` and the job slot has been cleared.
        let erased: &'static Job =
            unsafe { std::mem::transmute::<&(dyn Fn(usize) + Sync), &'static Job>(f) };
        *self.inner.job.lock().unwrap_or_else(|e| e.into_inner()) = Some(erased);
        self.inner.done.store(0, Ordering::SeqCst);
        self.inner.epoch.fetch_add(1, Ordering::SeqCst);
        {
            let _l = self
                .inner
                .sleepers
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            self.inner.wake.notify_all();
        }
        f(0);
        // spin briefly, then yield: on a loaded machine a descheduled worker
        // must get the core back rather than watch us spin
        let start = Instant::now();
        while self.inner.done.load(Ordering::Acquire) < self.n - 1 {
            if start.elapsed() < Duration::from_micros(20) {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        *self.inner.job.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

impl Pool {
    /// Runs `f(i)` for `i in 0..n` (`n` at most the thread count; more are
    /// run in turn) and returns the results in order. `None` for an index
    /// whose call panicked (a bug: kernels report errors as values).
    pub fn map<T: Send>(&self, n: usize, f: &(dyn Fn(usize) -> T + Sync)) -> Vec<Option<T>> {
        let slots: Vec<Mutex<Option<T>>> = (0..n).map(|_| Mutex::new(None)).collect();
        let threads = self.n;
        let job = |w: usize| {
            let mut i = w;
            while i < n {
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(i))).ok();
                *slots[i].lock().unwrap_or_else(|e| e.into_inner()) = r;
                i += threads;
            }
        };
        if n <= 1 {
            job(0);
        } else {
            self.run(&job);
        }
        slots
            .into_iter()
            .map(|s| s.into_inner().unwrap_or_else(|e| e.into_inner()))
            .collect()
    }
}

fn worker(i: usize, inner: &Inner) {
    let mut seen = 0usize;
    loop {
        // wait for a new epoch: spin first, then sleep
        let start = Instant::now();
        loop {
            if inner.stop.load(Ordering::Acquire) {
                return;
            }
            let e = inner.epoch.load(Ordering::Acquire);
            if e != seen {
                seen = e;
                break;
            }
            let waited = start.elapsed();
            if waited < SPIN / 4 {
                std::hint::spin_loop();
            } else if waited < SPIN {
                std::thread::yield_now();
            } else {
                let g = inner.sleepers.lock().unwrap_or_else(|e| e.into_inner());
                if inner.epoch.load(Ordering::Acquire) == seen
                    && !inner.stop.load(Ordering::Acquire)
                {
                    let _ = inner.wake.wait_timeout(g, Duration::from_millis(50));
                }
            }
        }
        let job = *inner.job.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = job {
            f(i);
        }
        inner.done.fetch_add(1, Ordering::Release);
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.inner.stop.store(true, Ordering::Release);
        {
            let _l = self
                .inner
                .sleepers
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            self.inner.wake.notify_all();
        }
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_keeps_order_and_survives_a_panicking_call() {
        let pool = Pool::new(2);
        for n in [0, 1, 2, 5] {
            let r = pool.map(n, &|i| i * 10);
            assert_eq!(r, (0..n).map(|i| Some(i * 10)).collect::<Vec<_>>());
        }
        let prev = std::panic::take_hook();
        std::panic::set_hook(std::boxed::Box::new(|_| {}));
        let r = pool.map(3, &|i| if i == 1 { panic!("boom") } else { i });
        std::panic::set_hook(prev);
        assert_eq!(r, std::vec![Some(0), None, Some(2)]);
        assert_eq!(pool.map(2, &|i| i + 1), std::vec![Some(1), Some(2)]);
    }

    #[test]
    fn every_index_runs_once_per_call() {
        for n in [1, 2, 3, 5] {
            let pool = Pool::new(n);
            for round in 0..200 {
                let hits: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
                pool.run(&|i| {
                    hits[i].fetch_add(round + 1, Ordering::Relaxed);
                });
                for h in &hits {
                    assert_eq!(h.load(Ordering::Relaxed), round + 1);
                }
                if round == 100 {
                    std::thread::sleep(Duration::from_millis(2)); // let workers fall asleep
                }
            }
        }
    }
}
