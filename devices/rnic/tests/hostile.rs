//! A buggy or hostile vmxnet3 driver: bad shared areas, ring sizes of 0
//! and 2^32 - 1, descriptors pointing nowhere, packets without an end.
//! The device refuses or drops, completes what it took, and returns.

mod common;

use common::*;
use proptest::prelude::*;
use rnic::vmxnet3::regs::{cmd, pt, vd};

/// Activation with `tweak` applied; the engine refuses it, and nothing
/// is sent or written after.
fn refused(tweak: impl FnOnce(&Rig)) {
    let r = Rig::new();
    r.activate(1);
    // The command itself reads 0: the shared area is read on the device
    // thread, which then refuses it.
    assert_eq!(r.activate_with(0, tweak), 0);
    let s = r.engine(0).stats();
    assert_eq!((s.activations, s.bad_activations), (0, 1));
    r.post_tx(0, &[frame(0, 1, 64, 0)], 0, 0, 0);
    r.run_all();
    assert!(r.tx_done(0).is_empty());
    assert!(r.rx_frames(1).is_empty());
    r.post_tx(1, &[frame(1, 0, 64, 0)], 0, 0, 0);
    r.run_all();
    assert!(
        r.rx_frames(0).is_empty(),
        "nothing lands in the refused NIC's rings"
    );
    assert_eq!(r.engine(0).stats().rx_frames, 0);
}

#[test]
fn a_bad_magic_is_refused() {
    refused(|r| r.poke32(ds(0), 0xdead_beef));
}

#[test]
fn zero_and_too_many_queues_are_refused() {
    refused(|r| r.poke(ds(0) + 0x3e, &[0, 1]));
    refused(|r| r.poke(ds(0) + 0x3e, &[1, 0]));
    refused(|r| r.poke(ds(0) + 0x3e, &[9, 1]));
    refused(|r| r.poke(ds(0) + 0x3e, &[255, 255]));
}

#[test]
fn ring_sizes_of_0_and_2_pow_32_minus_1_are_refused() {
    for size in [0, u32::MAX, 4097] {
        refused(|r| r.poke32(qdesc(0) + 0x38, size));
        refused(|r| r.poke32(qdesc(0) + 0x40, size));
        refused(|r| r.poke32(qdesc(0) + 256 + 0x38, size));
    }
    // An Rx completion ring serves both rings: up to 8192 entries.
    for size in [0, u32::MAX, 8193] {
        refused(|r| r.poke32(qdesc(0) + 256 + 0x40, size));
    }
}

#[test]
fn a_queue_descriptor_area_too_small_or_outside_ram_is_refused() {
    refused(|r| r.poke32(ds(0) + 0x34, 256));
    refused(|r| r.poke64(ds(0) + 0x28, u64::MAX - 100));
    refused(|r| r.poke64(ds(0) + 0x28, RAM_SIZE as u64 - 256));
}

#[test]
fn a_shared_area_outside_ram_is_refused() {
    let r = Rig::new();
    r.write(0, 1, vd::DSAL, 0xffff_f000);
    r.write(0, 1, vd::DSAH, 0xffff_ffff);
    assert_eq!(r.command(0, cmd::ACTIVATE_DEV), 0);
    r.run(0);
    assert_eq!(r.engine(0).stats().bad_activations, 1);
}

#[test]
fn a_tx_buffer_outside_ram_is_completed_but_not_sent() {
    let r = Rig::new();
    r.activate(0);
    r.activate(1);
    let eop = r.post_tx(0, &[frame(0, 1, 64, 0)], 0, 0, 0);
    // Point it past RAM (and past any BAR) after the fact.
    r.poke64(tx_ring(0) + 16 * u64::from(eop), 0x7f_0000_0000);
    r.write(0, 0, pt::TXPROD, 1);
    r.run_all();
    assert_eq!(r.tx_done(0), vec![eop]);
    assert!(r.rx_frames(1).is_empty());
    assert_eq!(r.engine(0).stats().tx_dropped, 1);
    // The NIC still works.
    let f = frame(0, 1, 64, 1);
    r.post_tx(0, std::slice::from_ref(&f), 0, 0, 0);
    r.write(0, 0, pt::IMR, 0);
    r.run_all();
    assert_eq!(r.rx_frames(1), vec![f]);
}

#[test]
fn a_packet_without_an_end_is_dropped_after_24_descriptors() {
    let r = Rig::new();
    r.activate(0);
    r.activate(1);
    // Every descriptor of the ring is the device's, none has EOP.
    for i in 0..TX_RING {
        let d = tx_ring(0) + 16 * u64::from(i);
        r.poke64(d, tx_buf(0, 0));
        r.poke32(d + 8, 100 | 1 << 14);
        r.poke32(d + 12, 0);
    }
    r.write(0, 0, pt::TXPROD, 0);
    r.run_all();
    let s = r.engine(0).stats();
    assert_eq!(s.tx_frames, 0);
    assert!(s.tx_dropped >= 1);
    assert_eq!(r.tx_done(0)[0], 23, "the 24th descriptor closes it");
    assert!(r.rx_frames(1).is_empty());
}

