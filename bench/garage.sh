#!/usr/bin/env bash
# A three-node Garage cluster on loopback, three replicas, for forgekeep's S3 work (issue 11).
#
#   bench/garage.sh start    build or reuse `garage`, start the cluster, write the environment
#   bench/garage.sh env      write the AWS_* variables for the running cluster to a file to source
#   bench/garage.sh stop-node N   stop node N (1..3), to show backup/restore with one node down
#   bench/garage.sh stop     stop every node (the data folder is kept until the next start)
#   bench/garage.sh e2e      start the cluster, then drive forgekeep's release binary
#                            (FORGEKEEP, default target/release/forgekeep) through backup,
#                            verify, list, diff, restore, prune and status against it; stop
#                            one node and show backup and restore still work; stop the cluster
#
# The binary: `cargo install garage --no-default-features --features bundled-libs,lmdb`, about
# 19 minutes on 2 cores, into a cache outside the repository ($GARAGE_CACHE, default
# /var/cache/forgekeep-bench, else ~/.cache/forgekeep-bench) where later runs find it.
# GARAGE_VERSION pins the crate version (default: the newest cargo resolves).
#
# Garage wants path-style addressing and its own region name (s3_region below), and it
# ignores If-None-Match: forgekeep's HEAD guards are what keep "never replace without
# --force" there (see src/store/upload.rs). Everything listens on 127.0.0.1 only.
set -euo pipefail

cache=${GARAGE_CACHE:-}
if [ -z "$cache" ]; then
  if mkdir -p /var/cache/forgekeep-bench 2>/dev/null && [ -w /var/cache/forgekeep-bench ]; then
    cache=/var/cache/forgekeep-bench
  else
    cache=$HOME/.cache/forgekeep-bench
  fi
fi
run=${GARAGE_RUN:-$cache/garage-cluster}
bin=$cache/bin/garage
region=garage
bucket=${GARAGE_BUCKET:-forgekeep}
# Fixed, made-up test credentials (Garage's formats: GK + 24 hex digits, 64 hex digits).
key_id=GK0f0e0d0c0b0a09080706050f
secret=5f6b2c9e8a7d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b
rpc_secret=3b1f0c5e7a9d2b4f6e8c0a1d3f5b7e9c2a4d6f8b0e1c3a5d7f9b2e4c6a8d0f1e
rpc_port() { echo $((3901 + 10 * ($1 - 1))); }
s3_port() { echo $((3900 + 10 * ($1 - 1))); }

build() {
  if [ -x "$bin" ]; then
    echo "garage: reusing $bin ($("$bin" --version 2>/dev/null | head -1))"
    return
  fi
  echo "garage: building into $cache (about 19 minutes on 2 cores)"
  local version=()
  [ -n "${GARAGE_VERSION:-}" ] && version=(--version "$GARAGE_VERSION")
  cargo install garage "${version[@]}" --locked --no-default-features \
    --features bundled-libs,lmdb --root "$cache"
}

config() { # node number → its garage.toml
  local n=$1 dir=$run/node$1
  mkdir -p "$dir/meta" "$dir/data"
  cat >"$dir/garage.toml" <<EOF
metadata_dir = "$dir/meta"
data_dir = "$dir/data"
db_engine = "lmdb"
replication_factor = 3
rpc_secret = "$rpc_secret"
rpc_bind_addr = "127.0.0.1:$(rpc_port "$n")"
rpc_public_addr = "127.0.0.1:$(rpc_port "$n")"

[s3_api]
s3_region = "$region"
api_bind_addr = "127.0.0.1:$(s3_port "$n")"
root_domain = ".s3.garage.localhost"
EOF
  echo "$dir/garage.toml"
}

g() { "$bin" -c "$run/node1/garage.toml" "$@"; }

start() {
  build
  stop >/dev/null 2>&1 || true
  rm -rf "$run"
  mkdir -p "$run"
  for n in 1 2 3; do
    cfg=$(config "$n")
    nohup "$bin" -c "$cfg" server >"$run/node$n/log" 2>&1 &
    echo $! >"$run/node$n/pid"
  done
  for _ in $(seq 50); do g status >/dev/null 2>&1 && break; sleep 0.2; done
  # Connect node 1 to the others, then give each a role in one zone per node.
  for n in 2 3; do
    id=$("$bin" -c "$run/node$n/garage.toml" node id -q)
    g node connect "$id"
  done
  for n in 1 2 3; do
    id=$("$bin" -c "$run/node$n/garage.toml" node id -q | cut -d@ -f1)
    g layout assign -z "zone$n" -c 1G "$id"
  done
  g layout apply --version 1
  g key import --yes -n forgekeep "$key_id" "$secret"
  g bucket create "$bucket"
  g bucket allow --read --write --owner "$bucket" --key forgekeep
  g status
  env_vars
}

env_vars() { # into a 0600 file, not onto the terminal
  (umask 077; printf '%s\n' \
    "export AWS_ENDPOINT_URL=http://127.0.0.1:$(s3_port 1)" \
    "export AWS_REGION=$region" \
    "export AWS_ACCESS_KEY_ID=$key_id" \
    "export AWS_SECRET_ACCESS_KEY=$secret" >"$run/env")
  echo "garage: . $run/env   # then use s3://$bucket/"
}

stop_node() {
  local pid=$run/node$1/pid
  [ -f "$pid" ] && kill "$(cat "$pid")" 2>/dev/null && rm -f "$pid"
  echo "garage: node $1 stopped"
}

stop() { for n in 1 2 3; do stop_node "$n"; done; }


