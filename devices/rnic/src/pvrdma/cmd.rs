//! The command channel: the shared region, its caps, and every command the
//! 6.12 driver sends, checked before use (handles, sizes, page counts,
//! MR lengths against their pages). Runs on the device thread.

use pcie_core::DmaHandle;

use super::mem::{self, Fields, FieldsMut, Pages};
use super::regs::{access, caps, cmd, dsr, err, limit, mr_flags, qp_attr, qp_state, qp_type, ring};
use super::resources::{Av, Cq, Mr, MrKind, Pd, Qp, Table, WorkQueue};
use super::ring::RingMath;

/// An event ring the device produces into (async events, CQ
/// notifications): pages with the ring state in page 0.
#[derive(Debug, Clone)]
pub struct EventRing {
    pages: Pages,
    math: RingMath,
    elem: u64,
    tail: u32,
}

impl EventRing {
    /// Adds `entry` if the driver has room; false if not (or its ring
    /// state is bad).
    pub fn push(&mut self, dma: &DmaHandle, entry: &[u8]) -> bool {
        let Ok(head) = self.pages.read_u32(dma, ring::RX_STATE + 4) else {
            return false;
        };
        if self.math.has_space(self.tail, head) != Some(true) {
            return false;
        }
        let at = 4096 + u64::from(self.math.slot(self.tail)) * self.elem;
        if self.pages.write(dma, at, entry).is_err() {
            return false;
        }
        self.tail = self.math.inc(self.tail);
        self.pages.write_u32(dma, ring::RX_STATE, self.tail).is_ok()
    }
}

/// The loaded shared region.
#[derive(Debug, Clone)]
pub struct Dsr {
    /// The command slot.
    pub cmd_slot: u64,
    /// The response slot.
    pub resp_slot: u64,
    /// Async events.
    pub async_ring: EventRing,
    /// CQ notifications.
    pub cq_ring: EventRing,
}

/// Everything the command channel creates.
#[derive(Debug)]
pub struct Rdma {
    /// The shared region, once loaded.
    pub dsr: Option<Dsr>,
    /// Protection domains.
    pub pds: Table<Pd>,
    /// User contexts: their UAR page.
    pub ucs: Table<u32>,
    /// Completion queues.
    pub cqs: Table<Cq>,
    /// Queue pairs, by handle (= QPN; 1 is the GSI QP).
    pub qps: Table<Qp>,
    /// Memory regions, by key >> 8.
    pub mrs: Table<Mr>,
    /// The GID table.
    pub gids: Vec<Option<[u8; 16]>>,
    /// The node GUID (EUI-64 from the MAC).
    pub node_guid: u64,
    /// RC payload bytes in flight (see [`MAX_INFLIGHT`]).
    pub inflight: u64,
}

/// The node GUID of `mac`: EUI-64 (ff:fe in the middle, the
/// universal/local bit flipped).
pub fn node_guid(mac: [u8; 6]) -> u64 {
    let b = [
        mac[0] ^ 2,
        mac[1],
        mac[2],
        0xff,
        0xfe,
        mac[3],
        mac[4],
        mac[5],
    ];
    u64::from_be_bytes(b)
}

/// Largest message one work request may carry (QUERY_PORT's
/// `max_msg_sz`): 16 MiB.
pub const MAX_MSG: u32 = 16 << 20;

/// RC payload one RNIC holds in flight at most (requests sent and not
/// yet answered): 64 MiB. A work request that would pass it waits for
/// responses, unless nothing is in flight.
pub const MAX_INFLIGHT: u64 = 64 << 20;

/// Bytes of a WQE of `base` header bytes and `sge` entries: a power of two.
fn stride(base: u32, sge: u32) -> u64 {
    u64::from(base + 16 * sge).next_power_of_two()
}

/// The result of a command: ERR and the response payload (after the
/// header).
type Outcome = Result<Vec<u8>, u32>;

fn pow2_within(v: u32, max: u32) -> Result<u32, u32> {
    (v.is_power_of_two() && v <= max)
        .then_some(v)
        .ok_or(err::INVALID)
}

