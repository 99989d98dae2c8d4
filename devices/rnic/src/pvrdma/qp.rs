//! The QP engine: work requests out of the send queues onto the wire,
//! requests from the wire into receive queues and memory regions, and
//! completions, in order, into the CQs. Every payload goes through the
//! RNIC's DMA handle, whether the address is RAM or a peer's BAR.
//!
//! RC: SEND (with immediate or invalidate), RDMA WRITE (with immediate),
//! RDMA READ, fast-register and local invalidate; a request waits for
//! its response and is retired in order; a SEND finding no receive waits
//! (RNR) until one is posted. UD (and the GSI QP): SEND with the 40-byte
//! GRH area rdma_cm needs. A QP in the error state completes everything
//! outstanding and everything posted later with WR_FLUSH_ERR.

use pcie_core::DmaHandle;

use super::cmd::{Rdma, MAX_INFLIGHT, MAX_MSG};
use super::grh::{grh, is_v4};
use super::mem;
use super::regs::{access, qp_state, qp_type, ring};
use super::resources::{MrKind, Pending, Qp};
use super::wqe::{flags, status, wc, wc_flags, wr, Cqe, RecvWqe, SendWqe, Sge};
use crate::transport::{Gid, Msg, Nak, Op, RdmaPort, SendError};

/// Outcome of one engine pass over the QPs: interrupts to raise.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Raised {
    /// A CQ notification was written.
    pub cq: bool,
    /// A QP could not send because a peer's queue was full.
    pub blocked: bool,
}

fn wc_of(opcode: u32) -> u32 {
    match opcode {
        wr::RDMA_WRITE | wr::RDMA_WRITE_WITH_IMM => wc::RDMA_WRITE,
        wr::RDMA_READ => wc::RDMA_READ,
        wr::LOCAL_INV => wc::LOCAL_INV,
        wr::FAST_REG_MR => wc::REG_MR,
        _ => wc::SEND,
    }
}

fn nak_status(n: Nak) -> u32 {
    match n {
        Nak::NoQp => status::RETRY_EXC_ERR,
        Nak::RemoteAccess => status::REM_ACCESS_ERR,
        Nak::InvalidRequest => status::REM_INV_REQ_ERR,
        Nak::RemoteOp => status::REM_OP_ERR,
    }
}

/// What the engine works with besides the tables.
pub struct Ctx<'a> {
    /// The RNIC's DMA handle.
    pub dma: &'a DmaHandle,
    /// Its port on the RDMA fabric.
    pub port: &'a RdmaPort,
    /// Sequence numbers of requests.
    pub seq: &'a mut u64,
    /// Interrupts due.
    pub raised: Raised,
}

impl Rdma {
    /// Pieces of `len` bytes at `va` under key `key` for a QP of `pd`,
    /// when the MR allows `need` (0: local read).
    fn resolve(&self, pd: u32, key: u32, va: u64, len: u64, need: u32) -> Option<Vec<(u64, u64)>> {
        let mr = self.mrs.get(key >> 8)?;
        if mr.key != key || mr.pd != pd || mr.access & need != need {
            return None;
        }
        if len == 0 {
            return Some(Vec::new());
        }
        mr.translate(va, len)
    }

    /// Reads the bytes `sges` name (local keys of `pd`).
    fn gather(&self, dma: &DmaHandle, pd: u32, sges: &[Sge]) -> Result<Vec<u8>, u32> {
        let total: u64 = sges.iter().map(|s| u64::from(s.length)).sum();
        if total > u64::from(MAX_MSG) {
            return Err(status::LOC_LEN_ERR);
        }
        let mut out = Vec::with_capacity(total as usize);
        for s in sges {
            let pieces = self
                .resolve(pd, s.lkey, s.addr, u64::from(s.length), 0)
                .ok_or(status::LOC_PROT_ERR)?;
            for (a, n) in pieces {
                let b = mem::read(dma, a, n as usize).map_err(|_| status::LOC_PROT_ERR)?;
                out.extend_from_slice(&b);
            }
        }
        Ok(out)
    }

