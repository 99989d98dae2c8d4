//! `p2pvm-nvme-raw`: a hostile NVMe host in guest user space. It takes a
//! controller from Linux's `nvme` driver, drives it register by register
//! (BAR 0 through sysfs `resource0`, queues and buffers in mlock'ed pages
//! whose bus addresses come from `/proc/self/pagemap`, completions polled
//! on their phase tags), does what a well-behaved driver never does, and
//! checks the controller's answers against NVMe Base 1.4. Afterwards it
//! resets the controller and gives it back to the `nvme` driver. Static,
//! no dependencies but libc.
//!
//! ```text
//! p2pvm-nvme-raw bad-doorbell BDF  doorbells of queues that do not exist and
//!     beyond a queue's size: Asynchronous Events (type, info, log page), their
//!     masking until the Error log is read with RAE = 0, and the controller
//!     going on without a reset (NVMe 1.4 §4.1 asks for none)
//! p2pvm-nvme-raw bad-prp BDF       PRPs into unmapped bus space (Data Transfer
//!     Error), not dword aligned, with offsets after the first (PRP Offset
//!     Invalid), the Error log entry of that command, a good Identify (its VID
//!     is the PCI vendor ID), a transfer one page beyond MDTS (Invalid Field)
//! p2pvm-nvme-raw zero-queue BDF    Create I/O CQ/SQ with QSIZE 0, above
//!     CAP.MQES, on a CQ that does not exist, with a queue ID in use or beyond
//!     what Set Features granted; valid ones that work; deleting a CQ in use
//! p2pvm-nvme-raw cq-overrun BDF    a 2-entry CQ under an 8-entry SQ with 4
//!     commands: never more than 1 unconsumed entry, each CID exactly once;
//!     CQ head doorbells beyond its size (Asynchronous Event) and past its tail
//! ```
//! Each check prints `ok NAME: DETAILS` or `FAIL NAME: expected ... got ...`
//! (and `note NAME: ...` for what the spec leaves open); the exit status is
//! 1 if any failed. BDFs are `bb:dd.f` or `0000:bb:dd.f`.

#[path = "nvme_raw/admin.rs"]
mod admin;
#[path = "nvme_raw/checks.rs"]
mod checks;
#[path = "nvme_raw/ctrl.rs"]
mod ctrl;
#[path = "shared/sysfs_bar.rs"]
mod sysfs_bar;

use std::io::Result;
use std::time::Duration;

use admin::{create_cq, create_sq, get_log, give_back, identify, newest_error, op, take};
use checks::{note_event, Checks};
use ctrl::{fail, poll, sysfs, Bar, Cmd, Cqe, Ctrl, Dma, Page, Queue, ADMIN_ENTRIES, WAIT};

/// Bus space nothing decodes: far above RAM and both PCI apertures.
const UNMAPPED: u64 = 0x7f_0000_0000;
/// How long to watch for something that must not happen.
const QUIET: Duration = Duration::from_millis(300);

/// Sends an admin command and makes sure the controller processed
/// everything before it: doorbell writes are applied, and events posted,
/// before the commands they precede complete.
fn barrier(c: &mut Ctrl, p: &Page) -> Result<()> {
    let e = identify(c, p.phys, 0)?;
    std::thread::sleep(QUIET);
    (e.status == 0)
        .then_some(())
        .ok_or_else(|| fail(format!("Identify: {}", e.st())))
}

/// Clears the error events' mask (Error log read with RAE = 0 into
/// `log`), holds an Asynchronous Event Request, does `bad` and returns
/// the request's completion if one comes within `limit`.
fn provoke(
    c: &mut Ctrl,
    (buf, log): (&Page, &Page),
    limit: Duration,
    bad: impl FnOnce(&Ctrl),
) -> Result<Option<Cqe>> {
    let e = get_log(c, 1, false, 64, log.phys, 0)?;
    if e.status != 0 {
        return Err(fail(format!("Get Log Page (Error): {}", e.st())));
    }
    let aer = c.submit(Cmd::new(op::AER));
    barrier(c, buf)?;
    bad(c);
    Ok(c.wait(aer, limit))
}

