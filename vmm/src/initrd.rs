//! Initramfs handling: concatenating archives into guest memory and writing the small newc
//! archive that carries the `--exec` command into the guest.

use std::fs::File;
use std::path::{Path, PathBuf};

use vm_memory::{Bytes, GuestAddress};

use crate::error::{Error, Result};

/// Initramfs archives to concatenate, in order: files, then in-memory
/// archives (the `--exec` command). Linux unpacks concatenated archives
/// (compressed or not) one after the other; each starts 4-byte aligned.
///
/// Nothing is read until [`write_to`](Self::write_to), which reads each
/// file straight into guest memory: the default initramfs is tens of MiB,
/// and a host-side copy costs a page fault per 4 KiB and a memcpy (most of
/// all in the KVM host box).
#[derive(Debug, Clone, Default)]
pub struct Initrd {
    files: Vec<(PathBuf, u64)>,
    extra: Vec<Vec<u8>>,
}

impl Initrd {
    /// The archives in `paths` (which must be non-empty files) followed by
    /// the in-memory archives `extra`.
    pub fn new(paths: &[PathBuf], extra: Vec<Vec<u8>>) -> Result<Self> {
        let mut files = Vec::with_capacity(paths.len());
        for p in paths {
            let len = std::fs::metadata(p)
                .map_err(|e| Error::Initrd {
                    path: p.clone(),
                    msg: e.to_string(),
                })?
                .len();
            if len == 0 {
                return Err(Error::Initrd {
                    path: p.clone(),
                    msg: "file is empty".into(),
                });
            }
            files.push((p.clone(), len));
        }
        Ok(Initrd { files, extra })
    }

    /// Where each piece starts and how long it is, padding included.
    fn layout(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        let lens = self
            .files
            .iter()
            .map(|(_, l)| *l)
            .chain(self.extra.iter().map(|e| e.len() as u64));
        let mut at = 0u64;
        lens.map(move |l| {
            let start = at.next_multiple_of(4);
            at = start + l;
            (start, l)
        })
    }

    /// Total length in bytes, padding included; 0 when there is nothing.
    pub fn len(&self) -> u64 {
        self.layout().last().map_or(0, |(s, l)| s + l)
    }

    /// True when there are no archives.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty() && self.extra.is_empty()
    }

    /// Writes the concatenation at `addr` in `mem` (zero padding between
    /// pieces). A file that changed size since [`new`](Self::new) is an
    /// error.
    pub fn write_to<M: Bytes<GuestAddress>>(&self, mem: &M, addr: GuestAddress) -> Result<()>
    where
        M::E: std::fmt::Display,
    {
        let mut end = 0;
        let mut pieces = self.layout();
        for (path, len) in &self.files {
            let (start, _) = pieces.next().expect("one piece per file");
            zero(mem, addr, end, start)?;
            let ierr = |msg: String| Error::Initrd {
                path: path.clone(),
                msg,
            };
            let mut f = File::open(path).map_err(|e| ierr(e.to_string()))?;
            let at = GuestAddress(addr.0 + start);
            mem.read_exact_volatile_from(at, &mut f, *len as usize)
                .map_err(|e| ierr(format!("reading it into guest memory: {e}")))?;
            if f.metadata().map(|m| m.len()).ok() != Some(*len) {
                return Err(ierr("it changed size while p2pvm was reading it".into()));
            }
            end = start + len;
        }
        for e in &self.extra {
            let (start, len) = pieces.next().expect("one piece per archive");
            zero(mem, addr, end, start)?;
            mem.write_slice(e, GuestAddress(addr.0 + start))
                .map_err(|e| Error::Memory(format!("writing the initramfs: {e}")))?;
            end = start + len;
        }
        Ok(())
    }
}

/// Zeroes the padding `from..to` after `base`.
fn zero<M: Bytes<GuestAddress>>(mem: &M, base: GuestAddress, from: u64, to: u64) -> Result<()>
where
    M::E: std::fmt::Display,
{
    let pad = [0u8; 4];
    mem.write_slice(&pad[..(to - from) as usize], GuestAddress(base.0 + from))
        .map_err(|e| Error::Memory(format!("writing the initramfs: {e}")))
}