    /// Writes `data` into `sges` (local keys of `pd`, LOCAL_WRITE).
    fn scatter(&self, dma: &DmaHandle, pd: u32, sges: &[Sge], data: &[u8]) -> Result<(), u32> {
        let room: u64 = sges.iter().map(|s| u64::from(s.length)).sum();
        if (data.len() as u64) > room {
            return Err(status::LOC_LEN_ERR);
        }
        let mut at = 0usize;
        for s in sges {
            if at == data.len() {
                break;
            }
            let n = (s.length as usize).min(data.len() - at);
            let pieces = self
                .resolve(pd, s.lkey, s.addr, n as u64, access::LOCAL_WRITE)
                .ok_or(status::LOC_PROT_ERR)?;
            for (a, len) in pieces {
                mem::write(dma, a, &data[at..at + len as usize])
                    .map_err(|_| status::LOC_PROT_ERR)?;
                at += len as usize;
            }
        }
        Ok(())
    }

    /// Writes `cqe` into CQ `h` and notifies it if armed for it.
    fn complete(&mut self, cx: &mut Ctx, h: u32, cqe: Cqe, solicited: bool) {
        let Some(cq) = self.cqs.get_mut(h) else {
            return;
        };
        if cq.broken {
            return;
        }
        let head = cq.pages.read_u32(cx.dma, ring::RX_STATE + 4);
        let ok = match head.ok().and_then(|hd| cq.math.has_space(cq.tail, hd)) {
            Some(true) => {
                let at = 4096 + u64::from(cq.math.slot(cq.tail)) * ring::CQE;
                let wrote = cq.pages.write(cx.dma, at, &cqe.bytes()).is_ok();
                cq.tail = cq.math.inc(cq.tail);
                wrote && cq.pages.write_u32(cx.dma, ring::RX_STATE, cq.tail).is_ok()
            }
            _ => false,
        };
        if !ok {
            // Overflow or a bad ring: the CQ is in error (async CQ_ERR).
            cq.broken = true;
            if let Some(d) = &mut self.dsr {
                let mut e = [0u8; 8];
                e[..4].copy_from_slice(&super::regs::event::CQ_ERR.to_le_bytes());
                e[4..].copy_from_slice(&h.to_le_bytes());
                d.async_ring.push(cx.dma, &e);
            }
            return;
        }
        let fire = match cq.armed {
            Some(false) => true,
            Some(true) => solicited || cqe.status != status::SUCCESS,
            None => false,
        };
        if fire {
            cq.armed = None;
            if let Some(d) = &mut self.dsr {
                if d.cq_ring.push(cx.dma, &h.to_le_bytes()) {
                    cx.raised.cq = true;
                }
            }
        }
    }

    fn read_wqe(&self, dma: &DmaHandle, qp: &Qp, sq: bool, idx: u32) -> Option<Vec<u8>> {
        let q = if sq { &qp.sq } else { qp.rq.as_ref()? };
        let off = q.base + u64::from(q.math.slot(idx)) * q.stride;
        qp.pages.read(dma, off, q.stride as usize).ok()
    }

    /// The driver's producer index of a queue of `qp`.
    fn tail(dma: &DmaHandle, qp: &Qp, sq: bool) -> Option<u32> {
        let st = if sq {
            qp.sq.state
        } else {
            qp.rq.as_ref()?.state
        };
        qp.pages.read_u32(dma, st).ok()
    }

    /// Takes the next receive WQE of QP `h`, if one is posted.
    fn take_recv(&mut self, dma: &DmaHandle, h: u32) -> Option<RecvWqe> {
        let qp = self.qps.get(h)?;
        let rq = qp.rq.as_ref()?;
        let tail = Self::tail(dma, qp, false)?;
        if rq.math.has_data(tail, rq.head) != Some(true) {
            return None;
        }
        let b = self.read_wqe(dma, qp, false, rq.head)?;
        let max = rq.max_sge;
        let qp = self.qps.get_mut(h)?;
        let rq = qp.rq.as_mut()?;
        rq.head = rq.math.inc(rq.head);
        let _ = qp.pages.write_u32(dma, rq.state + 4, rq.head);
        // A malformed WQE still consumes its slot; it completes in error.
        Some(RecvWqe::parse(&b, max).unwrap_or(RecvWqe {
            wr_id: u64::from_le_bytes(b[..8].try_into().unwrap_or_default()),
            sges: vec![Sge {
                addr: 0,
                length: 0,
                lkey: u32::MAX,
            }],
        }))
    }

