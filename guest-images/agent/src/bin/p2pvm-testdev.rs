//! `p2pvm-testdev`: drives the p2pvm test endpoint (1b36:0005) from guest
//! user space, the way users drive a driverless device: BARs through
//! sysfs `resourceN` mappings, registers through sysfs `config`, and the
//! completion interrupt through vfio-pci in no-IOMMU mode (an eventfd per
//! MSI-X vector). Static, no dependencies but libc.
//!
//! ```text
//! p2pvm-testdev fill  BDF BAR OFFSET LEN SEED   write a pattern through the guest's mapping
//! p2pvm-testdev check BDF BAR OFFSET LEN SEED   compare it byte for byte (exit 1 on a mismatch)
//! p2pvm-testdev copy  BDF SRC_BDF SRC_OFF DST_BDF DST_OFF LEN COUNT
//!     COUNT times: fill SRC's BAR 2 at SRC_OFF, have BDF's engine copy
//!     LEN bytes to DST's BAR 2 at DST_OFF (ringing the doorbell), wait
//!     for its MSI-X interrupt, check STATUS and every byte.
//! p2pvm-testdev irq-latency BDF N      request-to-wakeup interrupt latency
//!     (the test endpoint, or QEMU's edu device), in microseconds
//! p2pvm-testdev bench-cfg  BDF SECONDS   config dword reads (sysfs), per second
//! p2pvm-testdev bench-mmio BDF SECONDS   BAR 0 dword reads (mapped), per second
//! ```
//! BDFs are `bb:dd.f` (domain 0). Numbers take 0x for hex.

#[path = "shared/sysfs_bar.rs"]
mod sysfs_bar;

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io::{Error, ErrorKind, Result};
use std::os::unix::fs::FileExt;

use std::os::unix::io::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use sysfs_bar::{fail, sysfs, Bar};

/// The DMA engine's registers (config space, capability at 0x40).
const DMA: u64 = 0x40;
const SRC_LO: u64 = DMA + 0x08;
const DST_LO: u64 = DMA + 0x10;
const LENGTH: u64 = DMA + 0x18;
const STATUS: u64 = DMA + 0x1c;
const DONE: u64 = DMA + 0x20;
/// BAR 4's doorbell.
const DOORBELL: usize = 0x1000;

// VFIO ioctls (linux/vfio.h): _IO(';', 100 + n).
const VFIO_GET_API_VERSION: libc::c_ulong = 0x3b64;
const VFIO_CHECK_EXTENSION: libc::c_ulong = 0x3b65;
const VFIO_SET_IOMMU: libc::c_ulong = 0x3b66;
const VFIO_GROUP_GET_STATUS: libc::c_ulong = 0x3b67;
const VFIO_GROUP_SET_CONTAINER: libc::c_ulong = 0x3b68;
const VFIO_GROUP_GET_DEVICE_FD: libc::c_ulong = 0x3b6a;
const VFIO_DEVICE_SET_IRQS: libc::c_ulong = 0x3b6e;
const VFIO_NOIOMMU_IOMMU: libc::c_ulong = 8;
const VFIO_GROUP_FLAGS_VIABLE: u32 = 1;
const VFIO_IRQ_SET_DATA_EVENTFD: u32 = 1 << 2;
const VFIO_IRQ_SET_ACTION_TRIGGER: u32 = 1 << 5;
const VFIO_PCI_MSI_IRQ_INDEX: u32 = 1;
const VFIO_PCI_MSIX_IRQ_INDEX: u32 = 2;
/// QEMU's "edu" teaching device (hw/misc/edu.c): MSI, and an interrupt
/// raised by a register write.
const EDU_ID: &str = "0x1234 0x11e8";
/// edu registers in BAR 0: interrupt status, raise, acknowledge.
const EDU_IRQ_STATUS: usize = 0x24;
const EDU_IRQ_RAISE: usize = 0x60;
const EDU_IRQ_ACK: usize = 0x64;

fn num(s: &str) -> Result<u64> {
    let r = match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16),
        None => s.parse(),
    };
    r.map_err(|_| fail(format!("not a number: {s}")))
}

