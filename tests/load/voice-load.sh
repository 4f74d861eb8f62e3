#!/usr/bin/env bash
# How many simultaneous clinic calls this machine holds: N scripted callers
# at once (listen-only: they speak their scenario lines in order and run no
# recogniser, so the machine's CPU goes to the gateway), for each N in
# $LEVELS; prints the median and p90 voice-to-voice latency measured at the
# callers' edge, and the gateway's own recognition wait.
#
#   tests/load/voice-load.sh                 # LEVELS="1 2 4 6 8"
#   BIN=target/release/echo-gateway LEVELS="1 4" tests/load/voice-load.sh
#
# Loopback only; every caller stops by itself (--timeout). Reports, asserts nothing.
set -euo pipefail
cd "$(dirname "$0")/../.."

BIN=${BIN:-target/debug/echo-gateway}
[ -x "$BIN" ] || cargo build -p echo-gateway >&2
SCENARIO=${SCENARIO:-../shared/data/scenarios/book-provider-direct.toml}
SIP_PORT=${SIP_PORT:-26060}
HTTP_PORT=${HTTP_PORT:-28090}
work=$(mktemp -d)
trap 'kill $gw 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT

cat > "$work/echo.toml" <<TOML
[sip]
listen = "127.0.0.1:$SIP_PORT"
[http]
listen = "127.0.0.1:$HTTP_PORT"
[database]
url = "sqlite://$work/echo.db"
[rtp]
ports = "32000-32999"
[speech]
models_dir = "$PWD/models"
vocabulary_dir = "$PWD/../shared/data/clinic"
today = "2026-12-01"
TOML

RUST_LOG=warn "$BIN" serve --config "$work/echo.toml" 2>"$work/gateway.log" &
gw=$!
for _ in $(seq 300); do
  curl -fs "http://127.0.0.1:$HTTP_PORT/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
sleep 20 # the fixed prompts are synthesised in the background at start

for n in ${LEVELS:-1 2 4 6 8}; do
  for i in $(seq "$n"); do
    "$BIN" call "sip:clinic@127.0.0.1:$SIP_PORT" --scenario "$SCENARIO" --listen-only \
      --timeout 150 --json "$work/call-$n-$i.json" >/dev/null 2>&1 &
  done
  wait_calls=$(jobs -p | grep -v "^$gw$" || true)
  for p in $wait_calls; do wait "$p" || true; done
  python3 - "$work" "$n" <<'PY'
import glob, json, sys
work, n = sys.argv[1], sys.argv[2]
v = []
for f in glob.glob(f"{work}/call-{n}-*.json"):
    try:
        v += [t["v2v_ms"] for t in json.load(open(f))["turns"] if t.get("v2v_ms") is not None]
    except Exception:
        pass
v.sort()
q = lambda p: v[min(len(v) - 1, int(round((len(v) - 1) * p)))] if v else float("nan")
print(f"calls={n} turns={len(v)} v2v_p50_ms={q(0.5):.0f} v2v_p90_ms={q(0.9):.0f}")
PY
done
curl -s "http://127.0.0.1:$HTTP_PORT/metrics" | grep -E "^echo_inference_(wait|run)_seconds_(sum|count)" || true