    /// Moves QP `h` to the error state.
    fn fail(&mut self, h: u32) {
        if let Some(q) = self.qps.get_mut(h) {
            q.state = qp_state::ERR;
        }
    }

    /// Completes, in order, the pending send WQEs of `h` whose outcome is
    /// known.
    fn retire(&mut self, cx: &mut Ctx, h: u32) {
        loop {
            let Some(qp) = self.qps.get_mut(h) else {
                return;
            };
            let Some(st) = qp.outstanding.front().and_then(|p| p.status) else {
                return;
            };
            let p = qp.outstanding.pop_front().unwrap_or_else(|| unreachable!());
            self.inflight = self.inflight.saturating_sub(p.bytes);
            let Some(qp) = self.qps.get_mut(h) else {
                return;
            };
            qp.sq.head = qp.sq.math.inc(qp.sq.head);
            let _ = qp.pages.write_u32(cx.dma, qp.sq.state + 4, qp.sq.head);
            let (cq, sig_all) = (qp.send_cq, qp.sig_all);
            if st != status::SUCCESS && st != status::WR_FLUSH_ERR {
                self.fail(h);
            }
            if p.signaled || sig_all || st != status::SUCCESS {
                let cqe = Cqe {
                    wr_id: p.wr_id,
                    qp: h,
                    opcode: p.wc_opcode,
                    status: st,
                    ..Cqe::default()
                };
                self.complete(cx, cq, cqe, false);
            }
        }
    }

    /// Completes everything outstanding and posted on `h` with
    /// WR_FLUSH_ERR (the QP is in error).
    fn flush(&mut self, cx: &mut Ctx, h: u32) {
        let Some(qp) = self.qps.get_mut(h) else {
            return;
        };
        for p in qp.outstanding.iter_mut() {
            p.status.get_or_insert(status::WR_FLUSH_ERR);
        }
        qp.rnr.clear();
        self.retire(cx, h);
        // Posted but not issued send WQEs.
        while let Some(qp) = self.qps.get(h) {
            let Some(tail) = Self::tail(cx.dma, qp, true) else {
                break;
            };
            if qp.sq.math.has_data(tail, qp.issued) != Some(true) {
                break;
            }
            let b = self
                .read_wqe(cx.dma, qp, true, qp.issued)
                .unwrap_or_default();
            let wqe = SendWqe::parse(&b, u32::MAX >> 8);
            let qp = self.qps.get_mut(h).unwrap_or_else(|| unreachable!());
            qp.issued = qp.sq.math.inc(qp.issued);
            qp.outstanding.push_back(Pending {
                seq: 0,
                wr_id: wqe.as_ref().map_or(0, |w| w.wr_id),
                wc_opcode: wqe.as_ref().map_or(wc::SEND, |w| wc_of(w.opcode)),
                signaled: true,
                read_sges: Vec::new(),
                status: Some(status::WR_FLUSH_ERR),
                bytes: 0,
            });
            self.retire(cx, h);
        }
        // Posted receive WQEs.
        let rcq = self.qps.get(h).map(|q| q.recv_cq);
        while let Some(r) = self.take_recv(cx.dma, h) {
            let cqe = Cqe {
                wr_id: r.wr_id,
                qp: h,
                opcode: wc::RECV,
                status: status::WR_FLUSH_ERR,
                ..Cqe::default()
            };
            if let Some(cq) = rcq {
                self.complete(cx, cq, cqe, false);
            }
        }
    }

    fn sgid(&self, i: u8) -> Gid {
        self.gids
            .get(usize::from(i))
            .copied()
            .flatten()
            .unwrap_or_default()
    }

