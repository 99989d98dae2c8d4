//! vCPU state for a direct 64-bit Linux boot: CPUID, MSRs, FPU, LAPIC,
//! segment registers, the GDT and identity-mapped page tables.

use kvm_bindings::{
    kvm_fpu, kvm_msr_entry, kvm_regs, kvm_segment, kvm_sregs, kvm_xcr, kvm_xcrs, CpuId, Msrs,
};
use kvm_ioctls::{Kvm, VcpuFd};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::error::{Error, Result};
use crate::layout::*;

const X86_CR0_PE: u64 = 0x1;
const X86_CR0_ET: u64 = 0x10;
const X86_CR0_PG: u64 = 0x8000_0000;
const X86_CR4_PAE: u64 = 0x20;
const EFER_LME: u64 = 0x100;
const EFER_LMA: u64 = 0x400;

const MSR_IA32_SYSENTER_CS: u32 = 0x174;
const MSR_IA32_SYSENTER_ESP: u32 = 0x175;
const MSR_IA32_SYSENTER_EIP: u32 = 0x176;
const MSR_STAR: u32 = 0xc000_0081;
const MSR_LSTAR: u32 = 0xc000_0082;
const MSR_CSTAR: u32 = 0xc000_0083;
const MSR_SYSCALL_MASK: u32 = 0xc000_0084;
const MSR_KERNEL_GS_BASE: u32 = 0xc000_0102;
const MSR_IA32_TSC: u32 = 0x10;
const MSR_IA32_MISC_ENABLE: u32 = 0x1a0;
const MISC_ENABLE_FAST_STRING: u64 = 1;

const APIC_LVT0: usize = 0x350;
const APIC_LVT1: usize = 0x360;
const APIC_MODE_NMI: u32 = 0x4;
const APIC_MODE_EXTINT: u32 = 0x7;

/// Gives vCPU `index` of `count` p2pvm's normalised CPUID
/// ([`crate::cpuid::normalize`]), and starts it with XCR0 already holding
/// every XSAVE component that CPUID offers.
///
/// Linux enables exactly those components (`fpu__init_cpu_xstate`) and
/// then checks CPUID's XSAVE size against its own sum. KVM recomputes that
/// size from the XCR0 it last saw the guest set. In the KVM host box, QEMU
/// TCG's nested SVM does not intercept the guest's XSETBV, so KVM never
/// sees it: the size stayed at the x87+SSE value and Linux warned
/// (`XSAVE size 832 != kernel size 576`). Starting from the final XCR0
/// makes both agree on any host, and is what the guest sets anyway.
pub fn setup_cpuid(
    kvm: &Kvm,
    vcpu: &VcpuFd,
    index: u8,
    count: u8,
    id: &crate::cpuid::CpuIdentity,
) -> Result<()> {
    let supported: CpuId = kvm
        .get_supported_cpuid(kvm_bindings::KVM_MAX_CPUID_ENTRIES)
        .map_err(|e| Error::kvm("get supported cpuid", e))?;
    let mut entries = supported.as_slice().to_vec();
    crate::cpuid::normalize(&mut entries, index, count, id);
    let xcr0 = crate::cpuid::xcr0(&entries);
    let cpuid =
        CpuId::from_entries(&entries).map_err(|e| Error::Memory(format!("cpuid: {e:?}")))?;
    vcpu.set_cpuid2(&cpuid)
        .map_err(|e| Error::kvm("set cpuid", e))?;
    let Some(xcr0) = xcr0 else {
        return Ok(());
    };
    let mut xcrs = kvm_xcrs {
        nr_xcrs: 1,
        ..Default::default()
    };
    xcrs.xcrs[0] = kvm_xcr {
        xcr: 0,
        value: xcr0,
        ..Default::default()
    };
    vcpu.set_xcrs(&xcrs).map_err(|e| Error::kvm("set xcr0", e))
}

/// Boot-time MSR values.
pub fn setup_msrs(vcpu: &VcpuFd) -> Result<()> {
    let entry = |index, data| kvm_msr_entry {
        index,
        data,
        ..Default::default()
    };
    let entries = [
        entry(MSR_IA32_SYSENTER_CS, 0),
        entry(MSR_IA32_SYSENTER_ESP, 0),
        entry(MSR_IA32_SYSENTER_EIP, 0),
        entry(MSR_STAR, 0),
        entry(MSR_CSTAR, 0),
        entry(MSR_KERNEL_GS_BASE, 0),
        entry(MSR_SYSCALL_MASK, 0),
        entry(MSR_LSTAR, 0),
        entry(MSR_IA32_TSC, 0),
        entry(MSR_IA32_MISC_ENABLE, MISC_ENABLE_FAST_STRING),
    ];
    let msrs = Msrs::from_entries(&entries).map_err(|e| Error::Memory(format!("msrs: {e:?}")))?;
    let n = vcpu
        .set_msrs(&msrs)
        .map_err(|e| Error::kvm("set msrs", e))?;
    if n != entries.len() {
        return Err(Error::Memory(format!(
            "KVM accepted only {n} of {} boot MSRs",
            entries.len()
        )));
    }
    Ok(())
}

/// x87 and SSE control words as after reset.
pub fn setup_fpu(vcpu: &VcpuFd) -> Result<()> {
    let fpu = kvm_fpu {
        fcw: 0x37f,
        mxcsr: 0x1f80,
        ..Default::default()
    };
    vcpu.set_fpu(&fpu).map_err(|e| Error::kvm("set fpu", e))
}

