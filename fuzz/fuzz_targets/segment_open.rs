#![no_main]
//! Fuzz target `segment_open`: the body is `sat2cap::testing::fuzz::segment_open`, which
//! `tests/fuzz_replay.rs` also runs on `fuzz/corpus/segment_open/` under plain `cargo test`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sat2cap::testing::fuzz::segment_open(data);
});