    /// A local work request (fast-register, local invalidate): its status.
    fn local(&mut self, dma: &DmaHandle, pd: u32, w: &SendWqe) -> u32 {
        match w.opcode {
            wr::FAST_REG_MR => {
                let Some(mr) = self.mrs.get(w.fr_key >> 8) else {
                    return status::LOC_PROT_ERR;
                };
                let cap = match mr.kind {
                    MrKind::Fast { capacity, .. } => capacity,
                    _ => return status::LOC_QP_OP_ERR,
                };
                if mr.pd != pd || w.fr_page_shift != 12 || w.fr_pages == 0 || w.fr_pages > cap {
                    return status::LOC_QP_OP_ERR;
                }
                // The length must fit the pages listed.
                let span = (w.fr_iova & 0xfff) + u64::from(w.fr_length);
                if span > u64::from(w.fr_pages) * 4096 {
                    return status::LOC_QP_OP_ERR;
                }
                let Some(pages) = mem::page_dir(dma, w.fr_pdir, w.fr_pages) else {
                    return status::LOC_PROT_ERR;
                };
                let h = w.fr_key >> 8;
                if let Some(m) = self.mrs.get_mut(h) {
                    m.key = w.fr_key;
                    m.access = w.fr_access;
                    m.kind = MrKind::Fast {
                        capacity: cap,
                        valid: true,
                        iova: w.fr_iova,
                        length: u64::from(w.fr_length),
                        pages,
                    };
                }
                status::SUCCESS
            }
            _ => {
                if self.invalidate(pd, w.ex) {
                    status::SUCCESS
                } else {
                    status::LOC_PROT_ERR
                }
            }
        }
    }

    /// Invalidates fast-register MR `key` of `pd`.
    fn invalidate(&mut self, pd: u32, key: u32) -> bool {
        match self.mrs.get_mut(key >> 8) {
            Some(m) if m.key == key && m.pd == pd => match &mut m.kind {
                MrKind::Fast { valid, .. } => {
                    *valid = false;
                    true
                }
                _ => false,
            },
            _ => false,
        }
    }

