//! [`TestEndpoint`]: the function, its BARs and its DMA engine.

use pcie_core::{
    config_read_u32, BarRegion, ConfigEffects, DmaHandle, LinkSpeed, LinkWidth, PciFunction,
    ResetKind, Type0Config,
};

use crate::backing::Backing;
use crate::regs::{dma_reg, BAR0_SIZE, DEFAULT_BAR2_SIZE, DMA_CAP_OFFSET, MAGIC, MAX_DMA_LEN};
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

/// The test endpoint: see the crate documentation.
#[derive(Debug)]
pub struct TestEndpoint {
    cfg: TestEndpointConfig,
    config: Type0Config,
    power_on: Type0Config,
    scratch: Box<[u8]>,
    ram: Backing,
    dma: DmaHandle,
}

impl TestEndpoint {
    /// A test endpoint in its power-on state, reaching memory through `dma`
    /// (a handle for the node it is added as; see
    /// [`Fabric::add_with`](pcie_core::Fabric::add_with)).
    pub fn new(cfg: TestEndpointConfig, dma: DmaHandle) -> Result<Self, Error> {
        let size = cfg.bar2_size;
        if !size.is_power_of_two() || size < 4096 {
            return Err(Error::Bar2Size(size));
        }
        let config = crate::caps::build(size, cfg.link_speed, link_width(cfg.link_width)?)?;
        let len = usize::try_from(size).map_err(|_| Error::OutOfMemory(size))?;
        let ram = Backing::new(len).ok_or(Error::OutOfMemory(size))?;
        Ok(TestEndpoint {
            cfg,
            power_on: config.clone(),
            config,
            scratch: fresh_scratch(),
            ram,
            dma,
        })
    }

    /// The configuration it was built from.
    pub fn config(&self) -> &TestEndpointConfig {
        &self.cfg
    }

    /// The memory behind a RAM-backed BAR (BAR 2 only), as (start, length):
    /// page-aligned, as long as the BAR, owned by the device and valid for
    /// its whole life wherever the device value moves (a `Box` in the
    /// fabric included). The VMM may map it into the guest at the BAR's
    /// address; device accesses and such a mapping see the same bytes.
    /// Take it before handing the device over (in `add_with`'s closure):
    /// the fabric keeps it as a `dyn PciFunction`.
    pub fn bar_backing(&self, bar: u8) -> Option<(*mut u8, usize)> {
        (bar == 2).then(|| self.ram.region())
    }

    /// The handle its DMA goes through.
    pub fn dma_handle(&self) -> &DmaHandle {
        &self.dma
    }

    /// The STATUS register: how the last DMA command ended.
    pub fn dma_status(&self) -> DmaStatus {
        let code = self.reg(dma_reg::STATUS);
        DmaStatus::from_code(code).unwrap_or(DmaStatus::Idle)
    }

    fn reg(&self, off: u16) -> u32 {
        config_read_u32(self, DMA_CAP_OFFSET + off)
    }

    fn set_reg(&mut self, off: u16, value: u32) {
        self.config.space_mut().set_u32(DMA_CAP_OFFSET + off, value);
    }

    /// Runs the command in the DMA registers: reads LENGTH bytes at SRC
    /// into a buffer, then writes them at DST one request per 4 KiB page,
    /// and records STATUS, DONE and COUNT.
    fn run_dma(&mut self) {
        let addr = |lo, hi| u64::from(self.reg(hi)) << 32 | u64::from(self.reg(lo));
        let src = addr(dma_reg::SRC_LO, dma_reg::SRC_HI);
        let dst = addr(dma_reg::DST_LO, dma_reg::DST_HI);
        let (status, done) = match self.reg(dma_reg::LENGTH) {
            0 => (DmaStatus::ZeroLength, 0),
            len if len > MAX_DMA_LEN => (DmaStatus::TooLong, 0),
            len => crate::dma::copy(&self.dma, src, dst, len as usize),
        };
        self.set_reg(dma_reg::STATUS, status.code());
        self.set_reg(dma_reg::DONE, done as u32);
        let count = self.reg(dma_reg::COUNT).wrapping_add(1);
        self.set_reg(dma_reg::COUNT, count);
    }
}

fn fresh_scratch() -> Box<[u8]> {
    let mut s = vec![0; BAR0_SIZE as usize].into_boxed_slice();
    s[..4].copy_from_slice(&MAGIC.to_le_bytes());
    s
}

impl PciFunction for TestEndpoint {
    fn config_read(&self, offset: u16, data: &mut [u8]) {
        self.config.read(offset, data)
    }

    /// Config writes; a write setting CONTROL's GO bit runs the DMA
    /// command synchronously, before returning.
    fn config_write(&mut self, offset: u16, data: &[u8]) -> ConfigEffects {
        let effects = self.config.write(offset, data);
        let control = usize::from(DMA_CAP_OFFSET + dma_reg::CONTROL);
        let go = control
            .checked_sub(usize::from(offset))
            .and_then(|i| data.get(i))
            .is_some_and(|b| b & dma_reg::GO != 0);
        if go {
            self.run_dma();
        }
        effects
    }

    /// BAR 0: scratch registers (dword 0 reads [`MAGIC`]); BAR 2: its RAM.
    /// Bytes past a BAR's end read 0xFF.
    fn bar_read(&mut self, bar: u8, offset: u64, data: &mut [u8]) {
        match bar {
            0 => {
                for (i, b) in data.iter_mut().enumerate() {
                    let at = offset.saturating_add(i as u64);
                    *b = usize::try_from(at)
                        .ok()
                        .and_then(|at| self.scratch.get(at))
                        .map_or(0xff, |v| *v);
                }
            }
            2 => self.ram.read(offset, data),
            _ => data.fill(0xff),
        }
    }

    /// BAR 0: scratch registers (the magic dword is read-only); BAR 2: its
    /// RAM. Bytes past a BAR's end are dropped.
    fn bar_write(&mut self, bar: u8, offset: u64, data: &[u8]) {
        match bar {
            0 => {
                for (i, &b) in data.iter().enumerate() {
                    let at = offset.saturating_add(i as u64);
                    let reg = usize::try_from(at).ok().filter(|&at| at >= 4);
                    if let Some(slot) = reg.and_then(|at| self.scratch.get_mut(at)) {
                        *slot = b;
                    }
                }
            }
            2 => self.ram.write(offset, data),
            _ => {}
        }
    }

    /// Back to the power-on config space (command, BARs, DMA registers;
    /// STATUS reads Idle) and zeroed scratch registers. BAR 2's RAM keeps
    /// its contents, like device SRAM.
    fn reset(&mut self, _kind: ResetKind) {
        self.config = self.power_on.clone();
        self.scratch = fresh_scratch();
    }

    fn bar_regions(&self) -> Vec<BarRegion> {
        self.config.bar_regions()
    }
}
