//! A/B comparison: pure logic over rows the warehouse returns; no SQL text, no I/O.
