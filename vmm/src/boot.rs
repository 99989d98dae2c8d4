//! Loading the kernel, initramfs and command line, and filling the zero page.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use linux_loader::bootparam::{boot_e820_entry, boot_params};
use linux_loader::loader::bzimage::BzImage;
use linux_loader::loader::elf::Elf;
use linux_loader::loader::KernelLoader;
use vm_memory::{Address, ByteValued, Bytes, GuestAddress, GuestMemoryMmap};

use crate::error::{Error, Result};
use crate::layout::*;

const E820_RAM: u32 = 1;
const E820_RESERVED: u32 = 2;
/// "HdrS": the Linux boot protocol magic.
const HDRS_MAGIC: u32 = 0x5372_6448;
const KERNEL_BOOT_FLAG_MAGIC: u16 = 0xaa55;
const KERNEL_LOADER_OTHER: u8 = 0xff;
/// Highest address an initramfs may end at when the kernel does not say.
const DEFAULT_INITRD_ADDR_MAX: u64 = 0x37ff_ffff;
/// `loadflags`: the kernel was loaded high; the loader may use the heap.
const LOADED_HIGH: u8 = 0x01;
const CAN_USE_HEAP: u8 = 0x80;

/// `boot_params` wrapper that vm-memory may copy as plain bytes.
#[derive(Clone, Copy, Default)]
struct BootParams(boot_params);
// SAFETY: boot_params is a plain-old-data C struct with no padding invariants.
unsafe impl ByteValued for BootParams {}

/// Which kind of image a kernel file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelFormat {
    /// An ELF `vmlinux`.
    Elf,
    /// A `bzImage` with the Linux boot protocol header.
    BzImage,
}

/// What the loaded kernel needs from the vCPU setup.
#[derive(Debug, Clone, Copy)]
pub struct LoadedKernel {
    /// 64-bit entry point.
    pub entry: u64,
    /// Format of the image.
    pub format: KernelFormat,
}

/// Tells an ELF vmlinux from a bzImage, or says why the file is neither.
pub fn kernel_format(path: &Path) -> Result<KernelFormat> {
    let err = |msg: String| Error::Kernel {
        path: path.to_path_buf(),
        msg,
    };
    let mut f = File::open(path).map_err(|e| err(e.to_string()))?;
    let mut head = vec![0u8; 0x210];
    let n = f.read(&mut head).map_err(|e| err(e.to_string()))?;
    if n >= 4 && head[..4] == *b"\x7fELF" {
        return Ok(KernelFormat::Elf);
    }
    if n >= 0x206 && u32::from_le_bytes(head[0x202..0x206].try_into().unwrap()) == HDRS_MAGIC {
        return Ok(KernelFormat::BzImage);
    }
    Err(err(
        "not a Linux kernel (neither an ELF vmlinux nor a bzImage)".into(),
    ))
}

