//! The file I/O pool: a few threads per controller that do the namespace
//! file's `pread`/`pwrite`/`fdatasync`/hole punching, so that one slow
//! request never stalls the queue behind it and never blocks the engine
//! thread (let alone a vCPU). The pool touches only the namespace file and
//! its own buffers: every DMA stays on the engine thread, which gathers a
//! write's data before it submits the job and scatters a read's data after
//! the job is done. Jobs finish in any order; each wakes the engine
//! through its [`Notifier`].

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use pcie_core::{DmaMap, Notifier};

use crate::namespace::Namespace;

/// Threads per controller with a file-backed namespace.
pub(crate) const WORKERS: usize = 4;

/// Jobs one controller keeps in flight at most; the engine stops fetching
/// commands for file namespaces beyond that (bounds the buffers a guest
/// can make the VMM hold to `MAX_IN_FLIGHT × MAX_TRANSFER`).
pub(crate) const MAX_IN_FLIGHT: usize = 64;

/// What a job does.
#[derive(Debug)]
pub(crate) enum Op {
    /// Fill `buf` from byte `offset`.
    Read {
        ns: Arc<Namespace>,
        offset: u64,
        buf: Vec<u8>,
    },
    /// Write `data` (gathered by the engine) at byte `offset`; with
    /// `sync` (Force Unit Access, or no volatile write cache), then
    /// `fdatasync`.
    Write {
        ns: Arc<Namespace>,
        offset: u64,
        data: Vec<u8>,
        sync: bool,
    },
    /// Read into mapped memory from byte `offset` (mapped DMA).
    ReadInto {
        ns: Arc<Namespace>,
        offset: u64,
        map: DmaMap,
    },
    /// Write mapped memory at byte `offset`, then `fdatasync` if `sync`.
    WriteFrom {
        ns: Arc<Namespace>,
        offset: u64,
        map: DmaMap,
        sync: bool,
    },
    /// `fdatasync` every namespace.
    Flush(Vec<Arc<Namespace>>),
    /// Zero (deallocate) these byte ranges.
    Zero {
        ns: Arc<Namespace>,
        ranges: Vec<(u64, u64)>,
    },
    /// Tests only: blocks until the sender says go (a stuck request).
    #[cfg(test)]
    Stuck(Mutex<Receiver<()>>),
}

/// One request for the pool.
#[derive(Debug)]
pub(crate) struct Job {
    /// The engine's name for it.
    pub(crate) tag: u64,
    pub(crate) op: Op,
}

/// A finished job: the buffer (read data, or the write's buffer back for
/// reuse) or the error.
#[derive(Debug)]
pub(crate) struct Done {
    pub(crate) tag: u64,
    pub(crate) result: io::Result<Vec<u8>>,
}

/// The pool. Dropping it cancels the jobs not yet started, lets the
/// threads finish their current one and joins them.
pub(crate) struct FilePool {
    tx: Option<Sender<Job>>,
    cancel: Arc<AtomicBool>,
    done: Arc<Mutex<Vec<Done>>>,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for FilePool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FilePool")
            .field("threads", &self.threads.len())
            .finish_non_exhaustive()
    }
}

impl FilePool {
    /// Starts `workers` threads named `name`; each finished job calls
    /// `notify`.
    pub(crate) fn new(name: &str, workers: usize, notify: Arc<dyn Notifier>) -> io::Result<Self> {
        let (tx, rx) = channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let done = Arc::new(Mutex::new(Vec::new()));
        let cancel = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::with_capacity(workers);
        for i in 0..workers {
            let (rx, done, notify) = (rx.clone(), done.clone(), notify.clone());
            let cancel = cancel.clone();
            let t = std::thread::Builder::new()
                .name(format!("{name}-io{i}"))
                .stack_size(256 << 10)
                .spawn(move || worker(&rx, &done, &*notify, &cancel))?;
            threads.push(t);
        }
        Ok(FilePool {
            tx: Some(tx),
            cancel,
            done,
            threads,
        })
    }

    /// Queues `job`. False if the pool has stopped (its threads died).
    pub(crate) fn submit(&self, job: Job) -> bool {
        self.tx.as_ref().is_some_and(|tx| tx.send(job).is_ok())
    }

    /// Cancels the jobs not yet started (they are dropped unrun).
    pub(crate) fn cancel(&self) {
        self.cancel.store(true, Ordering::SeqCst);
    }

