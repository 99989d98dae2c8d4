//! The KVM virtual machine: memory, in-kernel irqchip, platform devices and
//! vCPU threads, run until the guest powers off or resets.

use std::io::Write;
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;

use event_manager::{EventManager, MutEventSubscriber, SubscriberOps};
use kvm_bindings::{kvm_pit_config, kvm_userspace_memory_region, KVM_PIT_SPEAKER_DUMMY};
use kvm_ioctls::{Kvm, VcpuExit, VcpuFd, VmFd};
use vm_device::bus::{MmioAddress, MmioRange, PioAddress, PioRange};
use vm_device::device_manager::{IoManager, MmioManager, PioManager};
use vm_device::{DeviceMmio, DevicePio};
use vm_memory::{GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion};
use vmm_sys_util::eventfd::EventFd;

use crate::acpi::{self, AcpiConfig};
use crate::console::{AgentReport, AgentSink, ConsoleLog, StdinForwarder};
use crate::devices::barmap::BarFollower;
use crate::devices::legacy::PowerPorts;
use crate::devices::pci::{Aperture, ConfigIo, Ecam};
use crate::devices::serial::{IrqLine, SerialPort};
use crate::devices::{ExitSender, VmExit};
use crate::error::{Error, Result};
use crate::layout::*;
use crate::topology::Topology;
use crate::{boot, counters, cpu, fabric};

/// Everything needed to start a VM.
pub struct VmConfig {
    /// Number of vCPUs.
    pub cpus: u8,
    /// Guest RAM in bytes.
    pub memory: u64,
    /// Kernel image (ELF vmlinux or bzImage).
    pub kernel: PathBuf,
    /// The concatenated initramfs archives.
    pub initrd: crate::initrd::Initrd,
    /// The kernel command line.
    pub cmdline: String,
    /// The topology the fabric is built from.
    pub topology: Topology,
    /// Where to keep the fabric's link counters (JSON), if anywhere.
    pub counters: Option<PathBuf>,
    /// Where to write one JSON line per routed request, if anywhere.
    pub trace: Option<PathBuf>,
    /// Serve the control socket here.
    pub control: Option<PathBuf>,
    /// Serve the control protocol on this serial device (in the box).
    pub control_tty: Option<PathBuf>,
    /// Forward stdin to the console (interactive mode).
    pub interactive: bool,
    /// Echo the console to this stream (stdout when interactive).
    pub console_echo: Option<Arc<Mutex<dyn Write + Send>>>,
    /// Stop the VM with an error when it has not ended after this long.
    pub timeout: Option<std::time::Duration>,
}

/// How a VM ended.
pub struct Outcome {
    /// Why it ended.
    pub exit: VmExit,
    /// What the guest agent reported on COM2.
    pub agent: AgentReport,
    /// The console's tail, for error reports.
    pub console: ConsoleLog,
}

/// Identity-map TSS address required on Intel hosts.
const TSS_ADDRESS: usize = 0xfffb_d000;

