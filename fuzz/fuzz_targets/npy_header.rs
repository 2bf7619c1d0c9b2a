#![no_main]
//! Fuzz target `npy_header`: the body is `sat2cap::testing::fuzz::npy_header`, which `tests/fuzz_replay.rs`
//! also runs on `fuzz/corpus/npy_header/` under plain `cargo test`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sat2cap::testing::fuzz::npy_header(data);
});