/// LINT0 delivers ExtINT and LINT1 NMI, as firmware leaves them.
pub fn setup_lapic(vcpu: &VcpuFd) -> Result<()> {
    let mut lapic = vcpu.get_lapic().map_err(|e| Error::kvm("get lapic", e))?;
    let set_mode = |regs: &mut [i8], off: usize, mode: u32| {
        let mut b = [0u8; 4];
        for (i, x) in b.iter_mut().enumerate() {
            *x = regs[off + i] as u8;
        }
        let v = (u32::from_le_bytes(b) & !0x700) | (mode << 8);
        for (i, x) in v.to_le_bytes().iter().enumerate() {
            regs[off + i] = *x as i8;
        }
    };
    set_mode(&mut lapic.regs, APIC_LVT0, APIC_MODE_EXTINT);
    set_mode(&mut lapic.regs, APIC_LVT1, APIC_MODE_NMI);
    vcpu.set_lapic(&lapic)
        .map_err(|e| Error::kvm("set lapic", e))
}

/// General registers for the boot vCPU: entry point, stack, zero page in RSI.
pub fn setup_regs(vcpu: &VcpuFd, entry: u64) -> Result<()> {
    let regs = kvm_regs {
        rflags: 0x2,
        rip: entry,
        rsp: BOOT_STACK_POINTER,
        rbp: BOOT_STACK_POINTER,
        rsi: ZERO_PAGE_START,
        ..Default::default()
    };
    vcpu.set_regs(&regs).map_err(|e| Error::kvm("set regs", e))
}

fn gdt_entry(flags: u16, base: u32, limit: u32) -> u64 {
    (u64::from(base & 0xff00_0000) << 32)
        | (u64::from(flags & 0xf0ff) << 40)
        | (u64::from(limit & 0x000f_0000) << 32)
        | (u64::from(base & 0x00ff_ffff) << 16)
        | u64::from(limit & 0x0000_ffff)
}

fn segment(entry: u64, index: u8) -> kvm_segment {
    let get = |shift: u32, bits: u32| ((entry >> shift) & ((1u64 << bits) - 1)) as u8;
    let base = ((entry >> 16) & 0xff_ffff) | ((entry >> 32) & 0xff00_0000);
    let mut limit = ((entry & 0xffff) | ((entry >> 32) & 0xf_0000)) as u32;
    let g = get(55, 1);
    if g == 1 {
        limit = (limit << 12) | 0xfff;
    }
    kvm_segment {
        base,
        limit,
        selector: u16::from(index) * 8,
        type_: get(40, 4),
        present: get(47, 1),
        dpl: get(45, 2),
        db: get(54, 1),
        s: get(44, 1),
        l: get(53, 1),
        g,
        avl: get(52, 1),
        unusable: if get(47, 1) == 1 { 0 } else { 1 },
        padding: 0,
    }
}

/// Writes the GDT and page tables and puts the boot vCPU in 64-bit long mode.
pub fn setup_sregs(mem: &GuestMemoryMmap, vcpu: &VcpuFd) -> Result<()> {
    let gdt = [
        gdt_entry(0, 0, 0),
        gdt_entry(0xa09b, 0, 0xfffff), // 64-bit code
        gdt_entry(0xc093, 0, 0xfffff), // data
        gdt_entry(0x808b, 0, 0xfffff), // TSS
    ];
    let werr = |e: vm_memory::GuestMemoryError| Error::Memory(format!("boot tables: {e}"));
    for (i, e) in gdt.iter().enumerate() {
        mem.write_obj(*e, GuestAddress(GDT_START + 8 * i as u64))
            .map_err(werr)?;
    }
    mem.write_obj(0u64, GuestAddress(IDT_START)).map_err(werr)?;

    // Identity map the first GiB with 2 MiB pages.
    let pdpt = PML4_START + 0x1000;
    let pd = PML4_START + 0x2000;
    mem.write_obj(pdpt | 0x03, GuestAddress(PML4_START))
        .map_err(werr)?;
    mem.write_obj(pd | 0x03, GuestAddress(pdpt)).map_err(werr)?;
    for i in 0..512u64 {
        mem.write_obj((i << 21) | 0x83, GuestAddress(pd + i * 8))
            .map_err(werr)?;
    }

    let mut sregs: kvm_sregs = vcpu.get_sregs().map_err(|e| Error::kvm("get sregs", e))?;
    let code = segment(gdt[1], 1);
    let data = segment(gdt[2], 2);
    let tss = segment(gdt[3], 3);
    sregs.gdt.base = GDT_START;
    sregs.gdt.limit = (std::mem::size_of_val(&gdt) - 1) as u16;
    sregs.idt.base = IDT_START;
    sregs.idt.limit = 7;
    sregs.cs = code;
    sregs.ds = data;
    sregs.es = data;
    sregs.fs = data;
    sregs.gs = data;
    sregs.ss = data;
    sregs.tr = tss;
    sregs.cr0 = X86_CR0_PE | X86_CR0_ET | X86_CR0_PG;
    sregs.cr3 = PML4_START;
    sregs.cr4 = X86_CR4_PAE;
    sregs.efer = EFER_LME | EFER_LMA;
    vcpu.set_sregs(&sregs)
        .map_err(|e| Error::kvm("set sregs", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gdt_code_segment_is_64_bit() {
        let s = segment(gdt_entry(0xa09b, 0, 0xfffff), 1);
        assert_eq!(
            (s.l, s.db, s.present, s.type_, s.selector),
            (1, 0, 1, 0xb, 8)
        );
        assert_eq!(s.limit, 0xffff_ffff);
        let d = segment(gdt_entry(0xc093, 0, 0xfffff), 2);
        assert_eq!((d.l, d.db, d.type_, d.selector), (0, 1, 3, 16));
    }
}
