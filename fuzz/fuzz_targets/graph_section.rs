#![no_main]
//! Fuzz target `graph_section`: the body is `sat2cap::testing::fuzz::graph_section`, which
//! `tests/fuzz_replay.rs` also runs on `fuzz/corpus/graph_section/` under plain `cargo test`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sat2cap::testing::fuzz::graph_section(data);
});
