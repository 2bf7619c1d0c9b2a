#![no_main]
//! Fuzz target `image_preprocess` (needs `--features encoders`): the body is
//! `sat2cap::testing::fuzz::image_preprocess`, which `tests/fuzz_replay.rs` also runs on
//! `fuzz/corpus/image_preprocess/` under plain `cargo test`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sat2cap::testing::fuzz::image_preprocess(data);
});
