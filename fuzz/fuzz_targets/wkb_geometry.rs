#![no_main]
//! Fuzz target `wkb_geometry`: the body is `sat2cap::testing::fuzz::wkb_geometry`, which `tests/fuzz_replay.rs`
//! also runs on `fuzz/corpus/wkb_geometry/` under plain `cargo test`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sat2cap::testing::fuzz::wkb_geometry(data);
});