    /// Sends the posted WQEs of QP `h` that have not gone out.
    fn issue(&mut self, cx: &mut Ctx, h: u32) {
        let budget = self.qps.get(h).map_or(0, |q| q.sq.math.n());
        for _ in 0..budget {
            let Some(qp) = self.qps.get(h) else { return };
            if qp.state != qp_state::RTS && qp.state != qp_state::SQD {
                return;
            }
            let Some(tail) = Self::tail(cx.dma, qp, true) else {
                return;
            };
            if qp.sq.math.has_data(tail, qp.issued) != Some(true) {
                return;
            }
            let (pd, kind, max_sge) = (qp.pd, qp.kind, qp.sq.max_sge);
            let (dest, av, qpn) = (qp.dest_qpn, qp.av, qp.qpn);
            let b = self
                .read_wqe(cx.dma, qp, true, qp.issued)
                .unwrap_or_default();
            let Some(w) = SendWqe::parse(&b, max_sge) else {
                let wr_id = u64::from_le_bytes(
                    b.get(..8)
                        .and_then(|x| x.try_into().ok())
                        .unwrap_or_default(),
                );
                self.push_done(h, wr_id, wc::SEND, true, status::LOC_QP_OP_ERR);
                self.retire(cx, h);
                return;
            };
            let signaled = w.send_flags & flags::SIGNALED != 0;
            let wc_op = wc_of(w.opcode);
            if matches!(w.opcode, wr::FAST_REG_MR | wr::LOCAL_INV) && kind == qp_type::RC {
                let st = self.local(cx.dma, pd, &w);
                self.push_done(h, w.wr_id, wc_op, signaled, st);
                self.retire(cx, h);
                continue;
            }
            let ud = kind != qp_type::RC;
            // Back-pressure: RC payload in flight is bounded per RNIC, so
            // a guest cannot make the device hold unbounded copies.
            let need: u64 = w.sges.iter().map(|s| u64::from(s.length)).sum();
            if !ud && self.inflight > 0 && self.inflight + need > MAX_INFLIGHT {
                cx.raised.blocked = true;
                return;
            }
            let op = match (ud, w.opcode) {
                _ if w.send_flags & flags::INLINE != 0 => Err(status::LOC_QP_OP_ERR),
                (_, wr::SEND | wr::SEND_WITH_IMM) | (false, wr::SEND_WITH_INV) => {
                    self.gather(cx.dma, pd, &w.sges).map(|data| Op::Send {
                        data,
                        imm: (w.opcode == wr::SEND_WITH_IMM).then_some(w.ex),
                        invalidate: (w.opcode == wr::SEND_WITH_INV).then_some(w.ex),
                        solicited: w.send_flags & flags::SOLICITED != 0,
                        qkey: ud.then_some(w.remote_qkey),
                    })
                }
                (false, wr::RDMA_WRITE | wr::RDMA_WRITE_WITH_IMM) => {
                    self.gather(cx.dma, pd, &w.sges).map(|data| Op::Write {
                        rkey: w.rkey,
                        addr: w.remote_addr,
                        data,
                        imm: (w.opcode == wr::RDMA_WRITE_WITH_IMM).then_some(w.ex),
                    })
                }
                (false, wr::RDMA_READ) => {
                    let len: u64 = w.sges.iter().map(|s| u64::from(s.length)).sum();
                    if len > u64::from(MAX_MSG) {
                        Err(status::LOC_LEN_ERR)
                    } else {
                        Ok(Op::ReadReq {
                            rkey: w.rkey,
                            addr: w.remote_addr,
                            len: len as u32,
                        })
                    }
                }
                _ => Err(status::LOC_QP_OP_ERR),
            };
            let op = match op {
                Ok(op) => op,
                Err(st) => {
                    self.push_done(h, w.wr_id, wc_op, signaled, st);
                    self.retire(cx, h);
                    return;
                }
            };
            let (dgid, sgid_i, dst) = if ud {
                (w.dgid, w.sgid_index, w.remote_qpn & 0xff_ffff)
            } else {
                (av.dgid, av.sgid_index, dest)
            };
            *cx.seq += 1;
            let msg = Msg {
                sgid: self.sgid(sgid_i),
                dgid,
                src_qpn: qpn,
                dst_qpn: dst,
                seq: *cx.seq,
                op,
            };
            match cx.port.send(msg) {
                Err(SendError::Full) => {
                    cx.raised.blocked = true;
                    return;
                }
                sent => {
                    // UD completes once sent (or lost); RC waits for
                    // the response, or fails when nobody has the GID.
                    let st = match sent {
                        _ if ud => Some(status::SUCCESS),
                        Ok(()) => None,
                        Err(_) => Some(status::RETRY_EXC_ERR),
                    };
                    let qp = self.qps.get_mut(h).unwrap_or_else(|| unreachable!());
                    qp.issued = qp.sq.math.inc(qp.issued);
                    qp.outstanding.push_back(Pending {
                        seq: *cx.seq,
                        wr_id: w.wr_id,
                        wc_opcode: wc_op,
                        signaled,
                        read_sges: if w.opcode == wr::RDMA_READ {
                            w.sges
                        } else {
                            Vec::new()
                        },
                        status: st,
                        bytes: if st.is_none() { need } else { 0 },
                    });
                    if st.is_none() {
                        self.inflight += need;
                    }
                    self.retire(cx, h);
                }
            }
        }
    }

    /// Records a WQE that completes without going out.
    fn push_done(&mut self, h: u32, wr_id: u64, wc_opcode: u32, signaled: bool, st: u32) {
        if let Some(qp) = self.qps.get_mut(h) {
            qp.issued = qp.sq.math.inc(qp.issued);
            qp.outstanding.push_back(Pending {
                seq: 0,
                wr_id,
                wc_opcode,
                signaled,
                read_sges: Vec::new(),
                status: Some(st),
                bytes: 0,
            });
        }
    }