/// The pattern `fill` writes and `check` expects.
fn pattern(offset: u64, len: usize, seed: u64) -> Vec<u8> {
    (0..len as u64)
        .map(|i| ((offset + i).wrapping_mul(31) ^ seed.wrapping_mul(0x9e37) ^ (i >> 8)) as u8)
        .collect()
}

impl Bar {
    fn range(&self, offset: u64, len: usize) -> Result<usize> {
        let off = offset as usize;
        if off.checked_add(len).is_none_or(|e| e > self.len) {
            return Err(fail(format!("{offset:#x}+{len:#x} is past the BAR's end")));
        }
        Ok(off)
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<()> {
        let off = self.range(offset, data.len())?;
        for (i, b) in data.iter().enumerate() {
            // SAFETY: in bounds of the live mapping; device memory wants
            // volatile accesses.
            unsafe { self.ptr.add(off + i).write_volatile(*b) };
        }
        Ok(())
    }

    fn read(&self, offset: u64, len: usize) -> Result<Vec<u8>> {
        let off = self.range(offset, len)?;
        // SAFETY: as in `write`.
        Ok((0..len)
            .map(|i| unsafe { self.ptr.add(off + i).read_volatile() })
            .collect())
    }

    fn write32(&self, offset: usize, v: u32) -> Result<()> {
        self.range(offset as u64, 4)?;
        // SAFETY: in bounds and 4-byte aligned (offset is a register's).
        unsafe { self.ptr.add(offset).cast::<u32>().write_volatile(v) };
        Ok(())
    }
}

/// Checks that `len` bytes at `offset` hold the pattern `fill` wrote at
/// `from` (the source of a copy) with `seed`.
fn check(bar: &Bar, offset: u64, from: u64, len: usize, seed: u64, what: &str) -> Result<()> {
    let got = bar.read(offset, len)?;
    let want = pattern(from, len, seed);
    match got.iter().zip(&want).position(|(a, b)| a != b) {
        None => Ok(()),
        Some(i) => Err(fail(format!(
            "{what}: byte {:#x} is {:#04x}, expected {:#04x}",
            offset + i as u64,
            got[i],
            want[i]
        ))),
    }
}

/// Config space through sysfs, as setpci does it.
struct Config(File);

impl Config {
    fn open(bdf: &str) -> Result<Config> {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(sysfs(bdf, "config"))?;
        Ok(Config(f))
    }
    fn read32(&self, off: u64) -> Result<u32> {
        let mut b = [0; 4];
        self.0.read_exact_at(&mut b, off)?;
        Ok(u32::from_le_bytes(b))
    }
    fn write32(&self, off: u64, v: u32) -> Result<()> {
        self.0.write_all_at(&v.to_le_bytes(), off)
    }
}

/// The bus address of BAR `bar` (its `resource` line).
fn bar_address(bdf: &str, bar: usize) -> Result<u64> {
    let text = std::fs::read_to_string(sysfs(bdf, "resource"))?;
    let line = text.lines().nth(bar).ok_or_else(|| fail("no such BAR"))?;
    num(line.split_whitespace().next().unwrap_or(""))
}

fn ioctl(fd: RawFd, req: libc::c_ulong, arg: libc::c_ulong) -> Result<i32> {
    // SAFETY: every caller passes an argument of the type `req` expects.
    let r = unsafe { libc::ioctl(fd, req as _, arg) };
    if r < 0 {
        return Err(Error::last_os_error());
    }
    Ok(r)
}

fn write_file(path: &str, value: &str) -> Result<()> {
    std::fs::write(path, value).map_err(|e| fail(format!("{path}: {e}")))
}

/// vfio-pci in no-IOMMU mode, holding the device open: the container,
/// the group and the device fd, and the eventfd of MSI-X vector 0.
struct Vfio {
    _container: OwnedFd,
    _group: OwnedFd,
    _device: OwnedFd,
    irq: OwnedFd,
}

impl Vfio {
    /// Opens `bdf` through vfio-pci and puts an eventfd on vector 0 of
    /// interrupt `index` (MSI or MSI-X).
    fn open(bdf: &str, index: u32) -> Result<Vfio> {
        let _ = write_file(
            "/sys/module/vfio/parameters/enable_unsafe_noiommu_mode",
            "1",
        );
        let bound = std::fs::read_link(sysfs(bdf, "driver")).is_ok_and(|p| p.ends_with("vfio-pci"));
        if !bound {
            write_file(&sysfs(bdf, "driver_override"), "vfio-pci")?;
            let _ = write_file(&sysfs(bdf, "driver/unbind"), &format!("0000:{bdf}"));
            write_file("/sys/bus/pci/drivers_probe", &format!("0000:{bdf}"))?;
        }
        let group = std::fs::read_link(sysfs(bdf, "iommu_group"))?;
        let group = group
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| fail("no IOMMU group"))?
            .to_owned();
        let open = |p: &str| -> Result<OwnedFd> {
            let f = OpenOptions::new().read(true).write(true).open(p);
            Ok(OwnedFd::from(f.map_err(|e| fail(format!("{p}: {e}")))?))
        };
        let container = open("/dev/vfio/vfio")?;
        let c = container.as_raw_fd();
        if ioctl(c, VFIO_GET_API_VERSION, 0)? != 0 {
            return Err(fail("unknown VFIO API version"));
        }
        if ioctl(c, VFIO_CHECK_EXTENSION, VFIO_NOIOMMU_IOMMU)? != 1 {
            return Err(fail("VFIO no-IOMMU mode is not available"));
        }
        let group = open(&format!("/dev/vfio/noiommu-{group}"))?;
        let g = group.as_raw_fd();
        let mut status = [8u32, 0];
        ioctl(g, VFIO_GROUP_GET_STATUS, status.as_mut_ptr() as _)?;
        if status[1] & VFIO_GROUP_FLAGS_VIABLE == 0 {
            return Err(fail("the VFIO group is not viable"));
        }
        ioctl(g, VFIO_GROUP_SET_CONTAINER, &c as *const RawFd as _)?;
        ioctl(c, VFIO_SET_IOMMU, VFIO_NOIOMMU_IOMMU)?;
        let name = CString::new(format!("0000:{bdf}")).map_err(|_| fail("bad BDF"))?;
        let d = ioctl(g, VFIO_GROUP_GET_DEVICE_FD, name.as_ptr() as _)?;
        // SAFETY: a new fd the kernel just returned.
        let device = unsafe { OwnedFd::from_raw_fd(d) };
        // SAFETY: eventfd(2) with valid flags.
        let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        if efd < 0 {
            return Err(Error::last_os_error());
        }
        // SAFETY: a new fd.
        let irq = unsafe { OwnedFd::from_raw_fd(efd) };
        // struct vfio_irq_set { argsz, flags, index, start, count, data[] }.
        let set = [
            24u32,
            VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
            index,
            0,
            1,
            efd as u32,
        ];
        ioctl(d, VFIO_DEVICE_SET_IRQS, set.as_ptr() as _)?;
        Ok(Vfio {
            _container: container,
            _group: group,
            _device: device,
            irq,
        })
    }

