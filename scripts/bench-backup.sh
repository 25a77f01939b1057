#!/usr/bin/env bash
# The backup benchmark of docs/benchmarks.md: release build, then 100 users at 20 and 200
# messages per mailbox (memory flatness), then 1,000 users (about 15 minutes: the tenant's
# SharePoint budget bounds it). Each configuration runs its own simulator and backup
# processes; the tables go to stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p cairn
cairn=target/release/cairn
"$cairn" bench backup --users 100 --mail-per-mailbox 20,200
"$cairn" bench backup --users 1000 --mail-per-mailbox 20 "$@"
