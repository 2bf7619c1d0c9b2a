#![no_main]
//! Fuzz target `text_lines`: the body is `sat2cap::testing::fuzz::text_lines`, which `tests/fuzz_replay.rs`
//! also runs on `fuzz/corpus/text_lines/` under plain `cargo test`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sat2cap::testing::fuzz::text_lines(data);
});