impl Rdma {
    /// A device with nothing created; its node GUID from `mac`.
    pub fn new(mac: [u8; 6]) -> Self {
        Rdma {
            dsr: None,
            pds: Table::new(limit::MAX_PD),
            ucs: Table::new(super::regs::MAX_UAR),
            cqs: Table::new(limit::MAX_CQ),
            qps: Table::new(limit::MAX_QP),
            mrs: Table::new(limit::MAX_MR),
            gids: vec![None; limit::GID_TBL_LEN as usize],
            node_guid: node_guid(mac),
            inflight: 0,
        }
    }

    /// Drops every object and the shared region (CTL RESET).
    pub fn reset(&mut self) {
        let guid = self.node_guid;
        *self = Rdma {
            node_guid: guid,
            ..Rdma::new([0; 6])
        };
    }

    /// The caps the device advertises.
    pub fn caps(&self) -> [u8; dsr::CAPS_LEN] {
        let mut c = [0u8; dsr::CAPS_LEN];
        c.put_u64(caps::FW_VER, 1 << 32);
        c.put(caps::NODE_GUID, &self.node_guid.to_be_bytes());
        c.put(caps::SYS_IMAGE_GUID, &self.node_guid.to_be_bytes());
        c.put_u64(caps::MAX_MR_SIZE, limit::MAX_MR_SIZE);
        c.put_u64(caps::PAGE_SIZE_CAP, 0x1000);
        c.put_u32(caps::VENDOR_ID, u32::from(super::regs::VENDOR_ID));
        c.put_u32(caps::VENDOR_PART_ID, u32::from(super::regs::DEVICE_ID));
        c.put_u32(caps::HW_VER, 1);
        c.put_u32(caps::MAX_QP, limit::MAX_QP);
        c.put_u32(caps::MAX_QP_WR, limit::MAX_QP_WR);
        c.put_u32(caps::DEVICE_CAP_FLAGS, 0);
        c.put_u32(caps::MAX_SGE, limit::MAX_SGE);
        c.put_u32(caps::MAX_SGE_RD, limit::MAX_SGE);
        c.put_u32(caps::MAX_CQ, limit::MAX_CQ);
        c.put_u32(caps::MAX_CQE, limit::MAX_CQE);
        c.put_u32(caps::MAX_MR, limit::MAX_MR);
        c.put_u32(caps::MAX_PD, limit::MAX_PD);
        c.put_u32(caps::MAX_QP_RD_ATOM, limit::MAX_RD_ATOM);
        c.put_u32(caps::MAX_QP_INIT_RD_ATOM, limit::MAX_RD_ATOM);
        c.put_u32(caps::MAX_AH, limit::MAX_AH);
        c.put_u32(caps::MAX_SRQ, 0);
        c.put_u32(caps::MAX_UAR, super::regs::MAX_UAR);
        c.put_u32(caps::GID_TBL_LEN, limit::GID_TBL_LEN);
        c.put_u16(caps::MAX_PKEYS, 1);
        c.put(caps::LOCAL_CA_ACK_DELAY, &[15]);
        c.put(caps::PHYS_PORT_CNT, &[1]);
        c.put(caps::MODE, &[0]);
        c.put(caps::ATOMIC_OPS, &[0]);
        // Local invalidate, remote invalidate, fast-register work requests.
        c.put(caps::BMME_FLAGS, &[7]);
        // RoCE v2 only.
        c.put(caps::GID_TYPES, &[2]);
        c.put_u32(caps::MAX_FAST_REG_PAGE_LIST_LEN, limit::MAX_FAST_REG_PAGES);
        c
    }

    fn event_ring(dma: &DmaHandle, region: &[u8], at: usize, elem: u64) -> Result<EventRing, u32> {
        let num_pages = region.u32_at(at);
        let pdir = region.u64_at(at + 8);
        // Page 0 holds the ring state; at least one page of entries.
        if !(2..=ring::MAX_EVENT_PAGES).contains(&num_pages) {
            return Err(err::INVALID);
        }
        let pages = mem::page_dir(dma, pdir, num_pages).ok_or(err::BAD_ADDRESS)?;
        let n = ((num_pages - 1) as u64 * 4096 / elem) as u32;
        Ok(EventRing {
            pages: Pages(pages),
            math: RingMath::new(n).ok_or(err::INVALID)?,
            elem,
            tail: 0,
        })
    }