/// A newc ("070701") cpio archive built in memory.
#[derive(Default)]
pub struct Cpio {
    buf: Vec<u8>,
    ino: u32,
}

impl Cpio {
    /// An empty archive.
    pub fn new() -> Self {
        Self::default()
    }

    fn entry(&mut self, name: &str, mode: u32, data: &[u8]) {
        self.ino += 1;
        let header = format!(
            "070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            self.ino,
            mode,
            0,
            0,
            1,
            0,
            data.len(),
            0,
            0,
            0,
            0,
            name.len() + 1,
            0
        );
        self.buf.extend_from_slice(header.as_bytes());
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.push(0);
        self.pad();
        self.buf.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }

    /// Adds a directory.
    pub fn dir(&mut self, name: &str) {
        self.entry(name, 0o040755, &[]);
    }

    /// Adds a regular file.
    pub fn file(&mut self, name: &str, mode: u32, data: &[u8]) {
        self.entry(name, 0o100000 | mode, data);
    }

    /// Finishes the archive with its trailer.
    pub fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, &[]);
        self.buf
    }
}

/// The archive that tells the guest agent what to run.
pub fn exec_archive(command: &str) -> Vec<u8> {
    let mut c = Cpio::new();
    c.dir("p2pvm");
    c.file("p2pvm/exec", 0o644, command.as_bytes());
    c.finish()
}

/// Checks that an initramfs path is a readable, non-empty file.
pub fn check(path: &Path) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| Error::Initrd {
        path: path.to_path_buf(),
        msg: e.to_string(),
    })?;
    if !meta.is_file() || meta.len() == 0 {
        return Err(Error::Initrd {
            path: path.to_path_buf(),
            msg: "not a non-empty regular file".into(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_archive_is_valid_newc() {
        let a = exec_archive("echo hi");
        assert_eq!(&a[..6], b"070701");
        assert_eq!(a.len() % 4, 0);
        let text = String::from_utf8_lossy(&a);
        assert!(text.contains("p2pvm/exec\0"));
        assert!(text.contains("echo hi"));
        assert!(text.contains("TRAILER!!!"));
        // The file entry declares the command's size.
        let file_hdr = text.find("p2pvm/exec").unwrap() - 110;
        let size = u32::from_str_radix(&text[file_hdr + 54..file_hdr + 62], 16).unwrap();
        assert_eq!(size, 7);
    }

    #[test]
    fn archives_are_concatenated_4_byte_aligned_into_memory() {
        let dir = std::env::temp_dir().join(format!("p2pvm-initrd-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let a = dir.join("a.cpio");
        std::fs::write(&a, [1, 2, 3, 4, 5]).unwrap();
        let r = Initrd::new(&[a], vec![vec![6, 7, 8], vec![9]]).unwrap();
        // 5 bytes, pad to 8; 3 bytes, pad to 12; 1 byte.
        assert_eq!(r.len(), 13);
        let mem =
            vm_memory::GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 4096)]).unwrap();
        mem.write_slice(&[0xaa; 32], GuestAddress(0x100)).unwrap();
        r.write_to(&mem, GuestAddress(0x100)).unwrap();
        let mut got = [0u8; 14];
        mem.read_slice(&mut got, GuestAddress(0x100)).unwrap();
        assert_eq!(got, [1, 2, 3, 4, 5, 0, 0, 0, 6, 7, 8, 0, 9, 0xaa]);

        let e = Initrd::new(&[PathBuf::from("/nonexistent.cpio")], vec![]).unwrap_err();
        assert!(e.to_string().contains("/nonexistent.cpio"));
        let empty = dir.join("empty.cpio");
        std::fs::write(&empty, []).unwrap();
        let e = Initrd::new(&[empty], vec![]).unwrap_err();
        assert!(e.to_string().contains("empty"), "{e}");
        assert!(Initrd::new(&[], vec![]).unwrap().is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
