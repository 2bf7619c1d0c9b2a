#![no_main]
//! Fuzz target `tombstone_parse`: the body is `sat2cap::testing::fuzz::tombstone_parse`, which
//! `tests/fuzz_replay.rs` also runs on `fuzz/corpus/tombstone_parse/` under plain `cargo test`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sat2cap::testing::fuzz::tombstone_parse(data);
});