    /// DSRHIGH: reads the region at `addr`, checks it, writes the caps.
    pub fn load_dsr(&mut self, dma: &DmaHandle, addr: u64) -> u32 {
        let region = match mem::read(dma, addr, dsr::LEN) {
            Ok(r) => r,
            Err(_) => return err::BAD_ADDRESS,
        };
        let loaded = (|| {
            let async_ring = Self::event_ring(dma, &region, dsr::ASYNC_RING as usize, ring::EQE)?;
            let cq_ring = Self::event_ring(dma, &region, dsr::CQ_RING as usize, ring::CQNE)?;
            Ok::<_, u32>(Dsr {
                cmd_slot: region.u64_at(dsr::CMD_SLOT as usize),
                resp_slot: region.u64_at(dsr::RESP_SLOT as usize),
                async_ring,
                cq_ring,
            })
        })();
        // The caps go in whatever the rest says: the driver reads them to
        // decide whether it supports the device at all.
        if mem::write(dma, addr + dsr::CAPS, &self.caps()).is_err() {
            return err::BAD_ADDRESS;
        }
        match loaded {
            Ok(d) => {
                self.dsr = Some(d);
                err::OK
            }
            Err(e) => e,
        }
    }

    /// REQUEST: runs the command in the slot and writes the response.
    /// Returns ERR.
    pub fn command(&mut self, dma: &DmaHandle, bar2_pfn: u64) -> u32 {
        let Some(d) = &self.dsr else {
            return err::NOT_READY;
        };
        let (cmd_slot, resp_slot) = (d.cmd_slot, d.resp_slot);
        let Ok(req) = mem::read(dma, cmd_slot, cmd::REQ_LEN) else {
            return err::BAD_ADDRESS;
        };
        let code = req.u32_at(8);
        let out = self.execute(dma, bar2_pfn, code, &req);
        let mut resp = vec![0u8; cmd::RESP_LEN];
        resp.put_u64(0, req.u64_at(0));
        resp.put_u32(8, code | cmd::RESP);
        let e = match out {
            Ok(payload) => {
                let n = payload.len().min(cmd::RESP_LEN - 16);
                resp[16..16 + n].copy_from_slice(&payload[..n]);
                err::OK
            }
            Err(e) => {
                resp[12] = e as u8;
                e
            }
        };
        if mem::write(dma, resp_slot, &resp).is_err() {
            return err::BAD_ADDRESS;
        }
        e
    }

    fn execute(&mut self, dma: &DmaHandle, bar2_pfn: u64, code: u32, r: &[u8]) -> Outcome {
        match code {
            cmd::QUERY_PORT => Ok(query_port()),
            cmd::QUERY_PKEY => {
                let mut p = vec![0u8; 8];
                p.put_u16(0, if r.u8_at(17) == 0 { 0xffff } else { 0 });
                Ok(p)
            }
            cmd::CREATE_UC => {
                let page = r.u64_at(16).checked_sub(bar2_pfn).ok_or(err::INVALID)?;
                if !(1..u64::from(super::regs::MAX_UAR)).contains(&page) {
                    return Err(err::INVALID);
                }
                let h = self.ucs.insert(page as u32).ok_or(err::NO_RESOURCES)?;
                Ok(h.to_le_bytes().to_vec())
            }
            cmd::DESTROY_UC => self
                .ucs
                .remove(r.u32_at(16))
                .map(|_| vec![])
                .ok_or(err::INVALID),
            cmd::CREATE_PD => {
                let ctx = r.u32_at(16);
                if ctx != 0 && self.ucs.get(ctx).is_none() {
                    return Err(err::INVALID);
                }
                let h = self.pds.insert(Pd { ctx }).ok_or(err::NO_RESOURCES)?;
                Ok(h.to_le_bytes().to_vec())
            }
            cmd::DESTROY_PD => self
                .pds
                .remove(r.u32_at(16))
                .map(|_| vec![])
                .ok_or(err::INVALID),
            cmd::CREATE_MR => self.create_mr(dma, r),
            cmd::DESTROY_MR => self
                .mrs
                .remove(r.u32_at(16))
                .map(|_| vec![])
                .ok_or(err::INVALID),
            cmd::CREATE_CQ => self.create_cq(dma, r),
            cmd::DESTROY_CQ => {
                let h = r.u32_at(16);
                if self
                    .qps
                    .iter()
                    .any(|(_, q)| q.send_cq == h || q.recv_cq == h)
                {
                    return Err(err::INVALID);
                }
                self.cqs.remove(h).map(|_| vec![]).ok_or(err::INVALID)
            }
            cmd::CREATE_QP => self.create_qp(dma, r),
            cmd::MODIFY_QP => self.modify_qp(r),
            cmd::QUERY_QP => self.query_qp(r),
            cmd::DESTROY_QP => {
                let h = r.u32_at(16);
                self.drop_inflight(h);
                self.qps.remove(h).map(|_| vec![0; 4]).ok_or(err::INVALID)
            }
            cmd::CREATE_BIND => {
                let i = r.u32_at(24) as usize;
                let slot = self.gids.get_mut(i).ok_or(err::INVALID)?;
                let mut g = [0u8; 16];
                g.copy_from_slice(&r[28..44]);
                *slot = Some(g);
                Ok(vec![])
            }
            cmd::DESTROY_BIND => {
                let i = r.u32_at(16) as usize;
                *self.gids.get_mut(i).ok_or(err::INVALID)? = None;
                Ok(vec![])
            }
            _ => Err(err::BAD_COMMAND),
        }
    }