    /// Waits up to 10 s for vector 0; returns how many interrupts the
    /// eventfd counted.
    fn wait(&self) -> Result<u64> {
        let mut p = libc::pollfd {
            fd: self.irq.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut p, 1, 10_000) } != 1 {
            return Err(Error::new(
                ErrorKind::TimedOut,
                "no MSI-X interrupt in 10 s",
            ));
        }
        let mut n = [0u8; 8];
        // SAFETY: reading 8 bytes into an 8-byte buffer.
        if unsafe { libc::read(self.irq.as_raw_fd(), n.as_mut_ptr().cast(), 8) } != 8 {
            return Err(Error::last_os_error());
        }
        Ok(u64::from_ne_bytes(n))
    }
}

/// Takes `bdf` over as its driver: vfio-pci with an eventfd on vector 0
/// of interrupt `index`, its config space, and memory space and bus
/// mastering on (vfio-pci leaves bus mastering off).
fn drive(bdf: &str, index: u32) -> Result<(Vfio, Config)> {
    let vfio = Vfio::open(bdf, index)?;
    let cfg = Config::open(bdf)?;
    let cmd = cfg.read32(4)?;
    cfg.write32(4, cmd | 0x6)?;
    Ok((vfio, cfg))
}

fn read_id(bdf: &str) -> Result<String> {
    let r = |f| std::fs::read_to_string(sysfs(bdf, f)).map(|s| s.trim().to_owned());
    Ok(format!("{} {}", r("vendor")?, r("device")?))
}

