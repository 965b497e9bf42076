//! The demo suite's only code is in `tests/demo.rs`; this library exists so the package
//! builds on its own.
