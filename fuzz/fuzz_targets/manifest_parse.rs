#![no_main]
//! Fuzz target `manifest_parse`: the body is `sat2cap::testing::fuzz::manifest_parse`, which
//! `tests/fuzz_replay.rs` also runs on `fuzz/corpus/manifest_parse/` under plain `cargo test`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sat2cap::testing::fuzz::manifest_parse(data);
});
