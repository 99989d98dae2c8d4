//! vmxnet3 function 0 driven by the Rust driver in `common`: identity,
//! commands, transmit and receive with the bytes checked, ring wrap,
//! interrupt masking, offloads, quiesce.

mod common;

use common::*;
use rnic::vmxnet3::regs::{cmd, pt, vd};

#[test]
fn it_is_a_vmxnet3_revision_1_with_two_4k_bars_and_msi() {
    let r = Rig::new();
    assert_eq!(r.cfg_read(0, 0), 0x07b0_15ad);
    assert_eq!(r.cfg_read(0, 8), 0x0200_0001, "class 02/00/00, revision 1");
    assert_eq!(r.cfg_read(0, 0x2c), 0x07b0_15ad, "subsystem");
    // BAR sizes as the firmware found them: 4 KiB each, 32-bit memory.
    let regions = r.fabric.bar_regions(r.nics[0].id);
    let mut bars: Vec<(u8, u64)> = regions.iter().map(|b| (b.index, b.size)).collect();
    bars.sort();
    assert_eq!(bars, vec![(0, 0x1000), (1, 0x1000)]);
    assert_eq!(r.read(0, 1, vd::VRRS), 1);
    assert_eq!(r.read(0, 1, vd::UVRS), 1);
    // MAC 00:50:56:aa:00:01, bytes in order.
    assert_eq!(r.read(0, 1, vd::MACL), 0xaa56_5000);
    assert_eq!(r.read(0, 1, vd::MACH), 0x0100);
    assert_eq!(r.command(0, cmd::GET_LINK), 0x2710_0001, "10 Gb/s, up");
    assert_eq!(
        r.command(0, cmd::GET_CONF_INTR),
        2,
        "MSI, automatic masking"
    );
    // An unknown command reads 0; a command with no shared area fails.
    assert_eq!(r.command(0, 0xf00d_00ff), 0);
    assert_ne!(r.command(0, cmd::ACTIVATE_DEV), 0);
}

#[test]
fn the_driver_sets_the_mac() {
    let r = Rig::new();
    r.write(0, 1, vd::MACL, 0x4433_2211);
    r.write(0, 1, vd::MACH, 0x6655);
    assert_eq!(r.read(0, 1, vd::MACL), 0x4433_2211);
    assert_eq!(r.read(0, 1, vd::MACH), 0x6655);
}

#[test]
fn a_frame_crosses_the_wire_byte_for_byte_and_both_sides_complete() {
    let r = Rig::new();
    r.activate(0);
    r.activate(1);
    let f = frame(0, 1, 600, 7);
    let eop = r.post_tx(0, std::slice::from_ref(&f), 0, 0, 0);
    r.run_all();
    assert_eq!(r.tx_done(0), vec![eop], "one completion naming the EOP");
    assert_eq!(r.rx_frames(1), vec![f], "the same bytes arrived");
    assert!(r.rx_frames(0).is_empty(), "a port does not hear itself");
    assert_eq!(r.irqs(0), 1, "Tx completion interrupt");
    assert_eq!(r.irqs(1), 1, "Rx interrupt");
    let s = r.engine(0).stats();
    assert_eq!((s.tx_packets, s.tx_frames, s.tx_dropped), (1, 1, 0));
    assert_eq!(r.engine(1).stats().rx_frames, 1);
}

#[test]
fn a_packet_over_several_descriptors_is_gathered_in_order() {
    let r = Rig::new();
    r.activate(0);
    r.activate(1);
    let f = frame(0, 1, 1400, 3);
    let parts = vec![f[..100].to_vec(), f[100..900].to_vec(), f[900..].to_vec()];
    let eop = r.post_tx(0, &parts, 0, 0, 0);
    assert_eq!(eop, 2);
    r.run_all();
    assert_eq!(r.tx_done(0), vec![2]);
    assert_eq!(r.rx_frames(1), vec![f]);
}

#[test]
fn rings_wrap_and_generations_flip_on_both_sides() {
    let r = Rig::new();
    r.activate(0);
    r.activate(1);
    let mut sent = Vec::new();
    let mut got = Vec::new();
    let mut eops = Vec::new();
    let mut done = Vec::new();
    // 100 packets, two descriptors each, through 32-entry rings.
    for k in 0..100u32 {
        let f = frame(0, 1, 200 + k as usize, k as u8);
        let parts = vec![f[..60].to_vec(), f[60..].to_vec()];
        eops.push(r.post_tx(0, &parts, 0, 0, 0));
        sent.push(f);
        r.run_all();
        done.extend(r.tx_done(0));
        got.extend(r.rx_frames(1));
        // The driver unmasks after each NAPI poll.
        r.write(0, 0, pt::IMR, 0);
        r.write(1, 0, pt::IMR, 0);
    }
    assert_eq!(done, eops, "in order, one per packet");
    assert_eq!(got, sent);
}