/// Creates the VM, boots the kernel and runs it until it ends.
pub fn run(cfg: VmConfig) -> Result<Outcome> {
    let kvm = Kvm::new().map_err(|e| Error::kvm("open /dev/kvm", e))?;
    let vm = Arc::new(kvm.create_vm().map_err(|e| Error::kvm("create vm", e))?);
    vm.set_tss_address(TSS_ADDRESS)
        .map_err(|e| Error::kvm("set tss address", e))?;
    vm.create_irq_chip()
        .map_err(|e| Error::kvm("create irqchip", e))?;
    let pit = kvm_pit_config {
        flags: KVM_PIT_SPEAKER_DUMMY,
        ..Default::default()
    };
    vm.create_pit2(pit)
        .map_err(|e| Error::kvm("create pit", e))?;

    let mem = guest_memory(&vm, cfg.memory)?;
    let mut built = fabric::build(
        &cfg.topology,
        cfg.memory,
        ram_regions(cfg.memory),
        Arc::new(fabric::GuestMemoryRam(mem.clone())),
    )?;
    // Interrupt messages reaching the root complex go to KVM's local APICs,
    // and so do the VT-d unit's fault and invalidation events.
    let msi = Arc::new(crate::devices::msi::KvmMsi::new(vm.clone()));
    built.fabric.set_interrupt_sink(msi.clone());
    if let Some(unit) = &built.iommu {
        unit.set_interrupt_sink(msi);
    }
    for line in built.report.to_string().lines() {
        log::debug!("firmware: {line}");
    }
    let config_bus = built.fabric.clone();
    let mut doorbells = Vec::new();
    for (node, thread) in &built.threads {
        doorbells.push((*node, thread.doorbell_fds()?));
    }
    let bars = Arc::new(BarFollower::new(vm.clone(), &config_bus, doorbells));
    bars.apply(&config_bus.watched_bars());
    built.bells.set(bars.clone());
    let rsdp = acpi::write_tables(
        &mem,
        &AcpiConfig {
            cpus: cfg.cpus,
            ram_size: cfg.memory,
            oem_id: *b"P2PVM ",
            vtd: built.iommu.as_ref().map(|_| crate::layout::VTD_START),
        },
    )?;
    let kernel = boot::load(
        &mem,
        cfg.memory,
        &cfg.kernel,
        &cfg.initrd,
        &cfg.cmdline,
        rsdp,
    )?;
    log::debug!("kernel {:?} entry {:#x}", kernel.format, kernel.entry);

    let (exit_tx, exit_rx) = mpsc::channel();
    let console = ConsoleLog::new(cfg.console_echo.clone());
    let (agent_sink, agent_report) =
        AgentSink::new(Box::new(std::io::stdout()), Box::new(std::io::stderr()));

    let com1 = Arc::new(Mutex::new(SerialPort::new(
        irq_line(&vm, COM1_IRQ)?,
        console.clone(),
    )));
    let com2 = Arc::new(Mutex::new(SerialPort::new(
        irq_line(&vm, COM2_IRQ)?,
        agent_sink,
    )));
    let power = Arc::new(Mutex::new(PowerPorts::new(exit_tx.clone())));
    let mut io = IoManager::new();
    register_pio(&mut io, COM1_PORT, 8, com1.clone())?;
    register_pio(&mut io, COM2_PORT, 8, com2)?;
    register_pio(&mut io, ACPI_SLEEP_CONTROL_PORT, 3, power.clone())?;
    register_pio(&mut io, I8042_PORT, 1, power)?;
    // The fabric's ways in take no lock of their own (see devices::pci).
    register_pio(
        &mut io,
        PCI_CONFIG_ADDRESS,
        8,
        Arc::new(ConfigIo::new(config_bus.clone(), bars.clone())),
    )?;
    register_mmio(
        &mut io,
        ECAM_START,
        ECAM_SIZE,
        Arc::new(Ecam::new(config_bus.clone(), bars.clone())),
    )?;
    register_mmio(
        &mut io,
        MMIO32_START,
        MMIO32_SIZE,
        Arc::new(Aperture::new(config_bus.clone(), MMIO32_START)),
    )?;
    if let Some(unit) = &built.iommu {
        // Linux reads CAP and ECAP through early_ioremap: the page answers
        // from the start.
        register_mmio(
            &mut io,
            crate::layout::VTD_START,
            vtd::regs::reg::SIZE,
            Arc::new(crate::devices::VtdMmio(unit.clone())),
        )?;
    }
    let (m64, m64_size) = mmio64_aperture(cfg.memory);
    register_mmio(
        &mut io,
        m64,
        m64_size,
        Arc::new(Aperture::new(config_bus.clone(), m64)),
    )?;
    let stop_devices = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut device_threads = Vec::new();
    for (_, thread) in std::mem::take(&mut built.threads) {
        device_threads.push(thread.spawn(stop_devices.clone())?);
    }
    let counters = cfg
        .counters
        .clone()
        .map(|path| counters::CountersFile::start(path, &built));
    if let Some(path) = &cfg.trace {
        crate::trace::start(&built.fabric, path)?;
    }
    if cfg.control.is_some() || cfg.control_tty.is_some() {
        let follower = bars.clone();
        let control = crate::control::Control::new(
            &built,
            Some(Arc::new(move |m: &[pcie_core::BarMove]| follower.apply(m))),
        );
        if let Some(path) = &cfg.control {
            crate::control::serve_unix(path, control.clone())?;
        }
        if let Some(tty) = &cfg.control_tty {
            crate::control::serve_tty(tty, control)?;
        }
    }
    let io = Arc::new(io);

    // Every vCPU is created and set up before any runs, as on hardware
    // where all CPUs exist at reset: no vCPU runs while KVM adds another.
    let identity = cfg.topology.cpu.identity();
    let mut vcpus = Vec::with_capacity(usize::from(cfg.cpus));
    for id in 0..cfg.cpus {
        let vcpu = vm
            .create_vcpu(u64::from(id))
            .map_err(|e| Error::kvm("create vcpu", e))?;
        cpu::setup_cpuid(&kvm, &vcpu, id, cfg.cpus, &identity)?;
        cpu::setup_msrs(&vcpu)?;
        cpu::setup_fpu(&vcpu)?;
        cpu::setup_lapic(&vcpu)?;
        if id == 0 {
            cpu::setup_regs(&vcpu, kernel.entry)?;
            cpu::setup_sregs(&mem, &vcpu)?;
        }
        vcpus.push((id, vcpu));
    }
    for (id, vcpu) in vcpus {
        let io = io.clone();
        let exit = exit_tx.clone();
        thread::Builder::new()
            .name(format!("vcpu{id}"))
            .spawn(move || vcpu_loop(id, vcpu, &io, &exit))
            .map_err(|e| Error::io("spawning a vCPU thread", e))?;
    }

    if cfg.interactive {
        let forwarder = StdinForwarder::new(com1, exit_tx.clone());
        spawn_event_loop(forwarder)?;
    }
    drop(exit_tx);

    let exit = match cfg.timeout {
        None => exit_rx
            .recv()
            .unwrap_or_else(|_| VmExit::Error("all vCPUs stopped".into())),
        Some(t) => match exit_rx.recv_timeout(t) {
            Ok(exit) => exit,
            Err(mpsc::RecvTimeoutError::Timeout) => VmExit::Error(format!(
                "the guest did not end within --timeout {}s",
                t.as_secs()
            )),
            Err(mpsc::RecvTimeoutError::Disconnected) => VmExit::Error("all vCPUs stopped".into()),
        },
    };
    // The device threads end before the final counters are read.
    stop_devices.store(true, std::sync::atomic::Ordering::Release);
    for t in device_threads {
        let _ = t.join();
    }
    // Flushes a trace started by --trace or through the control socket.
    crate::trace::stop(&built.fabric);
    if let Some(c) = counters {
        c.finish();
    }
    // Keep the memory mapped until the end: vCPU threads may still run.
    std::mem::forget(mem);
    let agent = agent_report
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    Ok(Outcome {
        exit,
        agent,
        console,
    })
}

