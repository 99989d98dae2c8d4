//! The strategies for [`super::gen`]'s steps: mostly valid fields, with
//! invalid IDs, sizes, alignments, ranges and types mixed in.

use proptest::collection::vec;
use proptest::prelude::*;

use super::gen::*;

/// Any pointer target, mostly data pages.
fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        6 => any::<u32>().prop_map(Target::Data),
        2 => any::<u32>().prop_map(Target::Cmb),
        1 => any::<(bool, u16)>().prop_map(|(b, o)| Target::Peer(b, o)),
        1 => any::<(bool, u16)>().prop_map(|(b, o)| Target::Own(b, o)),
        2 => (0u8..3, any::<u64>()).prop_map(|(r, o)| Target::Outside(r, o)),
    ]
}

/// A pointer, `page` in `page + 1` cases page aligned.
fn ptr(page: u32) -> impl Strategy<Value = Ptr> {
    let align = prop_oneof![
        page => Just(Align::Page),
        4 => Just(Align::Dword),
        1 => Just(Align::Odd),
    ];
    (target(), align).prop_map(|(to, align)| Ptr { to, align })
}

/// A pointer to a data page in RAM or the CMB: valid wherever a page is.
fn page() -> impl Strategy<Value = Ptr> {
    let to = prop_oneof![
        3 => any::<u32>().prop_map(Target::Data),
        1 => any::<u32>().prop_map(Target::Cmb),
    ];
    to.prop_map(|to| Ptr {
        to,
        align: Align::Page,
    })
}

/// An SGL descriptor, segments nested up to `depth` deep.
fn desc(depth: u32) -> BoxedStrategy<Desc> {
    let leaf = prop_oneof![
        4 => (ptr(1), 0u32..0x1_0000).prop_map(|(p, n)| Desc::Data(p, n)),
        1 => (0u32..0x1_0000).prop_map(Desc::Bucket),
        1 => any::<u8>().prop_map(Desc::Bad),
    ];
    if depth == 0 {
        return leaf.boxed();
    }
    let seg_len = prop_oneof![
        6 => Just(SegLen::Exact),
        1 => (1u8..8).prop_map(SegLen::More),
        1 => Just(SegLen::Fewer),
        1 => (1u8..16).prop_map(SegLen::Ragged),
    ];
    let seg = (any::<bool>(), vec(desc(depth - 1), 0..6), seg_len)
        .prop_map(|(last, descs, len)| Desc::Seg { last, descs, len });
    prop_oneof![2 => leaf, 1 => seg].boxed()
}

/// A data pointer.
pub fn dptr() -> impl Strategy<Value = Dptr> {
    let skip = prop_oneof![3 => Just(0u16), 1 => 0u16..512];
    let entries = prop_oneof![2 => vec(page(), 1..6), 1 => vec(ptr(8), 1..6)];
    let prp2 = prop_oneof![
        1 => any::<u64>().prop_map(Prp2::Outside),
        6 => (skip, prop::bool::weighted(0.05), entries)
            .prop_map(|(skip, odd, entries)| Prp2::List { skip, odd, entries }),
    ];
    let prp1 = prop_oneof![3 => page(), 2 => ptr(4)];
    prop_oneof![
        7 => (prp1, prp2).prop_map(|(p1, p2)| Dptr::Prp(p1, p2)),
        3 => desc(2).prop_map(Dptr::Sgl),
        1 => (2u8..4, any::<[u8; 16]>()).prop_map(|(t, b)| Dptr::Raw(t, b)),
    ]
}

/// Mostly the two namespaces, sometimes any other ID.
fn nsid() -> impl Strategy<Value = Nsid> {
    prop_oneof![
        6 => Just(Nsid::One),
        3 => Just(Nsid::Two),
        1 => prop_oneof![Just(0), Just(3), Just(u32::MAX), any::<u32>()].prop_map(Nsid::Other),
    ]
}

/// Mostly short ranges inside, sometimes past the end or overflowing.
fn lba() -> impl Strategy<Value = Lba> {
    prop_oneof![
        8 => any::<(u32, u16)>().prop_map(|(a, n)| Lba::In(a, n % 16)),
        2 => any::<(u32, u16)>().prop_map(|(a, n)| Lba::In(a, n)),
        1 => any::<(u8, u16)>().prop_map(|(a, n)| Lba::Straddle(a, n)),
        1 => any::<(u32, u16)>().prop_map(|(a, n)| Lba::Beyond(a, n)),
        1 => any::<(u16, u16)>().prop_map(|(a, n)| Lba::Overflow(a, n)),
        1 => any::<u32>().prop_map(Lba::Huge),
    ]
}

/// Mostly the first few queue IDs, sometimes 0 or past 64.
fn qid() -> impl Strategy<Value = Qid> {
    prop_oneof![8 => 1u8..6, 1 => Just(0), 1 => 60u8..70]
}

/// Mostly small 0-based queue sizes, sometimes 0, the maximum or more.
fn qsize() -> impl Strategy<Value = u16> {
    prop_oneof![8 => 1u16..64, 1 => Just(0), 1 => Just(1023), 1 => 1000u16..1200]
}

/// Mostly the queue's slot, sometimes the CMB, nowhere or misaligned.
fn qbase() -> impl Strategy<Value = QBase> {
    prop_oneof![
        8 => Just(QBase::Slot),
        2 => Just(QBase::Cmb),
        1 => any::<u64>().prop_map(QBase::Outside),
        1 => (1u16..4096).prop_map(QBase::Unaligned),
    ]
}