/// Interrupt latency: `n` times, asks the device for an interrupt and
/// times it until this process wakes on the vector's eventfd. The test
/// endpoint is asked by its doorbell (a zero-length command, which
/// completes at once and raises MSI-X vector 0); QEMU's edu device by its
/// interrupt-raise register (MSI). Prints microseconds: median, 99th
/// percentile, minimum.
fn irq_latency(bdf: &str, n: usize) -> Result<()> {
    let edu = read_id(bdf)? == EDU_ID;
    let index = if edu {
        VFIO_PCI_MSI_IRQ_INDEX
    } else {
        VFIO_PCI_MSIX_IRQ_INDEX
    };
    let (vfio, cfg) = drive(bdf, index)?;
    let (bar, reg) = if edu {
        (Bar::map(bdf, 0)?, EDU_IRQ_RAISE)
    } else {
        cfg.write32(LENGTH, 0)?;
        (Bar::map(bdf, 4)?, DOORBELL)
    };
    let mut us = Vec::with_capacity(n);
    for i in 0..n + 10 {
        let t = std::time::Instant::now();
        bar.write32(reg, 1)?;
        vfio.wait()?;
        let dt = t.elapsed();
        if edu {
            let status = bar.read(EDU_IRQ_STATUS as u64, 4)?;
            bar.write32(
                EDU_IRQ_ACK,
                u32::from_le_bytes(status.try_into().unwrap_or([0; 4])),
            )?;
        }
        // The first few warm the paths up (routes, caches).
        if i >= 10 {
            us.push(dt.as_secs_f64() * 1e6);
        }
    }
    us.sort_by(f64::total_cmp);
    let at = |q: f64| us[((us.len() - 1) as f64 * q) as usize];
    println!(
        "irq_latency_us device={} n={n} median={:.1} p99={:.1} min={:.1}",
        if edu { "edu" } else { "testdev" },
        at(0.5),
        at(0.99),
        us[0]
    );
    Ok(())
}

/// With `P2PVM_TESTDEV_SYNC=DIR:N`, waits until N processes reached
/// `phase` (files in DIR). Opening and closing a vfio-pci device resets
/// it, and a peer's copies from or into a device being reset fail with
/// Unsupported Request, as on hardware: processes that drive devices
/// which DMA into each other meet before their first copy and after
/// their last.
fn sync(phase: &str) -> Result<()> {
    let Ok(spec) = std::env::var("P2PVM_TESTDEV_SYNC") else {
        return Ok(());
    };
    let (dir, n) = spec
        .rsplit_once(':')
        .ok_or_else(|| fail("P2PVM_TESTDEV_SYNC=DIR:N"))?;
    let n = num(n)? as usize;
    std::fs::create_dir_all(dir)?;
    write_file(&format!("{dir}/{phase}.{}", std::process::id()), "")?;
    for _ in 0..3000 {
        let here = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok())
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(&format!("{phase}."))
            })
            .count();
        if here >= n {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Err(fail(format!("{phase}: the other processes did not come")))
}

