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
    /// A worker's call panicked during the current job.
    panicked: AtomicBool,
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
            panicked: AtomicBool::new(false),
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
    /// when all have returned. Calls from several threads are serialized. A
    /// panic in any `f(i)` is caught where it happens; the first one is
    /// re-raised here after every worker has finished with `f`.
    pub(crate) fn run(&self, f: &(dyn Fn(usize) + Sync)) {
        if self.n == 1 {
            f(0);
            return;
        }
        let _serial = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: the lifetime-erased reference is published in `job` below and
        // only dereferenced by workers between the epoch increment and their
        // `done` increment (workers catch panics, so they always increment).
        // `Finish`'s destructor — which runs on normal return *and* while
        // unwinding from a panic in `f(0)` — waits for all `n - 1` increments
        // and then clears the slot, so no worker can reach `f` after this
        // function returns or unwinds, and `f` outlives every use.
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
        let finish = Finish {
            inner: &self.inner,
            workers: self.n - 1,
        };
        f(0);
        drop(finish);
        if self.inner.panicked.swap(false, Ordering::AcqRel) {
            std::panic::resume_unwind(std::boxed::Box::new("a pool worker panicked"));
        }
    }
}

/// Waits for every worker of the current epoch and clears the job slot, also
/// when dropped during unwinding.
struct Finish<'a> {
    inner: &'a Inner,
    workers: usize,
}

impl Drop for Finish<'_> {
    fn drop(&mut self) {
        // spin briefly, then yield: on a loaded machine a descheduled worker
        // must get the core back rather than watch us spin
        let mut spins = 0u32;
        while self.inner.done.load(Ordering::Acquire) < self.workers {
            if spins < 2000 {
                spins += 1;
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
        let mut polls = 0u32;
        loop {
            if inner.stop.load(Ordering::Acquire) {
                return;
            }
            let e = inner.epoch.load(Ordering::Acquire);
            if e != seen {
                seen = e;
                break;
            }
            // read the clock once per 64 polls only (it showed in profiles)
            polls = polls.wrapping_add(1);
            if polls % 64 != 0 {
                std::hint::spin_loop();
                continue;
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
            // a panic must not skip the `done` increment below (the caller
            // waits for it); it is reported to the caller instead
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(i))).is_err() {
                inner.panicked.store(true, Ordering::Release);
            }
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

    /// A panic in the caller's share (`f(0)`) or a worker's unwinds out of
    /// `run` only after every worker is done with `f`; the pool stays usable.
    #[test]
    fn run_is_sound_under_panics() {
        let prev = std::panic::take_hook();
        std::panic::set_hook(std::boxed::Box::new(|_| {}));
        let pool = Pool::new(3);
        for bad in 0..3 {
            let finished = AtomicUsize::new(0);
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                pool.run(&|i| {
                    if i == bad {
                        panic!("boom");
                    }
                    std::thread::sleep(Duration::from_millis(5));
                    finished.fetch_add(1, Ordering::SeqCst);
                })
            }));
            assert!(r.is_err(), "the panic of f({bad}) reaches the caller");
            // both other calls completed before `run` unwound
            assert_eq!(finished.load(Ordering::SeqCst), 2);
        }
        std::panic::set_hook(prev);
        let hits = AtomicUsize::new(0);
        pool.run(&|_| {
            hits.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(hits.load(Ordering::SeqCst), 3);
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