    fn create_mr(&mut self, dma: &DmaHandle, r: &[u8]) -> Outcome {
        let (start, length, pdir) = (r.u64_at(16), r.u64_at(24), r.u64_at(32));
        let (pd, acc, flags, nchunks) = (r.u32_at(40), r.u32_at(44), r.u32_at(48), r.u32_at(52));
        if self.pds.get(pd).is_none() {
            return Err(err::INVALID);
        }
        let kind = match flags {
            mr_flags::DMA => {
                // Bus addresses are no place for remote access.
                if acc & !access::LOCAL_WRITE != 0 {
                    return Err(err::INVALID);
                }
                MrKind::Dma
            }
            mr_flags::FRMR => {
                if !(1..=limit::MAX_FAST_REG_PAGES).contains(&nchunks) {
                    return Err(err::INVALID);
                }
                MrKind::Fast {
                    capacity: nchunks,
                    valid: false,
                    iova: 0,
                    length: 0,
                    pages: Vec::new(),
                }
            }
            0 => {
                // The pages must cover [start, start + length): no length
                // beyond what the page list backs (CVE-2021-3582).
                let need = (start & 0xfff).checked_add(length).ok_or(err::INVALID)?;
                if length == 0
                    || length > limit::MAX_MR_SIZE
                    || u64::from(nchunks) * 4096 < need
                    || nchunks > limit::MAX_PDIR_PAGES
                {
                    return Err(err::INVALID);
                }
                let pages = mem::page_dir(dma, pdir, nchunks).ok_or(err::BAD_ADDRESS)?;
                MrKind::User {
                    start,
                    length,
                    pages,
                }
            }
            _ => return Err(err::INVALID),
        };
        let mr = Mr {
            pd,
            access: acc,
            key: 0,
            kind,
        };
        let h = self.mrs.insert(mr).ok_or(err::NO_RESOURCES)?;
        let key = h << 8;
        if let Some(m) = self.mrs.get_mut(h) {
            m.key = key;
        }
        let mut p = vec![0u8; 12];
        p.put_u32(0, h);
        p.put_u32(4, key);
        p.put_u32(8, key);
        Ok(p)
    }

    fn create_cq(&mut self, dma: &DmaHandle, r: &[u8]) -> Outcome {
        let (pdir, ctx, cqe, nchunks) = (r.u64_at(16), r.u32_at(24), r.u32_at(28), r.u32_at(32));
        if ctx != 0 && self.ucs.get(ctx).is_none() {
            return Err(err::INVALID);
        }
        pow2_within(cqe, limit::MAX_CQE)?;
        // The state page, then the CQEs: no zero-page ring (CVE-2021-3607),
        // and no more pages than one directory (CVE-2023-1544).
        let need = 1 + (u64::from(cqe) * ring::CQE).div_ceil(4096) as u32;
        if nchunks < need || nchunks > need + 1 {
            return Err(err::INVALID);
        }
        let pages = mem::page_dir(dma, pdir, nchunks).ok_or(err::BAD_ADDRESS)?;
        let cq = Cq {
            pages: Pages(pages),
            math: RingMath::new(cqe).ok_or(err::INVALID)?,
            tail: 0,
            armed: None,
            broken: false,
        };
        let h = self.cqs.insert(cq).ok_or(err::NO_RESOURCES)?;
        let mut p = vec![0u8; 8];
        p.put_u32(0, h);
        p.put_u32(4, cqe);
        Ok(p)
    }