#[allow(clippy::too_many_arguments)]
fn copy(
    bdf: &str,
    src: &str,
    src_off: u64,
    dst: &str,
    dst_off: u64,
    len: usize,
    count: u64,
) -> Result<()> {
    let (vfio, cfg) = drive(bdf, VFIO_PCI_MSIX_IRQ_INDEX)?;
    let (sbar, dbar) = (Bar::map(src, 2)?, Bar::map(dst, 2)?);
    let doorbell = Bar::map(bdf, 4)?;
    let s = bar_address(src, 2)? + src_off;
    let d = bar_address(dst, 2)? + dst_off;
    let mut irqs = 0;
    sync("ready")?;
    for round in 0..count {
        let seed = round + 1;
        sbar.write(src_off, &pattern(src_off, len, seed))?;
        for (reg, v) in [(SRC_LO, s), (DST_LO, d)] {
            cfg.write32(reg, v as u32)?;
            cfg.write32(reg + 4, (v >> 32) as u32)?;
        }
        cfg.write32(LENGTH, len as u32)?;
        doorbell.write32(DOORBELL, 1)?;
        irqs += vfio.wait()?;
        let (status, done) = (cfg.read32(STATUS)?, cfg.read32(DONE)?);
        if status != 0 || done as usize != len {
            return Err(fail(format!(
                "round {round}: status {status:#x}, {done:#x} bytes done"
            )));
        }
        // What the guest reads through the destination's mapping is what
        // the device wrote from what the guest wrote through the source's.
        check(
            &dbar,
            dst_off,
            src_off,
            len,
            seed,
            &format!("round {round}"),
        )?;
    }
    // While vfio-pci still holds the vector: what the kernel counted.
    let name = format!("vfio-msix[0](0000:{bdf})");
    let text = std::fs::read_to_string("/proc/interrupts")?;
    let line = text.lines().find(|l| l.ends_with(&name));
    let counted: u64 = line
        .map(|l| {
            let cols = l.split_whitespace().skip(1);
            cols.map_while(|c| c.parse::<u64>().ok()).sum()
        })
        .unwrap_or(0);
    println!("copies={count} irqs={irqs} proc_interrupts={counted}");
    sync("done")
}

/// Runs `op` for `secs` seconds; prints how many times and the rate.
fn bench(secs: u64, mut op: impl FnMut() -> Result<()>) -> Result<()> {
    let start = std::time::Instant::now();
    let limit = std::time::Duration::from_secs(secs);
    let mut n = 0u64;
    while start.elapsed() < limit {
        for _ in 0..64 {
            op()?;
        }
        n += 64;
    }
    let t = start.elapsed().as_secs_f64();
    println!("ops={n} secs={t:.3} rate={:.0}", n as f64 / t);
    Ok(())
}

fn run(args: &[String]) -> Result<()> {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    match a.as_slice() {
        ["fill", bdf, bar, off, len, seed] => {
            let (off, len) = (num(off)?, num(len)? as usize);
            Bar::map(bdf, num(bar)? as u8)?.write(off, &pattern(off, len, num(seed)?))
        }
        ["check", bdf, bar, off, len, seed] => {
            let bar = Bar::map(bdf, num(bar)? as u8)?;
            let off = num(off)?;
            check(&bar, off, off, num(len)? as usize, num(seed)?, bdf)
        }
        ["copy", bdf, src, so, dst, dof, len, count] => copy(
            bdf,
            src,
            num(so)?,
            dst,
            num(dof)?,
            num(len)? as usize,
            num(count)?,
        ),
        ["irq-latency", bdf, n] => irq_latency(bdf, num(n)?.max(1) as usize),
        ["bench-cfg", bdf, secs] => {
            let cfg = Config::open(bdf)?;
            bench(num(secs)?, || cfg.read32(0).map(drop))
        }
        ["bench-mmio", bdf, secs] => {
            let bar = Bar::map(bdf, 0)?;
            bench(num(secs)?, || {
                // SAFETY: dword 0 of the live BAR 0 mapping.
                unsafe { bar.ptr.cast::<u32>().read_volatile() };
                Ok(())
            })
        }
        _ => Err(Error::new(
            ErrorKind::InvalidInput,
            "usage: p2pvm-testdev fill|check BDF BAR OFFSET LEN SEED | \
             copy BDF SRC_BDF SRC_OFF DST_BDF DST_OFF LEN COUNT | bench-cfg|bench-mmio BDF SECONDS | irq-latency BDF N",
        )),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(e) = run(&args) {
        eprintln!("p2pvm-testdev: {e}");
        std::process::exit(1);
    }
}
