#!/usr/bin/env bash
# Stand-ins for the images docker-compose.yml names, made without any image
# registry: Debian bookworm root filesystems built with debootstrap (cached as
# tarballs) and imported into the daemon DOCKER_HOST points at.
#
#   images.sh rootfs          build the cached tarballs only (idempotent)
#   images.sh import BINARY   rootfs, then import into $DOCKER_HOST:
#     erlang:25, elixir:1.14      bookworm minbase + erlang-base + elixir
#                                 (OTP 25.2.3, Elixir 1.14.0; one image, two tags)
#     distribute-go:compose-test  bookworm minbase + BINARY at /usr/local/bin/distribute
#                                 + test/scenario at /scenario (what the Dockerfile makes)
#
#   DISTRIBUTE_COMPOSE_CACHE  tarball cache (default $HOME/.cache/distribute/compose)
# Needs root and debootstrap (rootfs), the docker CLI (import).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cache="${DISTRIBUTE_COMPOSE_CACHE:-${HOME:-/root}/.cache/distribute/compose}"
suite=bookworm
# name -> packages on top of minbase. The name carries a version: change the
# packages, bump it, and the old tarball is no longer used.
declare -A pkgs=(
  [beam-v1]=erlang-base,elixir
  [slim-v1]=
)
mkdir -p "$cache"
# One builder at a time: a second run waits, then finds the tarballs made.
exec 9>"$cache/.lock"
flock 9

rootfs() {
  local name=$1 tar="$cache/$suite-$1.tar" dir="$cache/$suite-$1.tmp"
  if [ -f "$tar" ]; then
    echo "compose: $tar cached"
    return 0
  fi
  rm -rf "$dir" "$tar.tmp"
  echo "compose: debootstrap $suite $name (${pkgs[$name]:-minbase only}) into $dir"
  local inc=()
  [ -n "${pkgs[$name]}" ] && inc=(--include="${pkgs[$name]}")
  debootstrap --variant=minbase "${inc[@]}" "$suite" "$dir" >"$cache/$suite-$name.log" 2>&1 || {
    echo "compose: debootstrap $suite $name failed; last lines of $cache/$suite-$name.log:" >&2
    tail -20 "$cache/$suite-$name.log" >&2
    return 1
  }
  # Nothing an image needs: package lists and caches, docs.
  rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* "$dir"/usr/share/doc/* "$dir"/usr/share/man/*
  tar --numeric-owner -C "$dir" -cf "$tar.tmp" .
  mv "$tar.tmp" "$tar"
  rm -rf "$dir"
  echo "compose: $tar built"
}

build_all() {
  local pids=() rc=0 n
  for n in "${!pkgs[@]}"; do rootfs "$n" & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  return $rc
}

case "${1:-}" in
rootfs)
  build_all
  ;;
import)
  bin="${2:?usage: $0 import BINARY}"
  : "${DOCKER_HOST:?DOCKER_HOST must name the daemon to import into}"
  build_all
  docker import --change 'ENV LANG=C.UTF-8' --change 'CMD ["erl"]' \
    "$cache/$suite-beam-v1.tar" erlang:25
  docker tag erlang:25 elixir:1.14
  stage="$(mktemp -d)"
  trap 'rm -rf "$stage"' EXIT
  cp "$cache/$suite-slim-v1.tar" "$stage/go.tar"
  mkdir -p "$stage/add/usr/local/bin"
  cp "$bin" "$stage/add/usr/local/bin/distribute"
  cp -r "$root/test/scenario" "$stage/add/scenario"
  tar --numeric-owner --owner=0 --group=0 -C "$stage/add" -rf "$stage/go.tar" ./usr/local/bin/distribute ./scenario
  docker import --change 'EXPOSE 4369 8080' --change 'CMD ["sh", "/scenario/cluster.sh", "go"]' \
    "$stage/go.tar" distribute-go:compose-test
  ;;
*)
  echo "usage: $0 rootfs | import BINARY" >&2
  exit 2
  ;;
esac