#[test]
fn automatic_masking_holds_an_interrupt_until_the_driver_unmasks() {
    let r = Rig::new();
    r.activate(0);
    r.activate(1);
    r.post_tx(0, &[frame(0, 1, 64, 1)], 0, 0, 0);
    r.run_all();
    assert_eq!(r.irqs(1), 1);
    assert_eq!(r.read(1, 0, pt::IMR), 1, "masked when it fired");
    r.post_tx(0, &[frame(0, 1, 64, 2)], 0, 0, 0);
    r.run_all();
    assert_eq!(r.irqs(1), 1, "masked: pending, not sent");
    assert_eq!(r.rx_frames(1).len(), 2, "the frame is there all the same");
    r.write(1, 0, pt::IMR, 0);
    r.run(1);
    assert_eq!(r.irqs(1), 2, "unmasking sends the pending interrupt");
}

#[test]
fn frames_find_no_buffer_when_the_driver_has_not_refilled() {
    let r = Rig::new();
    r.activate(0);
    r.activate(1);
    // RX_RING - 1 buffers are posted; the one after them is not.
    for k in 0..RX_RING {
        r.post_tx(0, &[frame(0, 1, 100, k as u8)], 0, 0, 0);
        r.run_all();
        r.tx_done(0);
        r.write(0, 0, pt::IMR, 0);
    }
    let s = r.engine(1).stats();
    assert_eq!(s.rx_frames, u64::from(RX_RING - 1));
    assert_eq!(s.rx_dropped, 1);
    assert_eq!(r.rx_frames(1).len(), (RX_RING - 1) as usize);
}

/// A UDP/IPv4 frame whose checksum field holds the pseudo-header sum,
/// as Linux leaves it for CHECKSUM_PARTIAL.
fn udp_partial(payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&mac(1));
    f.extend_from_slice(&mac(0));
    f.extend_from_slice(&[0x08, 0x00]);
    let ip_len = 20 + 8 + payload.len();
    let mut ip = vec![
        0x45,
        0,
        (ip_len >> 8) as u8,
        ip_len as u8,
        0,
        1,
        0x40,
        0,
        64,
        17,
        0,
        0,
    ];
    ip.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
    let c = inet_sum(&[&ip]);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    let ulen = (8 + payload.len()) as u16;
    let pseudo: [u8; 12] = [
        10,
        0,
        0,
        1,
        10,
        0,
        0,
        2,
        0,
        17,
        (ulen >> 8) as u8,
        ulen as u8,
    ];
    // Folded, not inverted: !inet_sum gives the folded sum.
    let seed = !inet_sum(&[&pseudo]);
    f.extend_from_slice(&[0x30, 0x39, 0x00, 0x35]);
    f.extend_from_slice(&ulen.to_be_bytes());
    f.extend_from_slice(&seed.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

#[test]
fn checksum_offload_inserts_the_udp_checksum() {
    let r = Rig::new();
    r.activate(0);
    r.activate(1);
    let payload: Vec<u8> = (0..301u32).map(|i| (i * 7) as u8).collect();
    let f = udp_partial(&payload);
    // CSUM: start at the UDP header (34), field at 34 + 6.
    r.post_tx(0, std::slice::from_ref(&f), 2, 34, 40);
    r.run_all();
    let got = r.rx_frames(1);
    assert_eq!(got.len(), 1);
    let g = &got[0];
    assert_eq!(g[..40], f[..40], "everything before the field is untouched");
    assert_eq!(g[42..], f[42..]);
    // The receiver's check: pseudo header + UDP segment sums to 0.
    let ulen = (8 + payload.len()) as u16;
    let pseudo: [u8; 12] = [
        10,
        0,
        0,
        1,
        10,
        0,
        0,
        2,
        0,
        17,
        (ulen >> 8) as u8,
        ulen as u8,
    ];
    assert_eq!(inet_sum(&[&pseudo, &g[34..]]), 0, "a valid UDP checksum");
}

/// A TCP/IPv4 frame of `payload` as Linux hands it for TSO: IP total
/// length and checksum as for the whole, TCP checksum seeded.
fn tcp_tso(payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&mac(1));
    f.extend_from_slice(&mac(0));
    f.extend_from_slice(&[0x08, 0x00]);
    let ip_len = 20 + 20 + payload.len();
    let mut ip = vec![
        0x45,
        0,
        (ip_len >> 8) as u8,
        ip_len as u8,
        0x12,
        0x34,
        0x40,
        0,
        64,
        6,
        0,
        0,
    ];
    ip.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
    f.extend_from_slice(&ip);
    // Ports, seq 0x01000000, ack, data offset 5, flags ACK|PSH|FIN.
    f.extend_from_slice(&[0x04, 0xd2, 0x16, 0x2e, 1, 0, 0, 0, 0, 0, 0, 9, 0x50, 0x19]);
    f.extend_from_slice(&[0xff, 0xff, 0x12, 0x34, 0, 0]);
    f.extend_from_slice(payload);
    f
}

