//! vmxnet3's Tx path on guest bytes: descriptors parsed from arbitrary
//! 16-byte words, then the SOP's offload applied to an arbitrary frame.
//! Nothing may panic, and every frame that leaves is no longer than the
//! input allows (headers repeated per segment).
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use rnic::vmxnet3::{apply_offload, RxDesc, TxDesc};

#[derive(Debug, Arbitrary)]
struct Input {
    desc: [u8; 16],
    rx: [u8; 16],
    frame: Vec<u8>,
}

fuzz_target!(|inp: Input| {
    let d = TxDesc::parse(&inp.desc);
    assert!((1..=16384).contains(&d.len));
    let _ = RxDesc::parse(&inp.rx);
    let n = inp.frame.len();
    if let Ok(frames) = apply_offload(inp.frame, d.om, d.hlen, d.msscof) {
        let total: usize = frames.iter().map(Vec::len).sum();
        // Ethernet, VLAN, IPv4 and TCP headers: at most 18 + 60 + 60.
        assert!(total <= n + frames.len() * 138);
        assert!(frames.len() <= rnic::vmxnet3::MAX_SEGMENTS);
    }
});
