#![no_main]
//! Fuzz target `geotiff_scene` (needs `--features encoders`): the body is
//! `sat2cap::testing::fuzz::geotiff_scene`, which `tests/fuzz_replay.rs` also runs on
//! `fuzz/corpus/geotiff_scene/` under plain `cargo test`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sat2cap::testing::fuzz::geotiff_scene(data);
});