    fn create_qp(&mut self, dma: &DmaHandle, r: &[u8]) -> Outcome {
        let pdir = r.u64_at(16);
        let (pd, scq, rcq) = (r.u32_at(24), r.u32_at(28), r.u32_at(32));
        let (swr, rwr, ssge, rsge) = (r.u32_at(40), r.u32_at(44), r.u32_at(48), r.u32_at(52));
        let (total, send_chunks) = (u32::from(r.u16_at(68)), u32::from(r.u16_at(70)));
        let (sig_all, kind, is_srq) = (r.u8_at(74) != 0, r.u8_at(75), r.u8_at(76) != 0);
        if self.pds.get(pd).is_none()
            || self.cqs.get(scq).is_none()
            || self.cqs.get(rcq).is_none()
            || is_srq
        {
            return Err(err::INVALID);
        }
        if !matches!(kind, qp_type::GSI | qp_type::RC | qp_type::UD) {
            return Err(err::INVALID);
        }
        pow2_within(swr, limit::MAX_QP_WR)?;
        pow2_within(rwr, limit::MAX_QP_WR)?;
        if ssge > limit::MAX_SGE || rsge > limit::MAX_SGE {
            return Err(err::INVALID);
        }
        let (sq_stride, rq_stride) = (stride(80, ssge.max(1)), stride(16, rsge.max(1)));
        let sq_pages = (u64::from(swr) * sq_stride).div_ceil(4096) as u32;
        let rq_pages = (u64::from(rwr) * rq_stride).div_ceil(4096) as u32;
        // Page 0 (state), the SQ's pages, the RQ's pages: each big enough.
        if send_chunks < sq_pages || total < 1 + send_chunks + rq_pages {
            return Err(err::INVALID);
        }
        let pages = mem::page_dir(dma, pdir, total).ok_or(err::BAD_ADDRESS)?;
        let (qpn, gsi) = match kind {
            qp_type::GSI => (1, true),
            _ => (0, false),
        };
        let qp = Qp {
            qpn,
            kind,
            state: qp_state::RESET,
            pd,
            send_cq: scq,
            recv_cq: rcq,
            sig_all,
            pages: Pages(pages),
            sq: WorkQueue {
                math: RingMath::new(swr).ok_or(err::INVALID)?,
                stride: sq_stride,
                max_sge: ssge,
                base: 4096,
                head: 0,
                state: 0,
            },
            rq: Some(WorkQueue {
                math: RingMath::new(rwr).ok_or(err::INVALID)?,
                stride: rq_stride,
                max_sge: rsge,
                base: 4096 * (1 + u64::from(send_chunks)),
                head: 0,
                state: 8,
            }),
            qkey: 0,
            dest_qpn: 0,
            av: Av::default(),
            access: 0,
            path_mtu: 3,
            sq_psn: 0,
            rq_psn: 0,
            issued: 0,
            outstanding: Default::default(),
            rnr: Default::default(),
        };
        let h = if gsi {
            self.qps
                .insert_at(1, qp)
                .then_some(1)
                .ok_or(err::NO_RESOURCES)?
        } else {
            let h = self.qps.insert_from(2, qp).ok_or(err::NO_RESOURCES)?;
            if let Some(q) = self.qps.get_mut(h) {
                q.qpn = h;
            }
            h
        };
        let mut p = vec![0u8; 28];
        p.put_u32(0, h);
        p.put_u32(4, h);
        p.put_u32(8, swr);
        p.put_u32(12, rwr);
        p.put_u32(16, ssge);
        p.put_u32(20, rsge);
        Ok(p)
    }

