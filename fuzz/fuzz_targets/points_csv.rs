#![no_main]
//! Fuzz target `points_csv`: the body is `sat2cap::testing::fuzz::points_csv`, which `tests/fuzz_replay.rs`
//! also runs on `fuzz/corpus/points_csv/` under plain `cargo test`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sat2cap::testing::fuzz::points_csv(data);
});
