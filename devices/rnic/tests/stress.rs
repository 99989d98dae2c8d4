//! Concurrency: both NICs' engines on threads of their own, a "vCPU"
//! thread posting traffic both ways, and another reading and writing
//! registers all the while. Every frame must arrive, byte for byte, and
//! nothing may deadlock (each engine's DMA runs with no device lock held;
//! the function never waits for a DMA).

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use rnic::vmxnet3::regs::{pt, vd};

#[test]
fn traffic_both_ways_with_engines_on_their_own_threads() {
    let r = Arc::new(Rig::new());
    r.activate(0);
    r.activate(1);
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for n in 0..2 {
        let (r, stop) = (r.clone(), stop.clone());
        threads.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                r.run(n);
                std::thread::sleep(Duration::from_micros(50));
            }
        }));
    }
    {
        let (r, stop) = (r.clone(), stop.clone());
        threads.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                for n in 0..2 {
                    assert_eq!(
                        r.read(n, 1, vd::MACH),
                        u32::from(mac(n)[4]) | u32::from(mac(n)[5]) << 8
                    );
                    let _ = r.read(n, 0, pt::IMR);
                    r.write(n, 0, pt::IMR, 0);
                }
            }
        }));
    }
    const ROUNDS: usize = 200;
    let mut sent = [Vec::new(), Vec::new()];
    let mut got = [Vec::new(), Vec::new()];
    let t0 = Instant::now();
    for k in 0..ROUNDS {
        for from in 0..2 {
            let f = frame(from, 1 - from, 64 + (k * 7) % 1400, k as u8);
            r.post_tx(from, std::slice::from_ref(&f), 0, 0, 0);
            sent[1 - from].push(f);
        }
        // The driver's NAPI: reap both sides until this round is in.
        loop {
            for (n, g) in got.iter_mut().enumerate() {
                r.tx_done(n);
                g.extend(r.rx_frames(n));
            }
            if got[0].len() == k + 1 && got[1].len() == k + 1 {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "stalled at round {k}"
            );
            std::thread::yield_now();
        }
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(got, sent);
}
