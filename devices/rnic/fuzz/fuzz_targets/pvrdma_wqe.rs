//! PVRDMA work queue entries from any bytes: send and receive WQEs parse
//! or are refused, never panic, and a parsed WQE never claims more SGEs
//! than allowed or than the bytes hold; completions round-trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rnic::pvrdma::wqe::{Cqe, RecvWqe, SendWqe, RQ_HDR, SGE, SQ_HDR};

fuzz_target!(|data: &[u8]| {
    let max = u32::from(data.first().copied().unwrap_or(0) % 33);
    if let Some(w) = SendWqe::parse(data, max) {
        assert!(w.sges.len() as u32 <= max);
        assert!(SQ_HDR + w.sges.len() * SGE <= data.len());
    }
    if let Some(w) = RecvWqe::parse(data, max) {
        assert!(w.sges.len() as u32 <= max);
        assert!(RQ_HDR + w.sges.len() * SGE <= data.len());
    }
    let c = Cqe {
        wr_id: data.len() as u64,
        ..Cqe::default()
    };
    assert_eq!(c.bytes()[..8], (data.len() as u64).to_le_bytes());
});
