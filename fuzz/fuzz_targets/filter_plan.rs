#![no_main]
//! Fuzz target `filter_plan`: the body is `sat2cap::testing::fuzz::filter_plan`, which
//! `tests/fuzz_replay.rs` also runs on `fuzz/corpus/filter_plan/` under plain `cargo test`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sat2cap::testing::fuzz::filter_plan(data);
});