    /// The jobs finished since the last call, in the order they finished.
    pub(crate) fn take_done(&self) -> Vec<Done> {
        std::mem::take(&mut *self.done.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Drop for FilePool {
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::SeqCst);
        self.tx = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn worker(
    rx: &Mutex<Receiver<Job>>,
    done: &Mutex<Vec<Done>>,
    notify: &dyn Notifier,
    cancel: &AtomicBool,
) {
    loop {
        let job = {
            let rx = rx.lock().unwrap_or_else(|e| e.into_inner());
            match rx.recv() {
                Ok(j) => j,
                Err(_) => return,
            }
        };
        if cancel.load(Ordering::SeqCst) {
            continue; // a reset: nobody waits for it
        }
        let tag = job.tag;
        let result = run(job);
        done.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Done { tag, result });
        notify.notify();
    }
}

fn run(job: Job) -> io::Result<Vec<u8>> {
    match job.op {
        Op::Read {
            ns,
            offset,
            mut buf,
        } => {
            ns.read_at(offset, &mut buf)?;
            Ok(buf)
        }
        Op::Write {
            ns,
            offset,
            data,
            sync,
        } => {
            ns.write_at(offset, &data)?;
            if sync {
                ns.flush()?;
            }
            Ok(data)
        }
        Op::ReadInto { ns, offset, map } => ns.read_into(offset, &map).map(|()| Vec::new()),
        Op::WriteFrom {
            ns,
            offset,
            map,
            sync,
        } => {
            ns.write_from(offset, &map)?;
            if sync {
                ns.flush()?;
            }
            Ok(Vec::new())
        }
        Op::Flush(all) => {
            for ns in all {
                ns.flush()?;
            }
            Ok(Vec::new())
        }
        Op::Zero { ns, ranges } => {
            for (off, len) in ranges {
                ns.zero(off, len)?;
            }
            Ok(Vec::new())
        }
        #[cfg(test)]
        Op::Stuck(go) => {
            let _ = go.lock().unwrap().recv();
            Ok(Vec::new())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::namespace::{BackingKind, NamespaceConfig};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    #[derive(Default)]
    struct Count(AtomicUsize);
    impl Notifier for Count {
        fn notify(&self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn ram_ns() -> Arc<Namespace> {
        let cfg = NamespaceConfig {
            size: 1 << 20,
            lba_size: 512,
            backing: BackingKind::Ram,
        };
        Arc::new(Namespace::open(&cfg).unwrap())
    }

    fn wait(pool: &FilePool, n: usize) -> Vec<Done> {
        let t0 = Instant::now();
        let mut all = Vec::new();
        while all.len() < n {
            all.extend(pool.take_done());
            assert!(t0.elapsed() < Duration::from_secs(10), "pool stalled");
            std::thread::yield_now();
        }
        all
    }

    #[test]
    fn jobs_run_on_the_pool_and_notify_once_each() {
        let ns = ram_ns();
        let count = Arc::new(Count::default());
        let pool = FilePool::new("t", 2, count.clone()).unwrap();
        let data: Vec<u8> = (0..4096u32).map(|i| (i * 7) as u8).collect();
        assert!(pool.submit(Job {
            tag: 1,
            op: Op::Write {
                ns: ns.clone(),
                offset: 8192,
                data: data.clone(),
                sync: true
            },
        }));
        assert_eq!(wait(&pool, 1)[0].tag, 1);
        assert!(pool.submit(Job {
            tag: 2,
            op: Op::Read {
                ns: ns.clone(),
                offset: 8192,
                buf: vec![0; 4096]
            },
        }));
        let d = wait(&pool, 1);
        assert_eq!(d[0].tag, 2);
        assert_eq!(d[0].result.as_ref().unwrap(), &data);
        assert_eq!(count.0.load(Ordering::SeqCst), 2);
        // Out of range: the error comes back, the pool keeps serving.
        assert!(pool.submit(Job {
            tag: 3,
            op: Op::Read {
                ns,
                offset: 1 << 20,
                buf: vec![0; 512]
            },
        }));
        assert!(wait(&pool, 1)[0].result.is_err());
        drop(pool);
    }

    #[test]
    fn a_stuck_request_does_not_hold_up_the_ones_behind_it() {
        let ns = ram_ns();
        let pool = FilePool::new("t", 2, Arc::new(Count::default())).unwrap();
        let (go, stuck) = channel();
        assert!(pool.submit(Job {
            tag: 1,
            op: Op::Stuck(Mutex::new(stuck)),
        }));
        for tag in 2..10 {
            assert!(pool.submit(Job {
                tag,
                op: Op::Read {
                    ns: ns.clone(),
                    offset: 0,
                    buf: vec![0; 512]
                },
            }));
        }
        // Every read finishes while the first request is still stuck.
        let mut tags: Vec<u64> = wait(&pool, 8).iter().map(|d| d.tag).collect();
        tags.sort_unstable();
        assert_eq!(tags, (2..10).collect::<Vec<_>>());
        go.send(()).unwrap();
        assert_eq!(wait(&pool, 1)[0].tag, 1);
    }
}
