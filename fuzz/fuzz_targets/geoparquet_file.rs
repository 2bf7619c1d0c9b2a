#![no_main]
//! Fuzz target `geoparquet_file`: the body is `sat2cap::testing::fuzz::geoparquet_file`, which `tests/fuzz_replay.rs`
//! also runs on `fuzz/corpus/geoparquet_file/` under plain `cargo test`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sat2cap::testing::fuzz::geoparquet_file(data);
});
