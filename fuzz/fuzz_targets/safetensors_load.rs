#![no_main]
//! Fuzz target `safetensors_load` (needs `--features encoders`): the body is
//! `sat2cap::testing::fuzz::safetensors_load`, which `tests/fuzz_replay.rs` also runs on
//! `fuzz/corpus/safetensors_load/` under plain `cargo test`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sat2cap::testing::fuzz::safetensors_load(data);
});