/// `bad-doorbell`: pages 0 (data) and 1 (Error log).
fn bad_doorbell(c: &mut Ctrl, pages: &[Page], k: &mut Checks) -> Result<()> {
    let (buf, log) = (&pages[0], &pages[1]);
    let before = newest_error(c, log)?;
    let aer = c.submit(Cmd::new(op::AER));
    barrier(c, buf)?;
    k.quiet("aer-held", c.wait(aer, Duration::ZERO));
    // SQ 7's tail doorbell: no such queue.
    c.ring_sq(7, 1);
    k.event("invalid-doorbell-register", c.wait(aer, WAIT), 0x00);
    let e = identify(c, buf.phys, 0)?;
    k.status("next-command-works", Some(e), 0, 0);
    let after = newest_error(c, log)?;
    if after.0 > before.0 {
        let good = after.1 == 0xffff && after.2 == 0xffff;
        let got = format!(
            "count {} sqid {:#x} cid {:#x} status {:#x}",
            after.0, after.1, after.2, after.3
        );
        k.ok(
            "error-log-entry",
            good,
            "sqid 0xffff cid 0xffff (not a command's error)",
            &got,
        );
    } else {
        println!(
            "note error-log-entry: no new Error log entry for the doorbell error (newest count {}, sqid {:#x} cid {:#x}), though the event points at LID 01h",
            after.0, after.1, after.2
        );
    }
    // Reading the Error log with RAE = 0 clears (unmasks) error events.
    let e = get_log(c, 1, false, 4096, log.phys, 0)?;
    k.status("error-log-read", Some(e), 0, 0);

    // A tail beyond the admin SQ's size.
    let aer = c.submit(Cmd::new(op::AER));
    barrier(c, buf)?;
    c.ring_sq(0, u32::from(ADMIN_ENTRIES) + 3);
    k.event("invalid-doorbell-value", c.wait(aer, WAIT), 0x01);
    let e = identify(c, buf.phys, 0)?;
    k.status("bogus-tail-ignored", Some(e), 0, 0);

    // Error events stay masked until the log is read with RAE = 0.
    let aer = c.submit(Cmd::new(op::AER));
    c.ring_sq(7, 1);
    barrier(c, buf)?;
    k.quiet("masked-until-log-read", c.wait(aer, Duration::ZERO));
    k.status(
        "error-log-read-rae",
        get_log(c, 1, true, 64, log.phys, 0).ok(),
        0,
        0,
    );
    c.ring_sq(7, 1);
    barrier(c, buf)?;
    k.quiet("still-masked-after-rae", c.wait(aer, Duration::ZERO));
    k.status(
        "error-log-read-clears",
        get_log(c, 1, false, 64, log.phys, 0).ok(),
        0,
        0,
    );
    barrier(c, buf)?;
    let retained = c.wait(aer, Duration::ZERO);
    let how = if retained.is_some() {
        "retained"
    } else {
        "dropped"
    };
    println!("note masked-event: an event raised while masked was {how} when the log was read");
    let e = retained.or_else(|| {
        c.ring_sq(7, 1);
        c.wait(aer, WAIT)
    });
    k.event("unmasked-by-log-read", e, 0x00);

    // NVMe 1.4 §4.1 only has the controller post the event; nothing asks
    // for a reset after it. The controller must simply go on.
    let s = c.csts();
    k.ok(
        "no-reset-needed",
        s & 3 == 1,
        "CSTS RDY=1 CFS=0",
        &format!("CSTS {s:#x}"),
    );
    let e = identify(c, buf.phys, 0)?;
    k.status("identify-after-all", Some(e), 0, 0);

    // The CQ head doorbell of a queue that does not exist.
    let e = provoke(c, (buf, log), WAIT, |c| c.ring_cq(7, 1))?;
    k.event("cq-doorbell-no-queue", e, 0x00);
    // Doorbells of queue 100: inside BAR 0, past the 64 queues supported.
    let e = provoke(c, (buf, log), QUIET, |c| c.ring_sq(100, 1))?;
    note_event("doorbell-past-max-queues", "SQ 100 tail", e);
    let e = identify(c, buf.phys, 0)?;
    k.status("identify-after-past-max", Some(e), 0, 0);
    Ok(())
}

