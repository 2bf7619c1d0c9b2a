#![no_main]
//! Fuzz target `npy_file`: the body is `sat2cap::testing::fuzz::npy_file`, which `tests/fuzz_replay.rs`
//! also runs on `fuzz/corpus/npy_file/` under plain `cargo test`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sat2cap::testing::fuzz::npy_file(data);
});