#[test]
fn a_malformed_offload_is_dropped() {
    let r = Rig::new();
    r.activate(0);
    r.activate(1);
    // CSUM with the field past the end; TSO of a non-TCP frame; MSS 0.
    r.post_tx(0, &[frame(0, 1, 64, 0)], 2, 14, 1000);
    r.post_tx(0, &[frame(0, 1, 64, 0)], 3, 54, 1448);
    r.run_all();
    assert_eq!(r.tx_done(0).len(), 2);
    assert_eq!(r.engine(0).stats().tx_dropped, 2);
    assert!(r.rx_frames(1).is_empty());
}

#[test]
fn an_rx_buffer_outside_ram_drops_the_frame() {
    let r = Rig::new();
    r.activate(0);
    r.activate(1);
    r.poke64(rx_ring(1), 0x7f_0000_0000);
    r.post_tx(0, &[frame(0, 1, 64, 0)], 0, 0, 0);
    r.run_all();
    assert_eq!(r.engine(1).stats().rx_dropped, 1);
    assert!(r.rx_frames(1).is_empty());
}

#[test]
fn a_frame_bigger_than_the_buffer_is_dropped() {
    let r = Rig::new();
    r.activate(0);
    r.activate(1);
    r.post_tx(0, &[frame(0, 1, RX_BUF as usize + 1, 0)], 0, 0, 0);
    r.run_all();
    assert_eq!(r.tx_done(0).len(), 1);
    assert_eq!(r.engine(1).stats().rx_dropped, 1);
}

#[test]
fn odd_register_accesses_do_nothing() {
    let r = Rig::new();
    let b1 = r.bar(0, 1);
    // A 2-byte write of CMD runs nothing; a 1-byte read reads 0.
    assert!(r.fabric.mmio_write(b1 + vd::CMD, &[0x02, 0xf0]));
    assert_eq!(r.read(0, 1, vd::CMD), 0);
    let mut b = [0xffu8; 1];
    assert!(r.fabric.mmio_read(b1 + vd::MACL, &mut b));
    assert_eq!(b, [0]);
    // Unaligned and out-of-range offsets.
    r.write(0, 0, 0xffc, 1);
    r.write(0, 1, 0xffc, 1);
    assert_eq!(r.read(0, 0, 0xffc), 0);
    // IMR of vectors the device lacks.
    r.write(0, 0, pt::IMR + 8, 0);
    assert_eq!(r.read(0, 0, pt::IMR + 8), 0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever the driver leaves in the shared area, queue descriptors
    /// and rings, activation and a few passes end, and nothing lands
    /// outside the rig's RAM (the DMA handle refuses it).
    #[test]
    fn garbage_rings_never_hang_or_panic(
        ds_bytes in proptest::collection::vec(any::<u8>(), 0x60),
        q_bytes in proptest::collection::vec(any::<u8>(), 512),
        ring in proptest::collection::vec(any::<u8>(), 0x1000),
        sizes in proptest::collection::vec(prop_oneof![Just(0u32), Just(1), Just(32), Just(u32::MAX), any::<u32>()], 5),
        keep_magic in any::<bool>(),
    ) {
        let r = Rig::new();
        r.activate(1);
        r.activate_with(0, |r| {
            r.poke(ds(0), &ds_bytes);
            if keep_magic {
                r.poke32(ds(0), 0xbabe_fee1);
                r.poke64(ds(0) + 0x28, qdesc(0));
                r.poke(ds(0) + 0x3e, &[1, 1]);
            }
            r.poke(qdesc(0), &q_bytes);
            let t = qdesc(0);
            r.poke64(t + 0x10, tx_ring(0));
            r.poke64(t + 0x20, tx_comp(0));
            r.poke32(t + 0x38, sizes[0]);
            r.poke32(t + 0x40, sizes[1]);
            let x = qdesc(0) + 256;
            r.poke64(x + 0x10, rx_ring(0));
            r.poke64(x + 0x20, rx_comp(0));
            r.poke32(x + 0x38, sizes[2]);
            r.poke32(x + 0x3c, sizes[3]);
            r.poke32(x + 0x40, sizes[4]);
            r.poke(tx_ring(0), &ring);
            r.poke(rx_ring(0), &ring);
        });
        r.write(0, 0, pt::TXPROD, 0);
        r.post_tx(1, &[frame(1, 0, 64, 0)], 0, 0, 0);
        r.run_all();
        r.run_all();
    }
}