/// Loads the kernel into guest memory and returns its 64-bit entry point.
/// Fills the zero page (command line, initramfs, e820, RSDP) as well.
pub fn load(
    mem: &GuestMemoryMmap,
    ram_size: u64,
    kernel: &Path,
    initrd: &crate::initrd::Initrd,
    cmdline: &str,
    rsdp: GuestAddress,
) -> Result<LoadedKernel> {
    let format = kernel_format(kernel)?;
    let kerr = |msg: String| Error::Kernel {
        path: kernel.to_path_buf(),
        msg,
    };
    let mut f = File::open(kernel).map_err(|e| kerr(e.to_string()))?;
    let himem = Some(GuestAddress(HIMEM_START));
    let res = match format {
        KernelFormat::Elf => Elf::load(mem, None, &mut f, himem),
        KernelFormat::BzImage => BzImage::load(mem, None, &mut f, himem),
    }
    .map_err(|e| kerr(format!("cannot load: {e}")))?;

    let mut params = BootParams::default();
    let hdr = &mut params.0.hdr;
    if let Some(setup) = res.setup_header {
        *hdr = setup;
    } else {
        hdr.boot_flag = KERNEL_BOOT_FLAG_MAGIC;
        hdr.header = HDRS_MAGIC;
        hdr.kernel_alignment = 0x0100_0000;
    }
    hdr.type_of_loader = KERNEL_LOADER_OTHER;
    hdr.loadflags |= LOADED_HIGH | CAN_USE_HEAP;
    hdr.heap_end_ptr = 0xfe00;

    // Command line.
    if cmdline.len() + 1 > CMDLINE_MAX_SIZE {
        return Err(Error::Usage(format!(
            "kernel command line is {} bytes; the limit is {}",
            cmdline.len(),
            CMDLINE_MAX_SIZE - 1
        )));
    }
    let mut bytes = cmdline.as_bytes().to_vec();
    bytes.push(0);
    mem.write_slice(&bytes, GuestAddress(CMDLINE_START))
        .map_err(|e| Error::Memory(format!("writing the command line: {e}")))?;
    hdr.cmd_line_ptr = CMDLINE_START as u32;
    hdr.cmdline_size = cmdline.len() as u32;

    // Initramfs, at the top of low RAM.
    if !initrd.is_empty() {
        let low_end = ram_size.min(MMIO32_START);
        let max = match hdr.initrd_addr_max {
            0 => DEFAULT_INITRD_ADDR_MAX,
            m => u64::from(m),
        };
        let top = low_end.min(max + 1);
        let size = initrd.len();
        let start = top.checked_sub(size).map(|s| s & !0xfff).unwrap_or(0);
        if start < res.kernel_end.max(HIMEM_START) {
            return Err(Error::Usage(format!(
                "initramfs of {} MiB does not fit in {} MiB of guest memory below the kernel's limit; use a larger --memory",
                size >> 20,
                ram_size >> 20
            )));
        }
        initrd.write_to(mem, GuestAddress(start))?;
        hdr.ramdisk_image = start as u32;
        hdr.ramdisk_size = size as u32;
    }

    params.0.acpi_rsdp_addr = rsdp.raw_value();
    let entries = e820_map(ram_size);
    for (i, (addr, size, kind)) in entries.iter().enumerate() {
        params.0.e820_table[i] = boot_e820_entry {
            addr: *addr,
            size: *size,
            r#type: *kind,
        };
    }
    params.0.e820_entries = entries.len() as u8;
    mem.write_obj(params, GuestAddress(ZERO_PAGE_START))
        .map_err(|e| Error::Memory(format!("writing the zero page: {e}")))?;

    let entry = match format {
        // The 64-bit entry of a bzImage sits 0x200 bytes into the protected-mode kernel.
        KernelFormat::BzImage => res.kernel_load.raw_value() + 0x200,
        KernelFormat::Elf => res.kernel_load.raw_value(),
    };
    Ok(LoadedKernel { entry, format })
}

/// The e820 map: `(start, size, type)` entries.
pub fn e820_map(ram_size: u64) -> Vec<(u64, u64, u32)> {
    let mut v = vec![(0, EBDA_START, E820_RAM)];
    v.push((ACPI_START, ACPI_END - ACPI_START, E820_RESERVED));
    let low_end = ram_size.min(MMIO32_START);
    v.push((HIMEM_START, low_end - HIMEM_START, E820_RAM));
    // Reserving ECAM lets Linux trust the MCFG window.
    v.push((ECAM_START, ECAM_SIZE, E820_RESERVED));
    if ram_size > MMIO32_START {
        v.push((RAM_64BIT_START, ram_size - MMIO32_START, E820_RAM));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e820_covers_ram_and_reserves_ecam() {
        let m = e820_map(512 << 20);
        let ram: u64 = m.iter().filter(|e| e.2 == E820_RAM).map(|e| e.1).sum();
        assert_eq!(ram, (512 << 20) - (HIMEM_START - EBDA_START));
        assert!(m.contains(&(ECAM_START, ECAM_SIZE, E820_RESERVED)));
        let big = e820_map(5 << 30);
        assert!(big.contains(&(RAM_64BIT_START, 2 << 30, E820_RAM)));
    }

    #[test]
    fn non_kernel_file_is_rejected() {
        let dir = std::env::temp_dir().join(format!("p2pvm-boot-{}", std::process::id()));
        std::fs::write(&dir, b"#!/bin/sh\necho hello\n").unwrap();
        let e = kernel_format(&dir).unwrap_err().to_string();
        std::fs::remove_file(&dir).unwrap();
        assert!(e.contains("not a Linux kernel"), "{e}");
        let e = kernel_format(Path::new("/nonexistent/vmlinux"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/vmlinux"), "{e}");
    }
}
