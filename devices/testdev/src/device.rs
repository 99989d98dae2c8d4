//! [`TestEndpoint`]: the function the fabric holds (registers, BARs), and
//! how it is built together with its [`TestEngine`].

use std::sync::Arc;

use pcie_core::{
    BarMemory, BarRegion, ConfigEffects, DmaHandle, Doorbell, LinkSpeed, LinkWidth, Notifier,
    PciFunction, ResetKind,
};

use crate::engine::TestEngine;
use crate::regs::{bar4, dma_reg, DEFAULT_BAR2_SIZE, DMA_CAP_OFFSET};
use crate::state::Shared;
use crate::{DmaStatus, Error};

/// How a [`TestEndpoint`] is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TestEndpointConfig {
    /// Size of BAR 2, the RAM-backed 64-bit prefetchable BAR: a power of
    /// two of at least 4 KiB.
    pub bar2_size: u64,
    /// Link speed, maximum and current alike.
    pub link_speed: LinkSpeed,
    /// Link width in lanes: 1, 2, 4, 8, 12, 16 or 32.
    pub link_width: u8,
}

impl Default for TestEndpointConfig {
    /// 1 MiB BAR 2, 8 GT/s x4.
    fn default() -> Self {
        TestEndpointConfig {
            bar2_size: DEFAULT_BAR2_SIZE,
            link_speed: LinkSpeed::Gt8,
            link_width: 4,
        }
    }
}

fn link_width(w: u8) -> Result<LinkWidth, Error> {
    LinkWidth::from_lanes(w).ok_or(Error::LinkWidth(w))
}

/// The test endpoint's function: see the crate documentation. It never
/// performs a DMA: GO and the doorbell latch a command and notify the
/// [`TestEngine`], which runs it on the device's thread.
pub struct TestEndpoint {
    cfg: TestEndpointConfig,
    shared: Arc<Shared>,
    ram: Arc<BarMemory>,
    notify: Arc<dyn Notifier>,
}

impl std::fmt::Debug for TestEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestEndpoint")
            .field("cfg", &self.cfg)
            .field("ram", &self.ram)
            .finish_non_exhaustive()
    }
}

impl TestEndpoint {
    /// A test endpoint in its power-on state and its engine. The engine
    /// reaches memory through `dma` (a handle for the node the endpoint is
    /// added as; see [`Fabric::add_with`](pcie_core::Fabric::add_with)) and
    /// must be driven on a thread of its own; the endpoint calls `notify`
    /// when the engine has work. Only the engine holds `dma`, so the
    /// fabric holding the endpoint is no reference cycle.
    pub fn new(
        cfg: TestEndpointConfig,
        dma: DmaHandle,
        notify: Arc<dyn Notifier>,
    ) -> Result<(Self, TestEngine), Error> {
        let size = cfg.bar2_size;
        if !size.is_power_of_two() || size < 4096 {
            return Err(Error::Bar2Size(size));
        }
        let (config, msix) = crate::caps::build(size, cfg.link_speed, link_width(cfg.link_width)?)?;
        let ram = BarMemory::new(size).map_err(|_| Error::OutOfMemory(size))?;
        let shared = Arc::new(Shared::new(config, msix));
        let engine = TestEngine::new(shared.clone(), dma);
        let ep = TestEndpoint {
            cfg,
            shared,
            ram,
            notify,
        };
        Ok((ep, engine))
    }

    /// The configuration it was built from.
    pub fn config(&self) -> &TestEndpointConfig {
        &self.cfg
    }

    /// The STATUS register: how the last DMA command ended (Busy while one runs).
    pub fn dma_status(&self) -> DmaStatus {
        self.shared.lock().status()
    }

    fn go(&self) {
        if self.shared.lock().go() {
            self.notify.notify();
        }
    }
}

impl PciFunction for TestEndpoint {
    fn config_read(&self, offset: u16, data: &mut [u8]) {
        self.shared.lock().config.read(offset, data)
    }