# ---- end to end: the real binary against the three-node cluster -------------------------
e2e() {
  local repo fk t0
  repo=$(cd "$(dirname "$0")/.." && pwd)
  fk=${FORGEKEEP:-$repo/target/release/forgekeep}
  [ -x "$fk" ] || { echo "garage: $fk missing (cargo build --release)" >&2; exit 1; }
  start
  # shellcheck disable=SC1091
  . "$run/env"
  work=$(mktemp -d)
  trap 'stop >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
  step() { # label command...: run, time, and stop at the first unexpected failure
    local label=$1 rc=0; shift
    t0=${EPOCHREALTIME/./}
    "$@" >"$work/out" 2>"$work/err" || rc=$?
    printf 'garage e2e: %-58s exit %s  %5d ms\n' "$label" "$rc" $(( (${EPOCHREALTIME/./} - t0) / 1000 ))
    if grep -q "$AWS_SECRET_ACCESS_KEY" "$work/out" "$work/err"; then
      echo "garage e2e: the secret key was printed by: $*" >&2; exit 1
    fi
    return "$rc"
  }
  expect() { # exit label command...
    local want=$1 label=$2 rc=0; shift 2
    step "$label" "$@" || rc=$?
    [ "$rc" = "$want" ] || { cat "$work/err" >&2; echo "garage e2e: expected exit $want" >&2; exit 1; }
  }
  # A small Gitea-like tree, keys made now.
  local src=$work/src/etc/gitea
  mkdir -p "$src/jwt"
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$src/jwt/private.pem" 2>/dev/null
  printf '[security]\nSECRET_KEY = %s\n' "$(openssl rand -hex 24)" >"$src/app.ini"
  chmod 600 "$src/jwt/private.pem" "$src/app.ini"
  "$fk" keygen -o "$work/key.txt" >"$work/recipient" 2>&1
  local rcpt; rcpt=$(grep -o 'age1[0-9a-z]*' "$work/recipient" | head -n1)
  "$fk" keygen --sign -o "$work/signing-key" >"$work/signer" 2>&1
  grep -o '[^ ]* namespaces="forgekeep" ssh-ed25519 [^ ]*' "$work/signer" >"$work/trust"
  local p=s3://$bucket/e2e/
  expect 0 "backup -o $p --sign" "$fk" backup "$src" -r "$rcpt" -o "$p" --sign "$work/signing-key"
  sleep 1
  expect 0 "backup -o $p --sign (a second)" "$fk" backup "$src" -r "$rcpt" -o "$p" --sign "$work/signing-key"
  expect 0 "backup -o ${p}named.tar.zst.age" "$fk" backup "$src" -r "$rcpt" -o "${p}named.tar.zst.age"
  expect 1 "the same key again, no --force: refused (Garage ignores If-None-Match)" \
    "$fk" backup "$src" -r "$rcpt" -o "${p}named.tar.zst.age"
  expect 0 "the same key with --force" "$fk" backup "$src" -r "$rcpt" -o "${p}named.tar.zst.age" --force
  expect 0 "verify --latest --trust" "$fk" verify --latest "$p" -i "$work/key.txt" --trust "$work/trust"
  local newest; newest=$("$fk" verify --latest "$p" -i "$work/key.txt" --json 2>/dev/null \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["archive"])')
  expect 0 "list" "$fk" list "$newest" -i "$work/key.txt"
  expect 0 "diff (nothing changed)" "$fk" diff "$newest" -i "$work/key.txt"
  expect 0 "restore --to" "$fk" restore "$newest" -i "$work/key.txt" --to "$work/to"
  mkdir -p "$work/root"
  expect 0 "restore --root --trust" "$fk" restore "$newest" -i "$work/key.txt" --root "$work/root" --trust "$work/trust"
  cmp "$src/jwt/private.pem" "$work/root$src/jwt/private.pem"
  expect 0 "prune --keep-last 1" "$fk" prune "$p" --keep-last 1
  expect 0 "status" "$fk" status "$p"
  cat "$work/out" "$work/err"
  expect 0 "status --max-age 1h" "$fk" status "$p" --max-age 1h
  stop_node 3
  sleep 1
  expect 0 "node 3 down: backup -o $p --sign" "$fk" backup "$src" -r "$rcpt" -o "$p" --sign "$work/signing-key"
  expect 0 "node 3 down: verify --latest --trust" "$fk" verify --latest "$p" -i "$work/key.txt" --trust "$work/trust"
  newest=$("$fk" verify --latest "$p" -i "$work/key.txt" --json 2>/dev/null \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["archive"])')
  rm -rf "$work/root"; mkdir -p "$work/root"
  expect 0 "node 3 down: restore --root --trust" "$fk" restore "$newest" -i "$work/key.txt" --root "$work/root" --trust "$work/trust"
  cmp "$src/app.ini" "$work/root$src/app.ini"
  expect 0 "node 3 down: status" "$fk" status "$p"
  cat "$work/out" "$work/err"
  local rc=0
  step "node 3 down: backup --s3-lock-days 1 (Garage has no Object Lock)" \
    "$fk" backup "$src" -r "$rcpt" -o "$p" --s3-lock-days 1 || rc=$?
  sed 's/^/    /' "$work/err"
  echo "garage e2e: every step as expected"
}

case "${1:-}" in
  start) start ;;
  env) env_vars ;;
  stop-node) stop_node "${2:?node number 1..3}" ;;
  stop) stop ;;
  e2e) e2e ;;
  *) sed -n '2,12p' "$0"; exit 2 ;;
esac
