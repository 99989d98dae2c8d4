//! How `p2pvm-nvme-raw` reports: one line per check, `ok NAME: GOT` or
//! `FAIL NAME: expected WANT got GOT`, and `note NAME: ...` for what the
//! spec leaves to the controller.

use crate::ctrl::Cqe;

/// The checks' outcome: prints each, counts failures.
#[derive(Default)]
pub struct Checks(pub usize);

impl Checks {
    /// Prints `ok NAME: GOT` when `good`, else `FAIL NAME: expected WANT got GOT`.
    pub fn ok(&mut self, name: &str, good: bool, want: &str, got: &str) {
        if good {
            println!("ok {name}: {got}");
        } else {
            println!("FAIL {name}: expected {want} got {got}");
            self.0 += 1;
        }
    }

    /// `want == got`.
    pub fn eq<T: PartialEq + std::fmt::Debug>(&mut self, name: &str, want: T, got: T) {
        self.ok(name, want == got, &format!("{want:?}"), &format!("{got:?}"));
    }

    /// The completion `e` has status `sct`/`sc`.
    pub fn status(&mut self, name: &str, e: Option<Cqe>, sct: u8, sc: u8) {
        let got = e.map_or("no completion".into(), |e| e.st());
        let want = format!("SCT {sct} SC {sc:#04x}");
        self.ok(name, got == want, &want, &got);
    }

    /// Nothing completed for command `e` (an AER that must stay held).
    pub fn quiet(&mut self, name: &str, e: Option<Cqe>) {
        let got = e.map_or("still outstanding".into(), |e| {
            format!("completed: {} dw0 {:#x}", e.st(), e.dw0)
        });
        self.ok(name, e.is_none(), "still outstanding", &got);
    }

    /// An Asynchronous Event Request completed with an Error Status event
    /// (type 0) of `info`, pointing at the Error log (LID 01h): dword 0
    /// bits 2:0 type, 15:8 info, 23:16 log page (Figure 146,
    /// include/linux/nvme.h).
    pub fn event(&mut self, name: &str, e: Option<Cqe>, info: u8) {
        let want = format!("success, type 0 info {info:#04x} log 0x01");
        let got = e.map_or("no completion".into(), |e| {
            let s = if e.status == 0 {
                "success".into()
            } else {
                e.st()
            };
            let d = e.dw0;
            format!(
                "{s}, type {} info {:#04x} log {:#04x}",
                d & 7,
                (d >> 8) & 0xff,
                (d >> 16) & 0xff
            )
        });
        self.ok(name, got == want, &want, &got);
    }
}

/// `note NAME: ...` for an event the spec allows but does not require.
pub fn note_event(name: &str, what: &str, e: Option<Cqe>) {
    match e {
        Some(e) => println!("note {name}: {what}: event dw0 {:#x} ({})", e.dw0, e.st()),
        None => println!("note {name}: {what}: no event"),
    }
}