/// `bad-prp`: pages 0-3 (data, data, PRP list, data).
fn bad_prp(bdf: &str, c: &mut Ctrl, pages: &[Page], k: &mut Checks) -> Result<()> {
    let (a, b, list, buf) = (&pages[0], &pages[1], &pages[2], &pages[3]);
    k.status("unmapped-prp1", identify(c, UNMAPPED, 0).ok(), 0, 0x04);
    k.status(
        "prp1-not-dword-aligned",
        identify(c, a.phys + 2, 0).ok(),
        0,
        0x13,
    );
    // 4 KiB from the middle of page a: the second half goes to PRP2, which
    // must then be page aligned.
    k.status(
        "prp2-offset",
        identify(c, a.phys + 0x800, b.phys + 0x100).ok(),
        0,
        0x13,
    );
    // 12 KiB of Error log through a PRP list whose first entry has an offset.
    list.fill(0);
    list.w32(0, (b.phys + 0x200) as u32);
    list.w32(4, ((b.phys + 0x200) >> 32) as u32);
    list.w32(8, buf.phys as u32);
    list.w32(12, (buf.phys >> 32) as u32);
    let e = get_log(c, 1, true, 3 * 4096, a.phys, list.phys).ok();
    let bad_cid = e.map(|e| e.cid);
    k.status("prp-list-entry-offset", e, 0, 0x13);
    // The newest Error log entry is that command's.
    let (count, sqid, cid, st) = newest_error(c, buf)?;
    let got = format!("count {count} sqid {sqid} cid {cid:#x} status {st:#x}");
    let want = format!(
        "sqid 0 cid {:#x} status 0x13 (SC in bits 7:0)",
        bad_cid.unwrap_or(0)
    );
    k.ok(
        "error-log-names-it",
        sqid == 0 && Some(cid) == bad_cid && st & 0x7ff == 0x13,
        &want,
        &got,
    );
    // A good Identify: Identify Controller's VID and SSVID are the PCI IDs.
    buf.fill(!0);
    k.status("good-identify", identify(c, buf.phys, 0).ok(), 0, 0);
    let id = |f: &str| {
        std::fs::read_to_string(sysfs(bdf, f))
            .unwrap_or_default()
            .trim()
            .to_owned()
    };
    let vid = format!("{:#06x}", buf.r32(0) & 0xffff);
    let ssvid = format!("{:#06x}", buf.r32(0) >> 16);
    k.eq("identify-vid", id("vendor"), vid);
    k.eq("identify-ssvid", id("subsystem_vendor"), ssvid);
    let sn = String::from_utf8_lossy(&buf.bytes(4, 20)).trim().to_owned();
    k.ok(
        "identify-sn",
        sn.starts_with("P2PVM-NVME"),
        "P2PVM-NVME*",
        &sn,
    );
    // One page more than MDTS, through a valid PRP list (every entry page
    // b): a command beyond MDTS is aborted with Invalid Field in Command
    // (Identify Controller, MDTS), log pages included.
    let mdts = buf.bytes(77, 1)[0];
    if !(1..=9).contains(&mdts) {
        println!("note log-beyond-mdts: MDTS {mdts}, not probed");
        return Ok(());
    }
    let n = 1usize << mdts;
    for i in 0..n {
        list.w32(8 * i, b.phys as u32);
        list.w32(8 * i + 4, (b.phys >> 32) as u32);
    }
    let len = ((n + 1) * 4096) as u32;
    let e = get_log(c, 1, true, len, a.phys, list.phys).ok();
    k.status("log-beyond-mdts", e, 0, 0x02);
    Ok(())
}

/// Set Features Number of Queues: 8 SQs and 8 CQs.
fn queues(c: &mut Ctrl, k: &mut Checks) -> Result<()> {
    let e = c.exec(
        Cmd::new(op::SET_FEATURES)
            .dw(10, 0x07)
            .dw(11, (7 << 16) | 7),
    )?;
    k.status("set-number-of-queues", Some(e), 0, 0);
    Ok(())
}

