//! End-to-end tests for p2pvm: see `tests/` (boot tier and bad input).
//! The helpers live in `tests/common/` because they need the
//! `CARGO_BIN_EXE_p2pvm-e2e` path, which cargo gives integration tests only.
