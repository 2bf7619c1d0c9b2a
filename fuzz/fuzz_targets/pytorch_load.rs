#![no_main]
//! Fuzz target `pytorch_load` (needs `--features encoders`): the body is
//! `sat2cap::testing::fuzz::pytorch_load`, which `tests/fuzz_replay.rs` also runs on
//! `fuzz/corpus/pytorch_load/` under plain `cargo test`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sat2cap::testing::fuzz::pytorch_load(data);
});