/// An admin command.
fn admin() -> impl Strategy<Value = Admin> {
    let cns = prop_oneof![4 => 0u8..4, 1 => any::<u8>()];
    let lid = prop_oneof![4 => 1u8..4, 1 => any::<u8>()];
    let numd = prop_oneof![4 => 0u32..1024, 1 => any::<u32>()];
    let off = prop_oneof![4 => (0u64..1024).prop_map(|o| o * 4), 1 => any::<u64>()];
    let fid = prop_oneof![4 => 1u8..0x0c, 1 => any::<u8>()];
    let raw_op = prop_oneof![2 => Just(0x08u8), 2 => Just(0x18u8), 1 => any::<u8>()];
    prop_oneof![
        3 => (cns, nsid(), dptr()).prop_map(|(c, n, d)| Admin::Identify(c, n, d)),
        2 => (lid, numd, off, any::<bool>(), dptr())
            .prop_map(|(l, n, o, r, d)| Admin::GetLog(l, n, o, r, d)),
        2 => (fid.clone(), any::<u32>(), prop::bool::weighted(0.1))
            .prop_map(|(f, v, s)| Admin::SetFeatures(f, v, s)),
        2 => (fid, 0u8..5, any::<u32>()).prop_map(|(f, s, v)| Admin::GetFeatures(f, s, v)),
        4 => (qid(), qsize(), qbase(), prop::bool::weighted(0.9), any::<bool>(), 0u16..70)
            .prop_map(|(q, s, b, pc, ien, iv)| Admin::CreateCq(q, s, b, pc, ien, iv)),
        4 => (qid(), qsize(), qbase(), qid(), prop::bool::weighted(0.9))
            .prop_map(|(q, s, b, c, pc)| Admin::CreateSq(q, s, b, c, pc)),
        1 => qid().prop_map(Admin::DeleteSq),
        1 => qid().prop_map(Admin::DeleteCq),
        1 => Just(Admin::Aer),
        1 => (raw_op, any::<u32>(), any::<[u32; 6]>(), dptr())
            .prop_map(|(o, n, c, d)| Admin::Raw(o, n, c, d)),
    ]
}

/// An I/O command.
fn io() -> impl Strategy<Value = Io> {
    let fuse = prop_oneof![9 => Just(0u8), 1 => 1u8..4];
    let hi = prop_oneof![4 => Just(0u16), 1 => any::<u16>()];
    let range = (prop_oneof![3 => 0u32..64, 1 => any::<u32>()], lba());
    prop_oneof![
        8 => (0u8..3, nsid(), lba(), hi.clone(), fuse, dptr())
            .prop_map(|(k, n, l, h, f, d)| Io::Rw(k, n, l, h, f, d)),
        2 => (nsid(), lba(), hi).prop_map(|(n, l, h)| Io::WriteZeroes(n, l, h)),
        1 => nsid().prop_map(Io::Flush),
        2 => (nsid(), vec(range, 1..5), prop_oneof![4 => Just(0u8), 1 => any::<u8>()], any::<u32>())
            .prop_map(|(n, r, x, a)| Io::Dsm(n, r, x, a)),
        1 => (nsid(), any::<u8>(), any::<u32>(), dptr())
            .prop_map(|(n, r, a, d)| Io::DsmWild(n, r, a, d)),
        1 => (any::<u8>(), any::<u32>(), any::<[u32; 6]>(), dptr())
            .prop_map(|(o, n, c, d)| Io::Raw(o, n, c, d)),
    ]
}

/// A doorbell write the controller must not act on.
fn bell() -> impl Strategy<Value = Bell> {
    let width = prop_oneof![Just(1u8), Just(2), Just(4), Just(8)];
    prop_oneof![
        3 => (0u8..80, any::<bool>(), any::<u32>(), width)
            .prop_map(|(q, t, v, w)| Bell::NoQueue(q, t, v, w)),
        3 => (any::<u8>(), any::<bool>(), any::<u32>()).prop_map(|(q, t, v)| Bell::TooBig(q, t, v)),
        1 => (0u8..130, 1u8..4, any::<u32>()).prop_map(|(i, b, v)| Bell::Misaligned(i, b, v)),
        1 => any::<(u16, u32)>().prop_map(|(o, v)| Bell::Beyond(o, v)),
        1 => any::<(u8, bool)>().prop_map(|(q, t)| Bell::Same(q, t)),
    ]
}

/// Doorbell Buffer Config pages, mostly a valid pair.
fn shadow() -> impl Strategy<Value = Shadow> {
    prop_oneof![
        4 => (0u8..2).prop_map(Shadow::Pair),
        1 => Just(Shadow::ZeroEventIdx),
        1 => (1u16..4096).prop_map(Shadow::Unaligned),
        1 => any::<(bool, u64)>().prop_map(|(w, o)| Shadow::Outside(w, o)),
    ]
}

/// One step.
pub fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => admin().prop_map(Op::Admin),
        10 => (any::<u8>(), io()).prop_map(|(q, c)| Op::Io(q, c)),
        3 => bell().prop_map(Op::Bell),
        1 => shadow().prop_map(Op::Shadow),
        4 => Just(Op::Run),
        1 => Just(Op::Reset),
    ]
}