    /// Config writes. A write setting CONTROL's GO bit latches the command
    /// (see the crate documentation) and notifies the engine, as does one
    /// setting INJECT_COR when ERR_COR is to be sent; a write that
    /// unmasks a pending MSI-X vector hands its message to the engine.
    fn config_write(&mut self, offset: u16, data: &[u8]) -> ConfigEffects {
        let (effects, due) = {
            let mut core = self.shared.lock();
            let effects = core.config.write(offset, data);
            let core = &mut *core;
            let due = core.msix.take_due(core.config.space());
            let any = !due.is_empty();
            core.due.extend(due);
            (effects, any)
        };
        let control = usize::from(DMA_CAP_OFFSET + dma_reg::CONTROL);
        let bits = control
            .checked_sub(usize::from(offset))
            .and_then(|i| data.get(i))
            .copied()
            .unwrap_or(0);
        if bits & dma_reg::INJECT_COR != 0 && self.shared.lock().inject_correctable() {
            self.notify.notify();
        }
        if bits & dma_reg::GO != 0 {
            self.go();
        }
        if due {
            self.notify.notify();
        }
        effects
    }

    /// BAR 0: scratch registers (dword 0 reads [`MAGIC`](crate::MAGIC));
    /// BAR 2: its RAM; BAR 4: the MSI-X table and PBA (the doorbell reads
    /// 0). Bytes past a BAR's end read 0xFF.
    fn bar_read(&mut self, bar: u8, offset: u64, data: &mut [u8]) {
        match bar {
            0 => {
                let core = self.shared.lock();
                for (i, b) in data.iter_mut().enumerate() {
                    let at = offset.saturating_add(i as u64);
                    *b = usize::try_from(at)
                        .ok()
                        .and_then(|at| core.scratch.get(at))
                        .map_or(0xff, |v| *v);
                }
            }
            2 => self.ram.read(offset, data),
            4 => {
                let core = self.shared.lock();
                let table = u64::from(bar4::MSIX_TABLE);
                let pba = u64::from(bar4::MSIX_PBA);
                match offset {
                    o if (table..table + core.msix.table_len()).contains(&o) => {
                        core.msix.table_read(o - table, data)
                    }
                    o if (pba..pba + core.msix.pba_len()).contains(&o) => {
                        core.msix.pba_read(o - pba, data)
                    }
                    // Reserved space and the doorbell read 0.
                    _ => data.fill(0),
                }
            }
            _ => data.fill(0xff),
        }
    }

    /// BAR 0: scratch registers (the magic dword is read-only); BAR 2: its
    /// RAM; BAR 4: the MSI-X table, and the doorbell (any write is GO).
    /// Bytes past a BAR's end are dropped.
    fn bar_write(&mut self, bar: u8, offset: u64, data: &[u8]) {
        match bar {
            0 => {
                let mut core = self.shared.lock();
                for (i, &b) in data.iter().enumerate() {
                    let at = offset.saturating_add(i as u64);
                    let reg = usize::try_from(at).ok().filter(|&at| at >= 4);
                    if let Some(slot) = reg.and_then(|at| core.scratch.get_mut(at)) {
                        *slot = b;
                    }
                }
            }
            2 => self.ram.write(offset, data),
            4 if (bar4::DOORBELL..bar4::DOORBELL + 4).contains(&offset) => self.go(),
            4 => {
                let table = u64::from(bar4::MSIX_TABLE);
                let mut core = self.shared.lock();
                let core = &mut *core;
                if (table..table + core.msix.table_len()).contains(&offset) {
                    let due = core
                        .msix
                        .table_write(core.config.space(), offset - table, data);
                    if !due.is_empty() {
                        core.due.extend(due);
                        self.notify.notify();
                    }
                }
            }
            _ => {}
        }
    }

    /// Back to the power-on config space (command, BARs, DMA registers;
    /// STATUS reads Idle; MSI-X masked), zeroed scratch registers; a
    /// running command's result is discarded. BAR 2's RAM keeps its
    /// contents, like device SRAM.
    fn reset(&mut self, _kind: ResetKind) {
        self.shared.lock().reset();
    }

    fn bar_regions(&self) -> Vec<BarRegion> {
        self.shared.lock().config.bar_regions()
    }

    fn bar_backing(&self, bar: u8) -> Option<Arc<BarMemory>> {
        (bar == 2).then(|| self.ram.clone())
    }

    fn doorbells(&self) -> Vec<Doorbell> {
        vec![Doorbell {
            bar: 4,
            offset: bar4::DOORBELL,
            eventfd: true,
        }]
    }
}
