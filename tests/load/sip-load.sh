#!/usr/bin/env bash
# SIP load measurements against a release build, on loopback only.
#
#   tests/load/sip-load.sh cps     # highest clean call-setup rate (sipp -sn uac at rising -r)
#   tests/load/sip-load.sh rss     # RSS with 0 and with 500 idle calls
#
# Reports; asserts nothing. Every sipp run is bounded by -m and -timeout.
set -euo pipefail
cd "$(dirname "$0")/../.."

BIN=target/release/echo-gateway
[ -x "$BIN" ] || cargo build --release -p echo-gateway >&2
SIP_PORT=${SIP_PORT:-25060}
HTTP_PORT=${HTTP_PORT:-28080}
work=$(mktemp -d)
trap 'kill $gw 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT

cat > "$work/echo.toml" <<EOF
[sip]
listen = "127.0.0.1:$SIP_PORT"
[http]
listen = "127.0.0.1:$HTTP_PORT"
[rtp]
ports = "30000-31999"
timeout_secs = 600
[[trunks]]
name = "load"
allow = ["127.0.0.0/8"]
EOF

start_gateway() {
  RUST_LOG=warn "$BIN" serve --config "$work/echo.toml" 2>"$work/gateway.log" &
  gw=$!
  for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$HTTP_PORT/readyz" >/dev/null 2>&1 && return
    sleep 0.1
  done
  echo "gateway did not start" >&2
  cat "$work/gateway.log" >&2
  exit 1
}

rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

case "${1:-cps}" in
cps)
  start_gateway
  for rate in ${RATES:-100 200 400 600 800 1000 1200 1500 2000}; do
    calls=$((rate * 10))
    t0=$(date +%s.%N)
    (cd "$work" && timeout 120 sipp -sn uac -s echo "127.0.0.1:$SIP_PORT" -i 127.0.0.1 -p 0 \
      -r "$rate" -m "$calls" -l $((rate * 2)) -d 0 -nostdin -timeout 60s -timeout_error \
      -trace_stat -stf "stat-$rate.csv" >"sipp-$rate.log" 2>&1) && rc=0 || rc=$?
    failed=$(grep -E "Failed call" "$work/sipp-$rate.log" | awk -F'|' '{gsub(/ /,"",$3); print $3}' | tail -1)
    ok=$(grep -E "Successful call" "$work/sipp-$rate.log" | awk -F'|' '{gsub(/ /,"",$3); print $3}' | tail -1)
    t1=$(date +%s.%N)
    achieved=$(awk -v c="$calls" -v a="$t0" -v b="$t1" 'BEGIN { printf "%d", c / (b - a) }')
    echo "rate=$rate cps calls=$calls successful=${ok:-?} failed=${failed:-?} achieved=${achieved}cps sipp_exit=$rc"
    if [ "$rc" != 0 ]; then break; fi
  done
  ;;
rss)
  start_gateway
  echo "RSS with 0 calls: $(rss_kib $gw) KiB"
  calls=${CALLS:-500}
  (cd "$work" && timeout 300 sipp -sn uac -s echo "127.0.0.1:$SIP_PORT" -i 127.0.0.1 -p 0 \
    -r 100 -m "$calls" -l "$calls" -d 120000 -nostdin -timeout 200s >"$work/hold.log" 2>&1) &
  holder=$!
  for _ in $(seq 120); do
    active=$(curl -fs "http://127.0.0.1:$HTTP_PORT/metrics" | awk '/^echo_active_calls / {print $2}')
    [ "${active:-0}" -ge "$calls" ] && break
    sleep 0.5
  done
  sleep 2
  echo "RSS with ${active:-?} idle calls: $(rss_kib $gw) KiB"
  kill "$holder" 2>/dev/null || true
  ;;
*)
  echo "usage: $0 cps|rss" >&2
  exit 2
  ;;
esac
