//! `p2pvm-p2pmem`: peer-to-peer block I/O through a PCI device's p2pmem,
//! from guest user space, the way Linux (6.2+) allows it: a buffer
//! mmapped from `/sys/bus/pci/devices/<provider>/p2pmem/allocate`, used
//! for O_DIRECT reads and writes on NVMe block devices, whose DMA then
//! targets the provider's BAR. Static, no dependencies but libc.
//!
//! ```text
//! p2pvm-p2pmem copy PROVIDER SRC SRC_OFF DST DST_OFF CHUNK COUNT
//!     COUNT times: O_DIRECT read CHUNK bytes of block device SRC at
//!     SRC_OFF + i*CHUNK into the p2pmem buffer, O_DIRECT write them from
//!     there to DST at DST_OFF + i*CHUNK. Then read SRC and DST back into
//!     RAM and compare every byte (exit 1 on a mismatch). Prints
//!     `copied=BYTES secs=S mb_per_s=R`.
//! p2pvm-p2pmem copy-only PROVIDER SRC SRC_OFF DST DST_OFF CHUNK COUNT
//!     The same copy without reading anything back (the host checks the
//!     bytes in the backing files; no traffic but the copy's crosses the
//!     fabric). Prints the same line.
//! p2pvm-p2pmem memcpy PROVIDER LEN ROUNDS
//!     CPU copies of LEN bytes into a p2pmem mapping and into RAM, each
//!     ROUNDS times after one untimed warm-up round:
//!     `p2pmem_mb_per_s=… ram_mb_per_s=…`.
//! ```
//! PROVIDER is a BDF, `bb:dd.f` (domain 0) or `dddd:bb:dd.f`; offsets and sizes take 0x
//! for hex and must be multiples of 4096.

use std::ffi::CString;
use std::io::{Error, ErrorKind, Result};
use std::os::unix::io::RawFd;
use std::time::Instant;

/// A mapping that is unmapped when dropped.
struct Map {
    ptr: *mut u8,
    len: usize,
}

impl Map {
    /// `len` bytes of p2pmem from `provider`'s allocator.
    fn p2pmem(provider: &str, len: usize) -> Result<Map> {
        // `bb:dd.f` or, as sysfs names it, `dddd:bb:dd.f`.
        let full = if provider.matches(':').count() == 2 {
            provider.to_string()
        } else {
            format!("0000:{provider}")
        };
        let path = format!("/sys/bus/pci/devices/{full}/p2pmem/allocate");
        let fd = open(&path, libc::O_RDWR)?;
        let m = Map::new(fd, len);
        // SAFETY: fd is ours; the mapping keeps its own reference.
        unsafe { libc::close(fd) };
        m.map_err(|e| Error::new(e.kind(), format!("mmap {path}: {e}")))
    }

    /// `len` bytes of anonymous RAM.
    fn ram(len: usize) -> Result<Map> {
        Map::new(-1, len)
    }

    fn new(fd: RawFd, len: usize) -> Result<Map> {
        let flags = if fd < 0 {
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS
        } else {
            libc::MAP_SHARED
        };
        // SAFETY: a fresh mapping; no Rust object aliases it.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                flags,
                fd,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(Error::last_os_error());
        }
        Ok(Map {
            ptr: ptr.cast(),
            len,
        })
    }

    fn slice(&self) -> &[u8] {
        // SAFETY: ptr..ptr+len is mapped for the life of self.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    fn slice_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in slice(); &mut self makes this the only reference.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

impl Drop for Map {
    fn drop(&mut self) {
        // SAFETY: the mapping made in new().
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

fn open(path: &str, flags: i32) -> Result<RawFd> {
    let c = CString::new(path).map_err(|_| Error::new(ErrorKind::InvalidInput, "NUL in path"))?;
    // SAFETY: c is a valid C string.
    let fd = unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC) };
    if fd < 0 {
        let e = Error::last_os_error();
        return Err(Error::new(e.kind(), format!("open {path}: {e}")));
    }
    Ok(fd)
}

/// pread/pwrite of the whole buffer at `off`, or an error naming `what`.
fn rw(fd: RawFd, buf: *mut u8, len: usize, off: u64, write: bool, what: &str) -> Result<()> {
    // SAFETY: buf..buf+len is a live mapping owned by the caller.
    let n = unsafe {
        if write {
            libc::pwrite(fd, buf.cast(), len, off as libc::off_t)
        } else {
            libc::pread(fd, buf.cast(), len, off as libc::off_t)
        }
    };
    if n < 0 {
        let e = Error::last_os_error();
        return Err(Error::new(e.kind(), format!("{what} at {off:#x}: {e}")));
    }
    if n as usize != len {
        return Err(Error::other(format!(
            "{what} at {off:#x}: {n} of {len} bytes"
        )));
    }
    Ok(())
}

fn num(s: &str) -> Result<u64> {
    let r = match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16),
        None => s.parse(),
    };
    r.map_err(|_| Error::new(ErrorKind::InvalidInput, format!("'{s}' is not a number")))
}