#[test]
fn tso_cuts_a_tcp_packet_into_valid_segments() {
    let r = Rig::new();
    r.activate(0);
    r.activate(1);
    let payload: Vec<u8> = (0..4000u32).map(|i| (i % 251) as u8).collect();
    let f = tcp_tso(&payload);
    // 54 bytes of headers, MSS 1448; spread over three descriptors.
    let parts = vec![f[..54].to_vec(), f[54..2000].to_vec(), f[2000..].to_vec()];
    r.post_tx(0, &parts, 3, 54, 1448);
    r.run_all();
    assert_eq!(r.tx_done(0).len(), 1, "one packet, one completion");
    let segs = r.rx_frames(1);
    assert_eq!(segs.len(), 3, "ceil(4000 / 1448) segments");
    let mut joined = Vec::new();
    for (i, s) in segs.iter().enumerate() {
        let len = s.len() - 54;
        assert_eq!(len, [1448, 1448, 1104][i]);
        let ip = &s[14..34];
        assert_eq!(u16::from_be_bytes([ip[2], ip[3]]) as usize, 40 + len);
        assert_eq!(u16::from_be_bytes([ip[4], ip[5]]), 0x1234 + i as u16);
        assert_eq!(inet_sum(&[ip]), 0, "IPv4 header checksum");
        let tcp = &s[34..];
        let seq = u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]);
        assert_eq!(seq, 0x0100_0000 + 1448 * i as u32);
        let flags = tcp[13];
        if i < 2 {
            assert_eq!(flags, 0x10, "ACK only before the last");
        } else {
            assert_eq!(flags, 0x19, "PSH and FIN on the last");
        }
        let tl = (tcp.len()) as u16;
        let pseudo: [u8; 12] = [10, 0, 0, 1, 10, 0, 0, 2, 0, 6, (tl >> 8) as u8, tl as u8];
        assert_eq!(inet_sum(&[&pseudo, tcp]), 0, "TCP checksum");
        joined.extend_from_slice(&tcp[20..]);
    }
    assert_eq!(joined, payload);
}

#[test]
fn quiesce_stops_transmit_and_receive_until_activated_again() {
    let r = Rig::new();
    r.activate(0);
    r.activate(1);
    r.command(1, cmd::QUIESCE_DEV);
    r.post_tx(0, &[frame(0, 1, 80, 1)], 0, 0, 0);
    r.run_all();
    assert_eq!(r.tx_done(0).len(), 1, "the sender still sends");
    assert!(r.rx_frames(1).is_empty(), "a quiesced NIC writes nothing");
    r.command(0, cmd::QUIESCE_DEV);
    r.post_tx(0, &[frame(0, 1, 80, 2)], 0, 0, 0);
    r.run_all();
    assert!(r.tx_done(0).is_empty(), "nor completes anything");
    // RESET and activate again: rings start over at index 0, gen 1.
    r.command(0, cmd::RESET_DEV);
    r.activate(0);
    r.activate(1);
    let f = frame(0, 1, 90, 3);
    assert_eq!(r.post_tx(0, std::slice::from_ref(&f), 0, 0, 0), 0);
    r.run_all();
    assert_eq!(r.tx_done(0), vec![0]);
    assert_eq!(r.rx_frames(1), vec![f]);
}

#[test]
fn the_tx_doorbells_are_ioeventfds_on_bar_0() {
    let r = Rig::new();
    let bells = r.fabric.doorbells(r.nics[0].id);
    assert_eq!(bells.len(), 8);
    assert!(bells.iter().all(|b| b.bar == 0 && b.eventfd));
    assert_eq!(bells[0].offset, pt::TXPROD);
    // Rung through its eventfd (no trapped write), the engine sends.
    r.activate(0);
    r.activate(1);
    let f = frame(0, 1, 70, 9);
    let mut h = *r.nics[0].host.lock().unwrap();
    let d = tx_ring(0);
    r.poke(tx_buf(0, 0), &f);
    r.poke64(d, tx_buf(0, 0));
    r.poke32(d + 8, 70 | 1 << 14);
    r.poke32(d + 12, 3 << 12);
    h.tx_next = 1;
    *r.nics[0].host.lock().unwrap() = h;
    pcie_core::DeviceWorker::doorbell(&mut *r.engine(0), 0);
    r.run(1);
    assert_eq!(r.tx_done(0), vec![0]);
    assert_eq!(r.rx_frames(1), vec![f]);
}
