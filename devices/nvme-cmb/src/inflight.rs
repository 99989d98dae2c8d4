//! Commands for file-backed namespaces in flight on the [`FilePool`]: the
//! engine fetches, checks and gathers, hands the file work to the pool and
//! goes on with the queue; when a job is done it scatters the data and
//! posts the completion. Completions go out in the order jobs finish.
//!
//! A CQ slot is reserved for every command in flight, so a completion
//! always has room when it is ready unless the host itself moved the head
//! backwards; then it waits (and, with shadow doorbells, asks for the next
//! head update) rather than overwrite an entry the host has not consumed.
//! A reset forgets everything in flight: late results are dropped, with no
//! DMA.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use pcie_core::Notifier;

use crate::dptr::{scatter, Segment};
use crate::engine::NvmeEngine;
use crate::memory::CtrlMemory;
use crate::pool::{Done, FilePool, Job, Op, MAX_IN_FLIGHT, WORKERS};
use crate::sqe::Command;
use crate::Status;

/// What to do with a job's result.
#[derive(Debug)]
pub(crate) enum Then {
    /// Scatter the data along the segments (Read).
    Scatter(Vec<Segment>),
    /// Compare the data with the host's (Compare).
    Compare(Vec<u8>),
    /// Count a write of this many bytes.
    Written(u64),
    /// Count a read of this many bytes, already in host memory (mapped).
    ReadMapped(u64),
    /// Nothing (Flush, Write Zeroes, Dataset Management).
    Nothing,
}

#[derive(Debug)]
struct Pending {
    sqid: u16,
    cqid: u16,
    cmd: Command,
    then: Then,
}

#[derive(Debug)]
struct Ready {
    sqid: u16,
    cqid: u16,
    cmd: Command,
    status: Status,
}

/// The engine's in-flight bookkeeping and its pool (started on first use).
pub(crate) struct InFlight {
    name: String,
    notify: Arc<dyn Notifier>,
    pool: Option<FilePool>,
    /// Pools a reset retired, joined outside the lock.
    retired: Vec<FilePool>,
    next_tag: u64,
    pending: HashMap<u64, Pending>,
    ready: VecDeque<Ready>,
    /// CQ slots reserved per CQ ID (pending and ready commands).
    reserved: Vec<u32>,
}

impl std::fmt::Debug for InFlight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InFlight")
            .field("pending", &self.pending.len())
            .field("ready", &self.ready.len())
            .finish_non_exhaustive()
    }
}

impl InFlight {
    pub(crate) fn new(name: String, notify: Arc<dyn Notifier>, queues: usize) -> Self {
        InFlight {
            name,
            notify,
            pool: None,
            retired: Vec::new(),
            next_tag: 0,
            pending: HashMap::new(),
            ready: VecDeque::new(),
            reserved: vec![0; queues],
        }
    }

    /// Commands in flight or waiting to be posted.
    pub(crate) fn len(&self) -> usize {
        self.pending.len() + self.ready.len()
    }

    /// Whether a reset retired a pool not joined yet.
    pub(crate) fn has_retired(&self) -> bool {
        !self.retired.is_empty()
    }

    /// Joins retired pools (their threads finish the job they are on).
    /// Never call it holding the controller's lock.
    pub(crate) fn drop_retired(&mut self) {
        self.retired.clear();
    }

    /// Commands whose job is still on the pool.
    pub(crate) fn on_pool(&self) -> usize {
        self.pending.len()
    }

    /// CQ slots reserved on CQ `cqid`.
    pub(crate) fn reserved(&self, cqid: usize) -> u32 {
        self.reserved.get(cqid).copied().unwrap_or(0)
    }

    /// Whether another command may go to the pool.
    pub(crate) fn has_room(&self) -> bool {
        self.len() < MAX_IN_FLIGHT
    }

    /// Forgets every command and retires the pool (a reset): jobs not yet
    /// started are cancelled, running ones finish and nothing they return
    /// is used. Runs under the controller's lock, so it does not wait for
    /// them: [`drop_retired`](Self::drop_retired) does, after the lock.
    pub(crate) fn clear(&mut self) {
        if let Some(p) = self.pool.take() {
            p.cancel();
            self.retired.push(p);
        }
        self.pending.clear();
        self.ready.clear();
        self.reserved.iter_mut().for_each(|r| *r = 0);
    }

    /// Forgets SQ `sqid`'s commands (Delete I/O SQ): they are aborted
    /// without a completion.
    pub(crate) fn forget_sq(&mut self, sqid: u16) {
        let mut freed = Vec::new();
        self.pending.retain(|_, p| {
            let keep = p.sqid != sqid;
            if !keep {
                freed.push(p.cqid);
            }
            keep
        });
        self.ready.retain(|r| {
            let keep = r.sqid != sqid;
            if !keep {
                freed.push(r.cqid);
            }
            keep
        });
        for cqid in freed {
            self.release(cqid);
        }
    }

