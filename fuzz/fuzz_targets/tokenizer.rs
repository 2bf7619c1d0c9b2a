#![no_main]
//! Fuzz target `tokenizer` (needs `--features encoders`): the body is
//! `sat2cap::testing::fuzz::tokenizer`, which `tests/fuzz_replay.rs` also runs on
//! `fuzz/corpus/tokenizer/` under plain `cargo test`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sat2cap::testing::fuzz::tokenizer(data);
});