/// Allocates guest RAM and registers it with KVM, one slot per region.
fn guest_memory(vm: &VmFd, size: u64) -> Result<GuestMemoryMmap> {
    let ranges: Vec<(GuestAddress, usize)> = ram_regions(size)
        .into_iter()
        .map(|(s, l)| (GuestAddress(s), l as usize))
        .collect();
    let mem = GuestMemoryMmap::from_ranges(&ranges)
        .map_err(|e| Error::Memory(format!("cannot allocate {} MiB: {e}", size >> 20)))?;
    for (slot, region) in mem.iter().enumerate() {
        let host = mem
            .get_host_address(region.start_addr())
            .map_err(|e| Error::Memory(e.to_string()))?;
        // Transparent huge pages, as QEMU asks for its RAM: loading the
        // kernel and initramfs, and the guest's first touch of its memory,
        // fault 2 MiB at a time instead of 4 KiB (many times faster in the
        // KVM host box, where every fault is emulated). Advice only: a
        // host without THP ignores it.
        // SAFETY: `host..host + len` is the mapping `mem` owns; madvise
        // changes no contents.
        let rc = unsafe {
            libc::madvise(
                host.cast::<libc::c_void>(),
                region.len() as usize,
                libc::MADV_HUGEPAGE,
            )
        };
        if rc != 0 {
            log::debug!(
                "madvise(MADV_HUGEPAGE): {}",
                std::io::Error::last_os_error()
            );
        }
        let r = kvm_userspace_memory_region {
            slot: slot as u32,
            flags: 0,
            guest_phys_addr: region.start_addr().0,
            memory_size: region.len(),
            userspace_addr: host as u64,
        };
        // SAFETY: the region is a live mapping owned by `mem`, which outlives the VM
        // (it is never unmapped while vCPUs run).
        unsafe { vm.set_user_memory_region(r) }
            .map_err(|e| Error::kvm("set user memory region", e))?;
    }
    Ok(mem)
}

