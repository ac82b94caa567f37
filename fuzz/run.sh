#!/usr/bin/env bash
# Runs every fuzz target for a bounded time on the stable toolchain
# (no sanitizer: `-s none`), growing fuzz/corpus/<target>.
#   fuzz/run.sh [seconds-per-target]   (default 60)
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-60}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
for target in client_ops close_payload retry_after pong_matcher hub_ops; do
    mkdir -p "corpus/$target"
    echo "=== $target for ${secs}s"
    cargo fuzz run -s none --release "$target" "corpus/$target" -- \
        -max_total_time="$secs" -max_len=4096 -print_final_stats=1 2>&1 \
        | grep -E "stat::number_of_executed_units|stat::average_exec_per_sec|ERROR|panicked|SUMMARY" || true
done
