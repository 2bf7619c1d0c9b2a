#![no_main]
//! Fuzz target `query_jsonl`: the body is `sat2cap::testing::fuzz::query_jsonl`, which `tests/fuzz_replay.rs`
//! also runs on `fuzz/corpus/query_jsonl/` under plain `cargo test`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sat2cap::testing::fuzz::query_jsonl(data);
});