    /// Everything QP `h` can do now: flush if in error, send what is
    /// posted, deliver what waited for a receive.
    pub fn progress(&mut self, cx: &mut Ctx, h: u32) {
        let Some(state) = self.qps.get(h).map(|q| q.state) else {
            return;
        };
        if state == qp_state::ERR {
            self.flush(cx, h);
            return;
        }
        while let Some(m) = self.qps.get_mut(h).and_then(|q| q.rnr.front().cloned()) {
            if !self.receive(cx, h, &m) {
                break;
            }
            if let Some(q) = self.qps.get_mut(h) {
                q.rnr.pop_front();
            }
        }
        self.issue(cx, h);
    }

    fn reply(&self, cx: &mut Ctx, to: &Msg, op: Op) {
        let m = Msg {
            sgid: to.dgid,
            dgid: to.sgid,
            src_qpn: to.dst_qpn,
            dst_qpn: to.src_qpn,
            seq: to.seq,
            op,
        };
        // A requester that went away gets nothing.
        let _ = cx.port.send(m);
    }

    /// A message for one of this RNIC's QPs.
    pub fn on_msg(&mut self, cx: &mut Ctx, m: Msg) {
        let h = m.dst_qpn;
        let Some(qp) = self.qps.get(h) else {
            if matches!(
                m.op,
                Op::Send { qkey: None, .. } | Op::Write { .. } | Op::ReadReq { .. }
            ) {
                self.reply(cx, &m, Op::Nak(Nak::NoQp));
            }
            return;
        };
        match &m.op {
            Op::Ack | Op::Nak(_) | Op::ReadResp { .. } => self.on_response(cx, h, &m),
            _ if qp.state == qp_state::ERR => {
                if qp.kind == qp_type::RC {
                    self.reply(cx, &m, Op::Nak(Nak::NoQp));
                }
            }
            _ => {
                if !qp.rnr.is_empty() || !self.receive(cx, h, &m) {
                    if let Some(q) = self.qps.get_mut(h) {
                        q.rnr.push_back(m);
                    }
                }
            }
        }
    }

    fn on_response(&mut self, cx: &mut Ctx, h: u32, m: &Msg) {
        let Some(qp) = self.qps.get(h) else { return };
        let Some(i) = qp
            .outstanding
            .iter()
            .position(|p| p.seq == m.seq && p.status.is_none())
        else {
            return;
        };
        let (pd, sges) = (qp.pd, qp.outstanding[i].read_sges.clone());
        let st = match &m.op {
            Op::Ack => status::SUCCESS,
            Op::Nak(n) => nak_status(*n),
            Op::ReadResp { data } => match self.scatter(cx.dma, pd, &sges, data) {
                Ok(()) => status::SUCCESS,
                Err(e) => e,
            },
            _ => return,
        };
        if let Some(q) = self.qps.get_mut(h) {
            q.outstanding[i].status = Some(st);
        }
        self.retire(cx, h);
    }

