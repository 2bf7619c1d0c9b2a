#![no_main]
//! Fuzz target `time_parse`: the body is `sat2cap::testing::fuzz::time_parse`, which `tests/fuzz_replay.rs`
//! also runs on `fuzz/corpus/time_parse/` under plain `cargo test`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sat2cap::testing::fuzz::time_parse(data);
});
