//! PCIe switch: host bridge, root ports and switch ports on one Type-1 bridge core (issue #3).
