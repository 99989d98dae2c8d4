//! Helpers for the end-to-end tests that boot Linux under p2pvm.
