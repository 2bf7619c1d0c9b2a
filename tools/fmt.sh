#!/usr/bin/env bash
# Formats every tracked Rust source file, or checks it with `tools/fmt.sh --check`.
# `cargo fmt` alone misses the modules declared through the `internal!` macro (rustfmt does
# not follow `mod` items inside a macro call), so this script names the files itself.
set -euo pipefail
cd "$(dirname "$0")/.."
git ls-files -z '*.rs' | xargs -0 rustfmt --edition 2021 "$@"