fn page_multiple(what: &str, v: u64) -> Result<usize> {
    if v == 0 || !v.is_multiple_of(4096) {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("{what} {v:#x} must be a non-zero multiple of 4096"),
        ));
    }
    usize::try_from(v).map_err(|_| Error::new(ErrorKind::InvalidInput, "too large"))
}

fn copy(a: &[String], verify: bool) -> Result<()> {
    let [provider, src, src_off, dst, dst_off, chunk, count] = a else {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "copy PROVIDER SRC SRC_OFF DST DST_OFF CHUNK COUNT",
        ));
    };
    let chunk = page_multiple("CHUNK", num(chunk)?)?;
    let (src_off, dst_off, count) = (num(src_off)?, num(dst_off)?, num(count)?);
    let mut p2p = Map::p2pmem(provider, chunk)?;
    let sfd = open(src, libc::O_RDONLY | libc::O_DIRECT)?;
    let dfd = open(dst, libc::O_RDWR | libc::O_DIRECT)?;
    let t = Instant::now();
    for i in 0..count {
        let step = i * chunk as u64;
        let buf = p2p.slice_mut().as_mut_ptr();
        rw(sfd, buf, chunk, src_off + step, false, "read into p2pmem")?;
        rw(dfd, buf, chunk, dst_off + step, true, "write from p2pmem")?;
    }
    let secs = t.elapsed().as_secs_f64();
    if !verify {
        return report(chunk, count, secs);
    }
    // Check: both sides read back into RAM, compared byte for byte.
    let mut a_buf = Map::ram(chunk)?;
    let mut b_buf = Map::ram(chunk)?;
    for i in 0..count {
        let step = i * chunk as u64;
        rw(
            sfd,
            a_buf.slice_mut().as_mut_ptr(),
            chunk,
            src_off + step,
            false,
            "read back SRC",
        )?;
        rw(
            dfd,
            b_buf.slice_mut().as_mut_ptr(),
            chunk,
            dst_off + step,
            false,
            "read back DST",
        )?;
        if let Some(at) = a_buf
            .slice()
            .iter()
            .zip(b_buf.slice())
            .position(|(x, y)| x != y)
        {
            eprintln!("mismatch in chunk {i} at byte {at:#x}");
            std::process::exit(1);
        }
    }
    report(chunk, count, secs)
}

fn report(chunk: usize, count: u64, secs: f64) -> Result<()> {
    let bytes = count * chunk as u64;
    println!(
        "copied={bytes} secs={secs:.4} mb_per_s={:.1}",
        bytes as f64 / secs / 1e6
    );
    Ok(())
}

fn memcpy(a: &[String]) -> Result<()> {
    let [provider, len, rounds] = a else {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "memcpy PROVIDER LEN ROUNDS",
        ));
    };
    let len = page_multiple("LEN", num(len)?)?;
    let rounds = num(rounds)?.max(1);
    let mut src = Map::ram(len)?;
    for (i, b) in src.slice_mut().iter_mut().enumerate() {
        *b = (i * 7 + 3) as u8;
    }
    let rate = |dst: &mut Map| {
        // One untimed round first: the first touch of each page (the
        // guest's and the hypervisor's page faults) is not the copy.
        dst.slice_mut().copy_from_slice(src.slice());
        let t = Instant::now();
        for _ in 0..rounds {
            dst.slice_mut().copy_from_slice(src.slice());
        }
        let r = (len as u64 * rounds) as f64 / t.elapsed().as_secs_f64() / 1e6;
        (r, dst.slice() == src.slice())
    };
    let (p, p_ok) = rate(&mut Map::p2pmem(provider, len)?);
    let (r, r_ok) = rate(&mut Map::ram(len)?);
    if !p_ok || !r_ok {
        eprintln!("a copy does not read back");
        std::process::exit(1);
    }
    println!("p2pmem_mb_per_s={p:.1} ram_mb_per_s={r:.1}");
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let r = match args.first().map(String::as_str) {
        Some("copy") => copy(&args[1..], true),
        Some("copy-only") => copy(&args[1..], false),
        Some("memcpy") => memcpy(&args[1..]),
        _ => Err(Error::new(
            ErrorKind::InvalidInput,
            "usage: p2pvm-p2pmem copy|memcpy … (see the source)",
        )),
    };
    if let Err(e) = r {
        eprintln!("p2pvm-p2pmem: {e}");
        std::process::exit(2);
    }
}
