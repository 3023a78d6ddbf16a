#!/usr/bin/env bash
# Checks that every crate builds with the Rust it declares (`rust-version`),
# with the committed Cargo.lock: each crate is checked with its own toolchain
# (installed through rustup when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
declared() { # crate dir → its rust-version (the workspace's when inherited)
  local v
  v=$(sed -n 's/^rust-version *= *"\([0-9.]*\)".*/\1/p' "$1/Cargo.toml")
  [ -n "$v" ] || v=$(sed -n 's/^rust-version *= *"\([0-9.]*\)".*/\1/p' Cargo.toml)
  echo "$v"
}
declare -A by_version
for dir in crates/*/; do
  dir=${dir%/}
  v=$(declared "$dir")
  by_version[$v]+=" -p $(sed -n 's/^name *= *"\(.*\)"/\1/p' "$dir/Cargo.toml" | head -1)"
done
for v in "${!by_version[@]}"; do
  if ! rustup run "$v" rustc --version >/dev/null 2>&1; then
    rustup toolchain install "$v" --profile minimal >/dev/null
  fi
  echo "rust $v:${by_version[$v]}"
  # shellcheck disable=SC2086
  CARGO_TARGET_DIR=target/msrv-$v cargo "+$v" check --locked ${by_version[$v]}
done