fn irq_line(vm: &VmFd, gsi: u32) -> Result<IrqLine> {
    let evt = EventFd::new(libc::EFD_NONBLOCK).map_err(|e| Error::io("eventfd", e))?;
    vm.register_irqfd(&evt, gsi)
        .map_err(|e| Error::kvm("register irqfd", e))?;
    Ok(IrqLine(evt))
}

fn register_pio(
    io: &mut IoManager,
    base: u16,
    len: u16,
    dev: Arc<dyn DevicePio + Send + Sync>,
) -> Result<()> {
    let range = PioRange::new(PioAddress(base), len)
        .map_err(|e| Error::Memory(format!("port range {base:#x}: {e:?}")))?;
    io.register_pio(range, dev)
        .map_err(|e| Error::Memory(format!("port range {base:#x}: {e:?}")))
}

fn register_mmio(
    io: &mut IoManager,
    base: u64,
    len: u64,
    dev: Arc<dyn DeviceMmio + Send + Sync>,
) -> Result<()> {
    let range = MmioRange::new(MmioAddress(base), len)
        .map_err(|e| Error::Memory(format!("mmio range {base:#x}: {e:?}")))?;
    io.register_mmio(range, dev)
        .map_err(|e| Error::Memory(format!("mmio range {base:#x}: {e:?}")))
}

fn spawn_event_loop<S: MutEventSubscriber + Send + 'static>(sub: S) -> Result<()> {
    let mut em: EventManager<S> =
        EventManager::new().map_err(|e| Error::Memory(format!("event manager: {e:?}")))?;
    em.add_subscriber(sub);
    thread::Builder::new()
        .name("events".into())
        .spawn(move || loop {
            if let Err(e) = em.run_with_timeout(50) {
                log::warn!("event loop: {e:?}");
                return;
            }
        })
        .map_err(|e| Error::io("spawning the event thread", e))?;
    Ok(())
}

/// Runs one vCPU until the VM ends, dispatching port and MMIO exits.
fn vcpu_loop(id: u8, mut vcpu: VcpuFd, io: &IoManager, exit: &ExitSender) {
    loop {
        let outcome = match vcpu.run() {
            Ok(VcpuExit::IoIn(port, data)) => {
                if io.pio_read(PioAddress(port), data).is_err() {
                    data.fill(0xff);
                }
                None
            }
            Ok(VcpuExit::IoOut(port, data)) => {
                let _ = io.pio_write(PioAddress(port), data);
                None
            }
            Ok(VcpuExit::MmioRead(addr, data)) => {
                if io.mmio_read(MmioAddress(addr), data).is_err() {
                    data.fill(0xff);
                }
                None
            }
            Ok(VcpuExit::MmioWrite(addr, data)) => {
                let _ = io.mmio_write(MmioAddress(addr), data);
                None
            }
            Ok(VcpuExit::Hlt) | Ok(VcpuExit::IrqWindowOpen) | Ok(VcpuExit::Intr) => None,
            Ok(VcpuExit::Shutdown) => Some(VmExit::Reboot),
            Ok(VcpuExit::SystemEvent(kind, _)) => Some(match kind {
                kvm_bindings::KVM_SYSTEM_EVENT_SHUTDOWN => VmExit::PowerOff,
                _ => VmExit::Reboot,
            }),
            Ok(other) => Some(VmExit::Error(format!(
                "vcpu{id}: unexpected exit {other:?}"
            ))),
            Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => None,
            Err(e) => Some(VmExit::Error(format!("vcpu{id}: KVM_RUN failed: {e}"))),
        };
        if let Some(ev) = outcome {
            let _ = exit.send(ev);
            return;
        }
    }
}