    fn release(&mut self, cqid: u16) {
        if let Some(r) = self.reserved.get_mut(usize::from(cqid)) {
            *r = r.saturating_sub(1);
        }
    }
}

impl NvmeEngine {
    /// True when CQ `cqid` exists and has a free slot beyond those
    /// reserved for commands in flight.
    pub(crate) fn cq_has_room(&self, cqid: usize) -> bool {
        let Some(cq) = self.st.cqs.get(cqid).copied().flatten() else {
            return false;
        };
        let used = (cq.tail + cq.size - cq.head) % cq.size;
        let free = cq.size - 1 - used;
        free > self.inflight.reserved(cqid)
    }

    /// Hands `op` to the pool for `cmd` from SQ `sqid`; `then` finishes it.
    /// None: the completion comes later. A pool that cannot start or has
    /// stopped fails the command (Internal Error).
    pub(crate) fn queue(
        &mut self,
        sqid: u16,
        cmd: &Command,
        op: Op,
        then: Then,
    ) -> Option<(Status, u32)> {
        let cqid = self.st.sqs[usize::from(sqid)]?.cqid;
        let fl = &mut self.inflight;
        if fl.pool.is_none() {
            match FilePool::new(&fl.name, WORKERS, fl.notify.clone()) {
                Ok(p) => fl.pool = Some(p),
                Err(_) => return Some((Status::INTERNAL_ERROR, 0)),
            }
        }
        let tag = fl.next_tag;
        fl.next_tag = fl.next_tag.wrapping_add(1);
        if !fl.pool.as_ref().is_some_and(|p| p.submit(Job { tag, op })) {
            return Some((Status::INTERNAL_ERROR, 0));
        }
        fl.pending.insert(
            tag,
            Pending {
                sqid,
                cqid,
                cmd: *cmd,
                then,
            },
        );
        if let Some(r) = fl.reserved.get_mut(usize::from(cqid)) {
            *r += 1;
        }
        None
    }

    /// Finishes the pool's done jobs and posts what has room. True when
    /// anything was posted.
    pub(crate) fn reap_pool(&mut self, mem: &CtrlMemory<'_>, posted: &mut Vec<u16>) -> bool {
        let done = self
            .inflight
            .pool
            .as_ref()
            .map(FilePool::take_done)
            .unwrap_or_default();
        for Done { tag, result } in done {
            let Some(p) = self.inflight.pending.remove(&tag) else {
                continue; // reset or deleted since
            };
            let status = match (result, p.then) {
                (Err(_), _) => Status::INTERNAL_ERROR,
                (Ok(buf), Then::Scatter(segs)) => {
                    let s = scatter(mem, &segs, &buf);
                    if s.is_ok() {
                        self.health.count_read(buf.len() as u64);
                    }
                    self.give_buf(buf);
                    s.err().unwrap_or(Status::SUCCESS)
                }
                (Ok(have), Then::Compare(want)) => {
                    let same = have == want;
                    self.give_buf(have);
                    self.give_buf(want);
                    if same {
                        Status::SUCCESS
                    } else {
                        Status::COMPARE_FAILURE
                    }
                }
                (Ok(buf), Then::Written(n)) => {
                    self.health.count_write(n);
                    self.give_buf(buf);
                    Status::SUCCESS
                }
                (Ok(_), Then::ReadMapped(n)) => {
                    self.health.count_read(n);
                    Status::SUCCESS
                }
                (Ok(_), Then::Nothing) => Status::SUCCESS,
            };
            self.inflight.ready.push_back(Ready {
                sqid: p.sqid,
                cqid: p.cqid,
                cmd: p.cmd,
                status,
            });
        }
        self.post_ready(mem, posted)
    }

    /// Posts ready completions in order while their CQs have room.
    fn post_ready(&mut self, mem: &CtrlMemory<'_>, posted: &mut Vec<u16>) -> bool {
        let mut any = false;
        let mut waiting = VecDeque::new();
        while let Some(r) = self.inflight.ready.pop_front() {
            let cq = self.st.cqs.get(usize::from(r.cqid)).copied().flatten();
            match cq {
                Some(cq) if cq.full() => {
                    self.ask_head(mem, usize::from(r.cqid));
                    waiting.push_back(r);
                }
                Some(_) => {
                    self.inflight.release(r.cqid);
                    self.complete(mem, r.sqid, &r.cmd, r.status, 0, posted);
                    any = true;
                }
                None => self.inflight.release(r.cqid),
            }
        }
        self.inflight.ready = waiting;
        any
    }
}
