//! NVMe controller with a Controller Memory Buffer BAR (a later issue).