    fn modify_qp(&mut self, r: &[u8]) -> Outcome {
        let (h, mask) = (r.u32_at(16), r.u32_at(20));
        let a = &r[24..];
        let qp = self.qps.get_mut(h).ok_or(err::INVALID)?;
        if mask & qp_attr::QKEY != 0 {
            qp.qkey = a.u32_at(16);
        }
        if mask & qp_attr::PATH_MTU != 0 {
            qp.path_mtu = a.u32_at(8);
        }
        if mask & qp_attr::RQ_PSN != 0 {
            qp.rq_psn = a.u32_at(20) & 0xff_ffff;
        }
        if mask & qp_attr::SQ_PSN != 0 {
            qp.sq_psn = a.u32_at(24) & 0xff_ffff;
        }
        if mask & qp_attr::DEST_QPN != 0 {
            qp.dest_qpn = a.u32_at(28) & 0xff_ffff;
        }
        if mask & qp_attr::ACCESS_FLAGS != 0 {
            qp.access = a.u32_at(32);
        }
        if mask & qp_attr::AV != 0 {
            let ah = &a[80..120];
            let mut dgid = [0u8; 16];
            dgid.copy_from_slice(&ah[0..16]);
            let mut dmac = [0u8; 6];
            dmac.copy_from_slice(&ah[33..39]);
            qp.av = Av {
                dgid,
                sgid_index: ah.u8_at(20),
                dmac,
            };
        }
        if mask & qp_attr::STATE == 0 {
            return Ok(vec![]);
        }
        let s = a.u32_at(0);
        if s > qp_state::ERR {
            return Err(err::INVALID);
        }
        qp.state = s;
        if s == qp_state::RESET {
            self.drop_inflight(h);
            let qp = self.qps.get_mut(h).ok_or(err::INVALID)?;
            // The driver zeroes the ring indices: start over.
            qp.sq.head = 0;
            qp.issued = 0;
            qp.outstanding.clear();
            qp.rnr.clear();
            if let Some(rq) = &mut qp.rq {
                rq.head = 0;
            }
        }
        Ok(vec![])
    }

    /// Forgets the payload QP `h` holds in flight.
    fn drop_inflight(&mut self, h: u32) {
        if let Some(q) = self.qps.get(h) {
            let held: u64 = q.outstanding.iter().map(|p| p.bytes).sum();
            self.inflight = self.inflight.saturating_sub(held);
        }
    }

    fn query_qp(&self, r: &[u8]) -> Outcome {
        let qp = self.qps.get(r.u32_at(16)).ok_or(err::INVALID)?;
        let mut a = vec![0u8; 160];
        a.put_u32(0, qp.state);
        a.put_u32(4, qp.state);
        a.put_u32(8, qp.path_mtu);
        a.put_u32(16, qp.qkey);
        a.put_u32(20, qp.rq_psn);
        a.put_u32(24, qp.sq_psn);
        a.put_u32(28, qp.dest_qpn);
        a.put_u32(32, qp.access);
        a.put_u32(56, qp.sq.math.n());
        a.put_u32(60, qp.rq.as_ref().map_or(0, |q| q.math.n()));
        a.put_u32(64, qp.sq.max_sge);
        a.put_u32(68, qp.rq.as_ref().map_or(0, |q| q.max_sge));
        a.put(80, &qp.av.dgid);
        a.put(80 + 20, &[qp.av.sgid_index]);
        a.put(80 + 32, &[1]);
        a.put(80 + 33, &qp.av.dmac);
        Ok(a)
    }
}

/// QUERY_PORT's answer: active, 4096-byte maximum MTU, 1024 active,
/// RoCE v2 GIDs, link up (4X EDR).
fn query_port() -> Vec<u8> {
    let mut p = vec![0u8; 48];
    p.put_u32(0, 4); // state: ACTIVE
    p.put_u32(4, 5); // max_mtu: 4096
    p.put_u32(8, 3); // active_mtu: 1024
    p.put_u32(12, limit::GID_TBL_LEN);
    p.put_u32(16, 0); // port_cap_flags
    p.put_u32(20, MAX_MSG); // max_msg_sz
    p.put_u16(32, 1); // pkey_tbl_len
    p.put(39, &[1]); // max_vl_num
    p.put(43, &[2, 32, 5]); // active_width 4X, active_speed EDR, phys_state LinkUp
    p
}
