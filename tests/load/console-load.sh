#!/usr/bin/env bash
# How the console holds up with a realistic amount of data: seeds $CALLS
# synthetic clinic calls (gateway/examples/seed_calls.rs) into a throw-away
# PostgreSQL 15 cluster (or SQLite with DB=sqlite), starts a release
# gateway on it, signs an admin in and measures the console's heavy
# endpoints with wrk; prints req/s and p50/p99 latency per endpoint, then
# the gateway's RSS.
#
#   tests/load/console-load.sh                      # PostgreSQL, 10000 calls
#   DB=sqlite tests/load/console-load.sh            # the embedded default
#   CALLS=50000 DURATION=20s CONNECTIONS=8 tests/load/console-load.sh
#
# Loopback only; stops by itself and removes its cluster and temp dir.
# Reports; asserts nothing. Needs wrk (installed with apt-get if missing),
# curl, python3, and for PostgreSQL /usr/lib/postgresql/15/bin.
set -euo pipefail
cd "$(dirname "$0")/../.."

DB=${DB:-postgres}
CALLS=${CALLS:-10000}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-4}
THREADS=${THREADS:-2}
PG_BIN=/usr/lib/postgresql/15/bin
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
BIN=$TARGET/release/echo-gateway
SEED=$TARGET/release/examples/seed_calls

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi
}
if ! command -v wrk >/dev/null; then
  echo "installing wrk" >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk </dev/null >/dev/null 2>&1 ||
    { as_root apt-get update -qq </dev/null >/dev/null &&
      as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk </dev/null >/dev/null; }
fi

# The gateway binary and the seeder (cargo build --examples alone would not
# build the binary).
cargo build --release -q -p echo-gateway --bin echo-gateway --example seed_calls >&2

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

work=$(mktemp -d)
chmod 711 "$work"
gw=
pg_run=()
[ "$(id -u)" -eq 0 ] && pg_run=(runuser -u postgres --)
cleanup() {
  [ -n "$gw" ] && kill "$gw" 2>/dev/null && wait "$gw" 2>/dev/null
  if [ -d "$work/pg/data" ]; then
    "${pg_run[@]}" "$PG_BIN/pg_ctl" -D "$work/pg/data" -m immediate stop >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

case "$DB" in
postgres)
  pg_port=$(free_port)
  mkdir "$work/pg"
  [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$work/pg"
  "${pg_run[@]}" "$PG_BIN/initdb" -D "$work/pg/data" -U postgres --auth=trust -E UTF8 --no-sync >/dev/null
  "${pg_run[@]}" "$PG_BIN/pg_ctl" -D "$work/pg/data" -w -l "$work/pg/log" \
    -o "-p $pg_port -k $work/pg -c listen_addresses=127.0.0.1 -c max_connections=50" start >/dev/null
  url="postgres://postgres@127.0.0.1:$pg_port/postgres"
  ;;
sqlite) url="sqlite://$work/echo.db" ;;
*)
  echo "DB must be postgres or sqlite" >&2
  exit 2
  ;;
esac

echo "seeding $CALLS calls into $DB" >&2
"$SEED" --database-url "$url" --calls "$CALLS" >&2

http_port=$(free_port)
sip_port=$(free_port)
cat >"$work/echo.toml" <<EOF
[sip]
listen = "127.0.0.1:$sip_port"
[http]
listen = "127.0.0.1:$http_port"
[database]
url = "$url"
[rtp]
ports = "33000-33099"
EOF

user=load-admin
password="load test $RANDOM$RANDOM"
echo "$password" | RUST_LOG=warn "$BIN" users add "$user" --role admin --password-stdin --config "$work/echo.toml" >/dev/null

RUST_LOG=warn "$BIN" serve --config "$work/echo.toml" 2>"$work/gateway.log" &
gw=$!
base="http://127.0.0.1:$http_port"
for _ in $(seq 150); do
  curl -fs "$base/readyz" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fs "$base/readyz" >/dev/null || { echo "gateway did not start" >&2; cat "$work/gateway.log" >&2; exit 1; }

# The session cookie is Secure: read it from the response headers rather
# than trusting curl's jar to keep it over http.
curl -fs -D "$work/login.headers" -o /dev/null -H 'Content-Type: application/json' \
  -d "{\"username\":\"$user\",\"password\":\"$password\"}" "$base/api/v1/session"
session=$(sed -n 's/^[Ss]et-[Cc]ookie: *echo_session=\([^;]*\).*/\1/p' "$work/login.headers" | tr -d '\r' | head -1)
[ -n "$session" ] || { echo "sign-in gave no echo_session cookie" >&2; cat "$work/login.headers" >&2; exit 1; }
cookie="Cookie: echo_session=$session"

call_id=$(curl -fs -H "$cookie" "$base/api/v1/calls?limit=1" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["calls"][0]["call"]["call_id"])')
day=$(date -u -d '3 days ago' +%F)

endpoints=(
  "/api/v1/calls"
  "/api/v1/calls?medication=metformin"
  "/calls?medication=metformin"
  "/calls/$call_id"
  "/api/v1/turns.csv?from=$day&to=$day"
  "/api/v1/calls?q=walgreens"
)

# wrk prints 850.00us, 12.34ms, 1.20s, 2.00m: in ms.
to_ms() {
  awk -v v="$1" 'BEGIN {
    n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
    f = (u == "us") ? 0.001 : (u == "ms") ? 1 : (u == "s") ? 1000 : (u == "m") ? 60000 : 1
    printf "%.1f", n * f }'
}

echo "rss before: $(awk '/VmRSS/ {print $2}' "/proc/$gw/status") KiB" >&2
printf '%s, %s calls, wrk -t%s -c%s -d%s\n' "$DB" "$CALLS" "$THREADS" "$CONNECTIONS" "$DURATION"
printf '%-46s %9s %9s %9s %9s %7s\n' endpoint "req/s" "p50 ms" "p99 ms" "bytes" errors
for path in "${endpoints[@]}"; do
  status=$(curl -s -o "$work/body" -w '%{http_code}' -H "$cookie" "$base$path")
  bytes=$(wc -c <"$work/body")
  if [ "$status" != 200 ]; then
    printf '%-46s HTTP %s\n' "$path" "$status"
    continue
  fi
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --timeout 30s --latency -H "$cookie" "$base$path")
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  errors=$(awk '/Non-2xx or 3xx responses:/ {n += $NF} /Socket errors:/ {gsub(/,/, ""); n += $4 + $6 + $8 + $10} END {print n + 0}' <<<"$out")
  shown=${path//$call_id/<id>}
  printf '%-46s %9s %9s %9s %9s %7s\n' "$shown" "$rps" "$(to_ms "$p50")" "$(to_ms "$p99")" "$bytes" "$errors"
done
awk '/VmRSS/ {r = $2} /VmHWM/ {h = $2} END {printf "gateway RSS after the run: %d MiB (peak %d MiB)\n", r / 1024, h / 1024}' "/proc/$gw/status"
