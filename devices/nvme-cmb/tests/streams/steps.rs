//! One generated step against the driver: commands built and submitted,
//! doorbell writes the controller must ignore (or report as events),
//! shadow doorbell configuration, runs and resets.

use nvme_cmb::regs::reg;

use super::build::{outside, Builder};
use super::commands::{admin, io, Expect};
use super::driver::Driver;
use super::gen::{Bell, Op, Shadow};
use super::layout::{shadow_dbs, PAGE};

/// Doorbells: a tail and a head for the admin queue and 64 I/O queues.
const DOORBELLS: u64 = 130;

/// Runs `op`.
pub fn step(d: &mut Driver<'_>, b: &mut Builder<'_>, op: &Op) {
    match op {
        Op::Admin(a) => {
            let (cmd, e) = admin(b, a);
            d.admin(cmd, e);
        }
        Op::Io(sel, c) => {
            let ids: Vec<u16> = d.sqs.keys().copied().filter(|&q| q != 0).collect();
            if let Some(&qid) = ids.get(usize::from(*sel) % ids.len().max(1)) {
                let (cmd, e) = io(b, c);
                d.submit(qid, cmd, e);
            }
        }
        Op::Bell(bell) => ring(d, *bell),
        Op::Shadow(s) => {
            let (dbs, eis) = match *s {
                Shadow::Pair(p) => (shadow_dbs(p), shadow_dbs(p) + PAGE),
                Shadow::ZeroEventIdx => (shadow_dbs(0), 0),
                Shadow::Unaligned(o) => (
                    shadow_dbs(0) + u64::from(o % 4095) + 1,
                    shadow_dbs(0) + PAGE,
                ),
                Shadow::Outside(first, o) => {
                    let far = outside(0, o) & !(PAGE - 1);
                    if first {
                        (far, shadow_dbs(0) + PAGE)
                    } else {
                        (shadow_dbs(0), far)
                    }
                }
            };
            d.shadow_config(dbs, eis, Expect::default());
        }
        Op::Run => d.run(),
        Op::Reset => d.reset(),
    }
}

/// An existing queue's doorbell (`tail`: its SQ's), selected by `sel`,
/// with its current value.
fn existing(d: &Driver<'_>, sel: u8, tail: bool) -> (usize, u32) {
    let pick = |ids: Vec<(u16, u32)>| ids[usize::from(sel) % ids.len()];
    let (qid, v) = if tail {
        pick(d.sqs.iter().map(|(&q, s)| (q, s.tail)).collect())
    } else {
        pick(d.cqs.iter().map(|(&q, c)| (q, c.head)).collect())
    };
    (2 * usize::from(qid) + usize::from(!tail), v)
}

/// A doorbell write that must change no queue.
fn ring(d: &mut Driver<'_>, bell: Bell) {
    let off = |index: usize| reg::DOORBELLS + 4 * index as u64;
    match bell {
        Bell::NoQueue(q, tail, v, width) => {
            let qid = u32::from(q % 80);
            if d.maybe_exists(qid, tail) {
                return;
            }
            let mut bytes = [0xff; 8];
            bytes[..4].copy_from_slice(&v.to_le_bytes());
            let n = usize::from(width).clamp(1, 8);
            d.rig
                .write(off(2 * qid as usize + usize::from(!tail)), &bytes[..n]);
        }
        Bell::TooBig(sel, tail, v) => {
            let (index, _) = existing(d, sel, tail);
            d.rig.write32(off(index), 1024 + v % (u32::MAX - 1024));
        }
        Bell::Misaligned(i, byte, v) => {
            let at = off(usize::from(i)) + u64::from(byte.clamp(1, 3));
            d.rig.write(at, &v.to_le_bytes()[..1]);
        }
        Bell::Beyond(o, v) => {
            let first = off(DOORBELLS as usize);
            let at = (first + u64::from(o) % (0x4000 - first)) & !3;
            d.rig.write32(at, v);
        }
        Bell::Same(sel, tail) => {
            let (index, v) = existing(d, sel, tail);
            d.ring(index, v);
        }
    }
}
