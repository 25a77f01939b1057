#!/usr/bin/env bash
# Measures the simulator's resident memory as the tenant grows: starts `cairn sim serve` with
# N users, walks the first delta page of every mailbox's inbox and every OneDrive, and prints
# peak RSS per N. Usage: scripts/sim-rss.sh [BIN] (default: target/release/cairn).
set -euo pipefail
bin=${1:-target/release/cairn}
port=18365
printf '%-8s %-14s %-12s %-10s\n' users requests peak_rss_MB ratio
base_rss=""
for users in 10 100 1000; do
  "$bin" sim serve --listen 127.0.0.1:$port --users "$users" --throttle off --mail-per-mailbox 200 --files-per-drive 100 >/tmp/sim-rss.out 2>&1 &
  pid=$!
  for _ in $(seq 50); do grep -q "tenant id" /tmp/sim-rss.out 2>/dev/null && break; sleep 0.2; done
  tenant=$(awk '/tenant id/ {print $3}' /tmp/sim-rss.out)
  client=$(awk '/client id/ {print $3}' /tmp/sim-rss.out)
  token=$(curl -s -X POST "http://127.0.0.1:$port/$tenant/oauth2/v2.0/token" \
    -d grant_type=client_credentials -d client_id="$client" -d client_secret=cairn-sim-secret \
    -d scope=https://graph.microsoft.com/.default | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
  next="http://127.0.0.1:$port/v1.0/users?\$select=id&\$top=999"
  ids=()
  while [ -n "$next" ]; do
    page=$(curl -s -H "Authorization: Bearer $token" "$next")
    mapfile -t more < <(echo "$page" | grep -o '"id":"[^"]*"' | cut -d'"' -f4)
    ids+=("${more[@]}")
    next=$(echo "$page" | grep -o '"@odata.nextLink":"[^"]*"' | cut -d'"' -f4 || true)
  done
  peak=0
  n=0
  for id in "${ids[@]}"; do
    curl -s -o /dev/null -H "Authorization: Bearer $token" "http://127.0.0.1:$port/v1.0/users/$id/mailFolders/inbox/messages/delta?\$select=id,subject"
    curl -s -o /dev/null -H "Authorization: Bearer $token" "http://127.0.0.1:$port/v1.0/users/$id/drive/root/delta"
    n=$((n + 2))
    rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
    [ "$rss" -gt "$peak" ] && peak=$rss
  done
  kill $pid; wait $pid 2>/dev/null || true
  mb=$((peak / 1024))
  [ -z "$base_rss" ] && base_rss=$peak
  printf '%-8s %-14s %-12s %-10s\n' "$users" "$n" "$mb" "$(awk -v a=$peak -v b=$base_rss 'BEGIN {printf "%.2f", a/b}')"
done
