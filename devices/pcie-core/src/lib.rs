//! PCIe core.
