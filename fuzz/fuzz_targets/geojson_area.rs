#![no_main]
//! Fuzz target `geojson_area` (needs `--features encoders`): the body is
//! `sat2cap::testing::fuzz::geojson_area`, which `tests/fuzz_replay.rs` also runs on
//! `fuzz/corpus/geojson_area/` under plain `cargo test`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sat2cap::testing::fuzz::geojson_area(data);
});