    /// Serves request `m` on QP `h`: false if it must wait for a receive
    /// WQE (RNR).
    fn receive(&mut self, cx: &mut Ctx, h: u32, m: &Msg) -> bool {
        let Some(qp) = self.qps.get(h) else {
            return true;
        };
        let (pd, kind, qkey, acc, rcq) = (qp.pd, qp.kind, qp.qkey, qp.access, qp.recv_cq);
        if !matches!(qp.state, qp_state::RTR | qp_state::RTS | qp_state::SQD) {
            // Not ready: an RC requester's retries run out; UD is dropped.
            if kind == qp_type::RC {
                self.reply(cx, m, Op::Nak(Nak::NoQp));
            }
            return true;
        }
        let ud = kind != qp_type::RC;
        match &m.op {
            Op::Send {
                data,
                imm,
                invalidate,
                solicited,
                qkey: mk,
            } => {
                if ud != mk.is_some() || (ud && *mk != Some(qkey)) {
                    if !ud {
                        self.reply(cx, m, Op::Nak(Nak::InvalidRequest));
                    }
                    return true;
                }
                let Some(r) = self.take_recv(cx.dma, h) else {
                    // UD drops; RC waits.
                    return ud;
                };
                let mut cqe = Cqe {
                    wr_id: r.wr_id,
                    qp: h,
                    opcode: wc::RECV,
                    byte_len: data.len() as u32,
                    src_qp: m.src_qpn,
                    ..Cqe::default()
                };
                let placed = if ud {
                    let mut buf = grh(&m.sgid, &m.dgid, data.len()).to_vec();
                    buf.extend_from_slice(data);
                    cqe.byte_len = buf.len() as u32;
                    cqe.wc_flags = wc_flags::GRH | wc_flags::WITH_NETWORK_HDR_TYPE;
                    cqe.network_hdr_type = if is_v4(&m.sgid) { 1 } else { 2 };
                    self.scatter(cx.dma, pd, &r.sges, &buf)
                } else {
                    self.scatter(cx.dma, pd, &r.sges, data)
                };
                if let Some(i) = imm {
                    cqe.wc_flags |= wc_flags::WITH_IMM;
                    cqe.imm = *i;
                }
                if let (Some(k), Ok(())) = (invalidate, &placed) {
                    if self.invalidate(pd, *k) {
                        cqe.wc_flags |= wc_flags::WITH_INVALIDATE;
                        cqe.imm = *k;
                    }
                }
                match placed {
                    Ok(()) => {
                        self.complete(cx, rcq, cqe, *solicited);
                        if !ud {
                            self.reply(cx, m, Op::Ack);
                        }
                    }
                    Err(st) => {
                        cqe.status = st;
                        self.complete(cx, rcq, cqe, true);
                        if !ud {
                            self.reply(cx, m, Op::Nak(Nak::InvalidRequest));
                            self.fail(h);
                        }
                    }
                }
                true
            }
            Op::Write {
                rkey,
                addr,
                data,
                imm,
            } if !ud => {
                let r = if imm.is_some() {
                    match self.take_recv(cx.dma, h) {
                        Some(r) => Some(r),
                        None => return false,
                    }
                } else {
                    None
                };
                let ok = acc & access::REMOTE_WRITE != 0
                    && self
                        .resolve(pd, *rkey, *addr, data.len() as u64, access::REMOTE_WRITE)
                        .is_some_and(|pieces| {
                            let mut at = 0usize;
                            pieces.into_iter().all(|(a, n)| {
                                let ok = mem::write(cx.dma, a, &data[at..at + n as usize]).is_ok();
                                at += n as usize;
                                ok
                            })
                        });
                if !ok {
                    self.reply(cx, m, Op::Nak(Nak::RemoteAccess));
                    return true;
                }
                if let (Some(r), Some(i)) = (r, imm) {
                    let cqe = Cqe {
                        wr_id: r.wr_id,
                        qp: h,
                        opcode: wc::RECV_RDMA_WITH_IMM,
                        byte_len: data.len() as u32,
                        imm: *i,
                        wc_flags: wc_flags::WITH_IMM,
                        src_qp: m.src_qpn,
                        ..Cqe::default()
                    };
                    self.complete(cx, rcq, cqe, false);
                }
                self.reply(cx, m, Op::Ack);
                true
            }
            Op::ReadReq { rkey, addr, len } if !ud => {
                let data = (acc & access::REMOTE_READ != 0)
                    .then(|| self.resolve(pd, *rkey, *addr, u64::from(*len), access::REMOTE_READ))
                    .flatten()
                    .and_then(|pieces| {
                        let mut out = Vec::with_capacity(*len as usize);
                        for (a, n) in pieces {
                            out.extend_from_slice(&mem::read(cx.dma, a, n as usize).ok()?);
                        }
                        Some(out)
                    });
                match data {
                    Some(data) => self.reply(cx, m, Op::ReadResp { data }),
                    None => self.reply(cx, m, Op::Nak(Nak::RemoteAccess)),
                }
                true
            }
            _ => {
                if !ud {
                    self.reply(cx, m, Op::Nak(Nak::RemoteOp));
                }
                true
            }
        }
    }
}
