//! Fuzzes command processing: controller 0 enabled with admin queues in a
//! guest RAM the input fills (so PRP lists, SGL segments, Dataset
//! Management ranges and queue contents are all fuzzed), raw 64-byte
//! admin and I/O SQEs whose data pointers may be steered into RAM, the
//! CMB or the peer's BARs, I/O queue pairs in RAM or the CMB, doorbell
//! writes of any value, register writes and resets, with engine runs
//! between them. Never panics.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use nvme_cmb::regs::reg;
use nvme_cmb::sqe::{admin_op, Command, SQE_SIZE};
use nvme_cmb_fuzz::{cmb_flags, Rig, ASQ, CMB_SIZE, RAM_SIZE};

/// Where a command's PRP1 and PRP2 (or SGL address) point.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Fix {
    /// As the entry has them.
    Raw,
    /// Into guest RAM (modulo its size).
    Ram,
    /// Into controller 0's CMB.
    Cmb,
    /// Into controller 1's BAR 0 or BAR 4.
    Peer,
}

/// One step of the stream.
#[derive(Arbitrary, Debug)]
enum Op {
    /// Guest RAM contents at `addr` (modulo the RAM size).
    Poke { addr: u32, data: Vec<u8> },
    /// A raw admin SQE.
    Admin { sqe: [u8; SQE_SIZE], fix: Fix },
    /// A raw SQE on the driver's I/O queue `q` (modulo 4, 1-based).
    Io {
        q: u8,
        sqe: [u8; SQE_SIZE],
        fix: Fix,
    },
    /// Create CQ then SQ `qid` with `entries` entries, the SQ in RAM or
    /// in the CMB.
    CreatePair {
        qid: u8,
        entries: u16,
        sq_in_cmb: bool,
    },
    /// A doorbell write of any value.
    Doorbell { index: u8, value: u32 },
    /// A register write (a dword of the register file).
    Reg { dword: u8, value: u32 },
    /// Controller reset (CC.EN 0 then 1).
    Reset,
    /// The device thread runs.
    Run,
}

/// The whole input: CMB support bits and CMSE (bit 5), memory page size,
/// admin queue entries, then the stream.
#[derive(Arbitrary, Debug)]
struct Input {
    flags: u8,
    mps: u8,
    admin_entries: u8,
    ops: Vec<Op>,
}

/// The driver's idea of a submission queue: base, size and tail.
#[derive(Debug, Clone, Copy)]
struct Q {
    base: u64,
    size: u32,
    tail: u32,
}

/// Steers the entry's data pointer per `fix`.
fn steer(rig: &Rig, sqe: &mut [u8; SQE_SIZE], fix: Fix) {
    let mut cmd = Command::parse(sqe);
    let (p1, p2) = (cmd.prp1(), cmd.prp2());
    let (n1, n2) = match fix {
        Fix::Raw => return,
        Fix::Ram => (p1 % RAM_SIZE as u64, p2 % RAM_SIZE as u64),
        Fix::Cmb => {
            let base = rig.bar(0, 2);
            (base + p1 % CMB_SIZE, base + p2 % CMB_SIZE)
        }
        Fix::Peer => {
            let bar = if p1 & 1 == 0 { 0 } else { 4 };
            let base = rig.bar(1, bar);
            (base + (p1 >> 1) % 0x4000, base + p2 % 0x4000)
        }
    };
    cmd.dptr[..8].copy_from_slice(&n1.to_le_bytes());
    // With an SGL, PRP2's bytes are the length and type: keep them.
    if !cmd.uses_sgl() {
        cmd.dptr[8..].copy_from_slice(&n2.to_le_bytes());
    }
    let raw = cmd.to_bytes();
    sqe[24..40].copy_from_slice(&raw[24..40]);
}

fuzz_target!(|input: Input| {
    let mut rig = Rig::new(cmb_flags(input.flags), input.flags & 0x40 != 0);
    let cmb = rig.bar(0, 2);
    if input.flags & 0x20 != 0 {
        rig.write64(0, reg::CMBMSC, 1 | 2 | cmb);
    }
    let entries = u32::from(input.admin_entries % 64).max(2);
    let mps = u32::from(input.mps % 6);
    rig.enable(0, entries, mps);
    let mut admin = Q {
        base: ASQ,
        size: entries,
        tail: 0,
    };
    let mut io: [Option<Q>; 4] = [None; 4];
    for op in input.ops.iter().take(256) {
        match op {
            Op::Poke { addr, data } => rig.poke(u64::from(*addr), data),
            Op::Admin { sqe, fix } => {
                let mut sqe = *sqe;
                steer(&rig, &mut sqe, *fix);
                rig.submit(0, 0, admin.base, admin.tail, admin.size, &sqe);
                admin.tail = (admin.tail + 1) % admin.size;
            }
            Op::Io { q, sqe, fix } => {
                let qid = usize::from(q % 4);
                let Some(mut s) = io[qid] else { continue };
                let mut sqe = *sqe;
                steer(&rig, &mut sqe, *fix);
                rig.submit(0, qid as u16 + 1, s.base, s.tail, s.size, &sqe);
                s.tail = (s.tail + 1) % s.size;
                io[qid] = Some(s);
            }
            Op::CreatePair {
                qid,
                entries,
                sq_in_cmb,
            } => {
                let i = usize::from(qid % 4);
                let qid = i as u32 + 1;
                let size = u32::from(*entries % 1100).max(1);
                let cq = 0x8_0000 + u64::from(qid) * 0x1_0000;
                let sq = if *sq_in_cmb {
                    cmb + u64::from(qid) * 0x1_0000
                } else {
                    0x4_0000 + u64::from(qid) * 0x1_0000
                };
                let q = qid | ((size - 1) << 16);
                let mk = |opcode, base: u64, cdw11| Command {
                    opcode,
                    dptr: prp1(base),
                    cdw10: q,
                    cdw11,
                    ..Command::default()
                };
                for cmd in [
                    mk(admin_op::CREATE_IO_CQ, cq, 1 | 2 | (qid << 16)),
                    mk(admin_op::CREATE_IO_SQ, sq, 1 | (qid << 16)),
                ] {
                    rig.submit(0, 0, admin.base, admin.tail, admin.size, &cmd.to_bytes());
                    admin.tail = (admin.tail + 1) % admin.size;
                }
                io[i] = Some(Q {
                    base: sq,
                    size,
                    tail: 0,
                });
            }
            Op::Doorbell { index, value } => {
                rig.write32(0, reg::DOORBELLS + 4 * u64::from(*index), *value);
            }
            Op::Reg { dword, value } => {
                // Below the doorbells: CC, AQA, ASQ, CMBMSC and the rest.
                rig.write32(0, 4 * u64::from(dword % 0x18), *value);
            }
            Op::Reset => {
                rig.write32(0, reg::CC, 0);
                rig.run(0);
                rig.enable(0, entries, mps);
                admin.tail = 0;
                io = [None; 4];
            }
            Op::Run => rig.run(0),
        }
    }
    rig.run(0);
});

/// A data pointer whose PRP1 is `base`.
fn prp1(base: u64) -> [u8; 16] {
    let mut d = [0; 16];
    d[..8].copy_from_slice(&base.to_le_bytes());
    d
}