/// `zero-queue`: pages 0 (SQ) and 1 (CQ).
fn zero_queue(c: &mut Ctrl, pages: &[Page], k: &mut Checks) -> Result<()> {
    let (sqp, cqp) = (pages[0], pages[1]);
    queues(c, k)?;
    k.status("cq-qsize-0", create_cq(c, 1, 0, cqp.phys).ok(), 1, 0x02);
    let mqes = c.mqes;
    k.status(
        "cq-qsize-above-mqes",
        create_cq(c, 1, mqes + 1, cqp.phys).ok(),
        1,
        0x02,
    );
    k.status(
        "sq-on-missing-cq",
        create_sq(c, 1, 7, 5, sqp.phys).ok(),
        1,
        0x00,
    );
    // QSIZE = MQES is the largest allowed (nothing is posted to this one,
    // so its 16 KiB need not be behind the page).
    k.status("cq-qsize-mqes", create_cq(c, 2, mqes, cqp.phys).ok(), 0, 0);
    let e = c.exec(Cmd::new(op::DELETE_CQ).dw(10, 2)).ok();
    k.status("delete-cq", e, 0, 0);
    k.status("cq-valid", create_cq(c, 1, 7, cqp.phys).ok(), 0, 0);
    k.status("sq-qsize-0", create_sq(c, 1, 0, 1, sqp.phys).ok(), 1, 0x02);
    k.status(
        "sq-qsize-above-mqes",
        create_sq(c, 1, mqes + 1, 1, sqp.phys).ok(),
        1,
        0x02,
    );
    k.status("sq-valid", create_sq(c, 1, 7, 1, sqp.phys).ok(), 0, 0);
    k.status("cq-qid-in-use", create_cq(c, 1, 7, cqp.phys).ok(), 1, 0x01);
    // Set Features granted 8 queues: 9 is beyond.
    let e = create_sq(c, 9, 7, 1, sqp.phys).ok();
    k.status("sq-qid-beyond-granted", e, 1, 0x01);
    // The queue pair works: a Flush completes on CQ 1.
    let mut q = Queue::new(sqp, cqp, 8, 8, 0x100);
    let cid = q.put(Cmd::new(op::FLUSH).nsid(1));
    c.ring_sq(1, u32::from(q.tail));
    let e = poll(WAIT, || q.take());
    c.ring_cq(1, u32::from(q.head));
    k.status("flush-on-new-queue", e, 0, 0);
    k.eq(
        "flush-cid-sqid",
        Some((cid, 1)),
        e.map(|e| (e.cid, e.sq_id)),
    );
    let e = c.exec(Cmd::new(op::DELETE_CQ).dw(10, 1)).ok();
    k.status("delete-cq-in-use", e, 1, 0x0c);
    let e = c.exec(Cmd::new(op::DELETE_SQ).dw(10, 1)).ok();
    k.status("delete-sq", e, 0, 0);
    let e = c.exec(Cmd::new(op::DELETE_CQ).dw(10, 1)).ok();
    k.status("delete-cq-1", e, 0, 0);
    Ok(())
}

/// `cq-overrun`: pages 0 (SQ), 1 (CQ), 2 (data) and 3 (Error log).
fn cq_overrun(c: &mut Ctrl, pages: &[Page], k: &mut Checks) -> Result<()> {
    let (sqp, cqp, buf) = (pages[0], pages[1], pages[2]);
    queues(c, k)?;
    k.status("cq-2-entries", create_cq(c, 1, 1, cqp.phys).ok(), 0, 0);
    k.status("sq-8-entries", create_sq(c, 1, 7, 1, sqp.phys).ok(), 0, 0);
    let mut q = Queue::new(sqp, cqp, 8, 2, 0x200);
    let cids: Vec<u16> = (0..4).map(|_| q.put(Cmd::new(op::FLUSH).nsid(1))).collect();
    c.ring_sq(1, u32::from(q.tail));
    // The first completion, and no second one while it is unconsumed: a
    // queue of 2 holds 1.
    let first = poll(WAIT, || q.slot(0).1.then_some(()));
    barrier(c, &buf)?;
    let (e1, p1) = q.slot(1);
    let beyond = (32..4096).step_by(4).find(|&o| cqp.r32(o) != 0);
    let got = format!(
        "slot 0 {}, slot 1 phase {}, bytes past the queue {beyond:x?}",
        first.is_some(),
        u8::from(p1)
    );
    k.ok(
        "one-entry-visible",
        first.is_some() && !p1 && beyond.is_none(),
        "slot 0 only",
        &got,
    );
    if p1 {
        println!(
            "note overrun: slot 1 got cid {:#x} while the CQ was full",
            e1.cid
        );
    }
    // Consume one at a time: each head doorbell frees one slot, and
    // exactly one more completion appears, at the new head; the slot just
    // consumed keeps its entry until the head moves past it again.
    let mut seen = Vec::new();
    for i in 0..4 {
        let slot = q.head;
        let Some(e) = poll(WAIT, || q.take()) else {
            k.ok("completions", false, "4", &format!("{i}, then none in 5 s"));
            break;
        };
        k.status(&format!("completion-{i}"), Some(e), 0, 0);
        seen.push(e.cid);
        let consumed = q.slot(slot);
        c.ring_cq(1, u32::from(q.head));
        let next = poll(if i < 3 { WAIT } else { QUIET }, || {
            (q.slot(q.head).1 == q.phase).then_some(())
        });
        barrier(c, &buf)?;
        let kept = q.slot(slot) == consumed;
        let (want, got) = if i < 3 {
            (
                next.is_some() && kept,
                format!("next {}, freed slot kept {kept}", next.is_some()),
            )
        } else {
            (
                next.is_none() && kept,
                format!("no 5th {}, slot kept {kept}", next.is_none()),
            )
        };
        k.ok(
            &format!("one-at-a-time-{i}"),
            want,
            "one new entry at the head",
            &got,
        );
    }
    let mut sorted = seen.clone();
    sorted.sort_unstable();
    k.eq("each-cid-once", cids.clone(), sorted);
    // A CQ head doorbell beyond the queue's size.
    let aer = c.submit(Cmd::new(op::AER));
    barrier(c, &buf)?;
    c.ring_cq(1, 5);
    k.event("cq-head-beyond-size", c.wait(aer, WAIT), 0x01);
    // The bogus head was ignored: the next command lands where it should.
    let cid = q.put(Cmd::new(op::FLUSH).nsid(1));
    c.ring_sq(1, u32::from(q.tail));
    let e = poll(WAIT, || q.take());
    c.ring_cq(1, u32::from(q.head));
    k.eq(
        "flush-after-bad-head",
        Some((cid, 0)),
        e.map(|e| (e.cid, e.status)),
    );
    // The head moved past the tail of the (empty) CQ: "removing an entry
    // from an empty CQ", a possible cause of Invalid Doorbell Write Value.
    let bogus = u32::from((q.head + 1) % 2);
    let e = provoke(c, (&buf, &pages[3]), QUIET, |c| c.ring_cq(1, bogus))?;
    note_event("cq-head-past-tail", "CQ 1 head past its tail", e);
    let cid = q.put(Cmd::new(op::FLUSH).nsid(1));
    c.ring_sq(1, u32::from(q.tail));
    let mut e = poll(WAIT, || q.take());
    if e.is_none() {
        // The controller took the head and thinks the CQ full: the real
        // head lets it go on.
        c.ring_cq(1, u32::from(q.head));
        e = poll(WAIT, || q.take());
        println!("note cq-head-past-tail: the next Flush stalled until the true head was written");
    }
    c.ring_cq(1, u32::from(q.head));
    k.eq("flush-after-head-past-tail", Some(cid), e.map(|e| e.cid));
    Ok(())
}

