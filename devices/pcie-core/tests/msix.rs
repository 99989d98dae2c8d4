//! MSI-X driven the way a guest driver drives it: program the table, enable
//! in Message Control, mask and unmask, read the PBA.

use pcie_core::{msix_control, msix_reg, ConfigSpace, Error, MsiMessage, Msix, MsixPlacement};

const TABLE: MsixPlacement = MsixPlacement {
    bar: 0,
    offset: 0x1000,
};
const PBA: MsixPlacement = MsixPlacement {
    bar: 4,
    offset: 0x800,
};

fn setup(vectors: u16) -> (ConfigSpace, Msix) {
    let mut cs = ConfigSpace::new();
    let m = Msix::add(&mut cs, vectors, TABLE, PBA).unwrap();
    (cs, m)
}

/// Entry `v` as a driver writes it: address, upper address, data, control.
fn program(
    cs: &ConfigSpace,
    m: &mut Msix,
    v: u64,
    addr: u64,
    data: u32,
    masked: bool,
) -> Vec<MsiMessage> {
    let mut e = [0u8; 16];
    e[0..4].copy_from_slice(&(addr as u32).to_le_bytes());
    e[4..8].copy_from_slice(&((addr >> 32) as u32).to_le_bytes());
    e[8..12].copy_from_slice(&data.to_le_bytes());
    e[12..16].copy_from_slice(&u32::from(masked).to_le_bytes());
    m.table_write(cs, v * 16, &e)
}

fn control(cs: &mut ConfigSpace, m: &Msix, value: u16) {
    cs.write(m.capability() + msix_reg::CONTROL, &value.to_le_bytes());
}

fn pba(m: &Msix) -> u64 {
    let mut b = [0u8; 8];
    m.pba_read(0, &mut b);
    u64::from_le_bytes(b)
}

#[test]
fn the_capability_reads_as_the_spec_lays_it_out() {
    let (cs, m) = setup(4);
    let at = m.capability();
    assert_eq!(cs.u8_at(at), 0x11, "capability ID");
    assert_eq!(
        cs.u16_at(at + msix_reg::CONTROL),
        3,
        "table size N-1, disabled"
    );
    assert_eq!(cs.u32_at(at + msix_reg::TABLE), 0x1000);
    assert_eq!(cs.u32_at(at + msix_reg::PBA), 0x804, "offset | BIR 4");
    assert_eq!((m.table_len(), m.pba_len()), (64, 8));

    // Only Enable and Function Mask are writable.
    let mut cs = cs;
    cs.write(at + msix_reg::CONTROL, &0xffffu16.to_le_bytes());
    assert_eq!(cs.u16_at(at + msix_reg::CONTROL), 0xc003);
    cs.write(at + msix_reg::TABLE, &0xffff_ffffu32.to_le_bytes());
    assert_eq!(cs.u32_at(at + msix_reg::TABLE), 0x1000);
}

#[test]
fn vectors_start_masked_and_fire_only_when_enabled_and_unmasked() {
    let (mut cs, mut m) = setup(4);
    // Reset state: every vector masked (Vector Control bit 0).
    let mut ctl = [0u8; 4];
    for v in 0..4 {
        m.table_read(v * 16 + 12, &mut ctl);
        assert_eq!(u32::from_le_bytes(ctl), 1, "vector {v}");
    }
    assert!(program(&cs, &mut m, 2, 0xfee0_1000, 0x4032, false).is_empty());
    // Disabled: nothing is sent, nothing is pending.
    assert_eq!(m.trigger(&cs, 2), None);
    assert_eq!(pba(&m), 0);

    control(&mut cs, &m, msix_control::ENABLE);
    let msg = MsiMessage {
        addr: 0xfee0_1000,
        data: 0x4032,
    };
    assert_eq!(m.trigger(&cs, 2), Some(msg));
    assert_eq!(m.trigger(&cs, 2), Some(msg), "edge: every trigger sends");
    // Vector 1 is still masked: it becomes pending, and goes when unmasked.
    assert_eq!(m.trigger(&cs, 1), None);
    assert_eq!(pba(&m), 1 << 1);
    assert!(m.is_pending(1));
    let due = program(&cs, &mut m, 1, 0xfee0_0000, 0x4031, false);
    assert_eq!(
        due,
        vec![MsiMessage {
            addr: 0xfee0_0000,
            data: 0x4031
        }]
    );
    assert_eq!(pba(&m), 0);
    // A vector the table does not have.
    assert_eq!(m.trigger(&cs, 4), None);
}

