#![no_main]
//! Fuzz target `db_ops`: the body is `sat2cap::testing::fuzz::db_ops`, which
//! `tests/fuzz_replay.rs` also runs on `fuzz/corpus/db_ops/` under plain `cargo test`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sat2cap::testing::fuzz::db_ops(data);
});