/// The scenarios, by subcommand name.
const SCENARIOS: [&str; 4] = ["bad-doorbell", "bad-prp", "zero-queue", "cq-overrun"];

/// Enables `bdf` (already taken from the driver) with a fresh admin queue,
/// runs `scenario` on 8 spare DMA pages and resets the controller. Returns
/// how many checks failed.
fn drive(bdf: &str, scenario: &str) -> Result<usize> {
    let bar = Bar::map(bdf, 0)?;
    let dma = Dma::alloc(10)?;
    let mut c = Ctrl::init(bar, dma.pages[0], dma.pages[1])?;
    let s = c.csts();
    println!(
        "ok enabled: CSTS {s:#x}, MQES {}, admin queue {ADMIN_ENTRIES} entries",
        c.mqes
    );
    let pages = &dma.pages[2..];
    let mut k = Checks::default();
    let r = match scenario {
        "bad-doorbell" => bad_doorbell(&mut c, pages, &mut k),
        "bad-prp" => bad_prp(bdf, &mut c, pages, &mut k),
        "zero-queue" => zero_queue(&mut c, pages, &mut k),
        _ => cq_overrun(&mut c, pages, &mut k),
    };
    if let Err(e) = &r {
        println!("FAIL {scenario}: expected the scenario to run, got {e}");
        k.0 += 1;
    }
    // The controller lets go of the pages before they are freed; one that
    // does not stop keeps them (leaked, never reused).
    let stopped = c.disable();
    drop(c);
    if stopped.is_err() {
        std::mem::forget(dma);
    }
    stopped?;
    Ok(k.0)
}

/// Takes `bdf` from the nvme driver, [`drive`]s it, and gives it back
/// whatever happened.
fn run(bdf: &str, scenario: &str) -> Result<usize> {
    take(bdf)?;
    let r = drive(bdf, scenario);
    give_back(bdf)?;
    println!("ok rebound: {bdf} is live under the nvme driver");
    r
}

/// `p2pvm-nvme-raw SCENARIO BDF`: exit 0 when every check passed, 1
/// otherwise, 2 on a usage error.
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (scenario, bdf) = match args.as_slice() {
        [s, b] if SCENARIOS.contains(&s.as_str()) => (s, b),
        _ => {
            eprintln!("usage: p2pvm-nvme-raw {} BDF", SCENARIOS.join("|"));
            std::process::exit(2);
        }
    };
    let bdf = bdf.strip_prefix("0000:").unwrap_or(bdf);
    match run(bdf, scenario) {
        Ok(0) => {}
        Ok(n) => {
            println!("{n} check(s) failed");
            std::process::exit(1);
        }
        Err(e) => {
            println!("FAIL {scenario}: expected to drive {bdf}, got {e}");
            std::process::exit(1);
        }
    }
}