#[test]
fn masking_one_vector_or_the_function_holds_messages_pending() {
    let (mut cs, mut m) = setup(70);
    control(&mut cs, &m, msix_control::ENABLE);
    program(&cs, &mut m, 65, 0xfee0_2000, 0x4041, false);
    // Mask vector 65 with a DWORD write of Vector Control only.
    m.table_write(&cs, 65 * 16 + 12, &1u32.to_le_bytes());
    assert_eq!(m.trigger(&cs, 65), None);
    let mut q = [0u8; 8];
    m.pba_read(8, &mut q);
    assert_eq!(u64::from_le_bytes(q), 1 << 1, "bit 65 is QWORD 1 bit 1");
    // Writes to the PBA are not possible: it has no write method; reads
    // past it are zero.
    m.pba_read(16, &mut q);
    assert_eq!(q, [0; 8]);

    // Function Mask: unmasking the vector is not enough.
    control(
        &mut cs,
        &m,
        msix_control::ENABLE | msix_control::FUNCTION_MASK,
    );
    assert!(m
        .table_write(&cs, 65 * 16 + 12, &0u32.to_le_bytes())
        .is_empty());
    assert!(m.is_pending(65));
    control(&mut cs, &m, msix_control::ENABLE);
    assert_eq!(
        m.take_due(&cs),
        vec![MsiMessage {
            addr: 0xfee0_2000,
            data: 0x4041
        }]
    );
    assert!(!m.is_pending(65));
    assert!(m.take_due(&cs).is_empty());
}

#[test]
fn table_fields_keep_only_their_defined_bits_and_stray_accesses_are_harmless() {
    let (cs, mut m) = setup(2);
    // Address low bits 1:0 are reserved; Vector Control keeps bit 0 only.
    m.table_write(&cs, 0, &0xfee0_0003u32.to_le_bytes());
    m.table_write(&cs, 12, &0xffff_fffeu32.to_le_bytes());
    let mut e = [0u8; 16];
    m.table_read(0, &mut e);
    assert_eq!(&e[0..4], &0xfee0_0000u32.to_le_bytes());
    assert_eq!(&e[12..16], &0u32.to_le_bytes());
    // Past the table: dropped, reads zero; no overflow at the top.
    m.table_write(&cs, 32, &[0xff; 16]);
    m.table_write(&cs, u64::MAX - 2, &[0xff; 8]);
    let mut past = [0xaau8; 8];
    m.table_read(32, &mut past);
    assert_eq!(past, [0; 8]);
    m.table_read(u64::MAX - 3, &mut past);
    assert_eq!(past, [0; 8]);
    // reset() masks everything again.
    m.reset();
    m.table_read(12, &mut e[..4]);
    assert_eq!(&e[..4], &1u32.to_le_bytes());
}

#[test]
fn bad_shapes_are_refused() {
    let mut cs = ConfigSpace::new();
    for (v, t, p) in [
        (0, TABLE, PBA),
        (2049, TABLE, PBA),
        (1, MsixPlacement { bar: 6, offset: 0 }, PBA),
        (1, TABLE, MsixPlacement { bar: 0, offset: 4 }),
    ] {
        assert!(
            matches!(
                Msix::add(&mut cs, v, t, p),
                Err(Error::FieldOutOfRange { .. })
            ),
            "{v} {t:?} {p:?}"
        );
    }
}

mod hostile {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Table(u64, Vec<u8>),
        Control(u16),
        Trigger(u16),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u64..200, proptest::collection::vec(any::<u8>(), 0..24))
                .prop_map(|(o, d)| Op::Table(o, d)),
            any::<u16>().prop_map(Op::Control),
            (0u16..12).prop_map(Op::Trigger),
        ]
    }

    proptest! {
        /// Whatever a driver writes, in any order and size: no panic, no
        /// pending bit past the table, and every message sent is what the
        /// table holds for that vector at that moment.
        #[test]
        fn any_sequence_of_guest_accesses_is_safe(ops in proptest::collection::vec(op(), 1..60)) {
            let (mut cs, mut m) = setup(9);
            for op in ops {
                match op {
                    Op::Table(o, d) => { m.table_write(&cs, o, &d); }
                    Op::Control(v) => control(&mut cs, &m, v),
                    Op::Trigger(v) => {
                        let mut e = [0u8; 16];
                        m.table_read(u64::from(v) * 16, &mut e);
                        if let Some(msg) = m.trigger(&cs, v) {
                            let lo = u32::from_le_bytes(e[0..4].try_into().unwrap());
                            let hi = u32::from_le_bytes(e[4..8].try_into().unwrap());
                            prop_assert!(v < 9);
                            prop_assert_eq!(msg.addr, u64::from(lo) | (u64::from(hi) << 32));
                            prop_assert_eq!(msg.data, u32::from_le_bytes(e[8..12].try_into().unwrap()));
                            prop_assert_eq!(e[12] & 1, 0, "sent while masked");
                        }
                    }
                }
                let mut q = [0u8; 16];
                m.pba_read(0, &mut q);
                prop_assert_eq!(u64::from_le_bytes(q[0..8].try_into().unwrap()) >> 9, 0);
                prop_assert_eq!(&q[8..], &[0u8; 8][..]);
            }
        }
    }
}
