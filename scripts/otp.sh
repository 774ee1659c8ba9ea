#!/usr/bin/env bash
# Builds the newer OTP runtimes the interop tests use: minimal Debian chroots
# (trixie: OTP 27 + Elixir 1.18; sid: the newest OTP + Elixir) that share the
# host's loopback. Idempotent: a finished chroot has a .distribute-ready
# marker and is left alone. Needs root and debootstrap.
#
#   DISTRIBUTE_OTP_CACHE  where the chroots go (default $HOME/.cache/distribute/otp)
#   DISTRIBUTE_OTP_SUITES which Debian suites to build (default "trixie sid")
set -euo pipefail
cache="${DISTRIBUTE_OTP_CACHE:-${HOME:-/root}/.cache/distribute/otp}"
suites="${DISTRIBUTE_OTP_SUITES:-trixie sid}"
pkgs=erlang-base,erlang-crypto,erlang-ssl,erlang-public-key,erlang-inets,erlang-syntax-tools,erlang-dev,elixir
mkdir -p "$cache"
build() {
  local suite=$1 dir="$cache/$1"
  if [ -f "$dir/.distribute-ready" ]; then
    echo "otp: $suite ready in $dir"
    return 0
  fi
  rm -rf "$dir" "$dir.tmp"
  echo "otp: building $suite in $dir (debootstrap, about 30 s)"
  debootstrap --variant=minbase --include="$pkgs" "$suite" "$dir.tmp" >"$cache/$suite.log" 2>&1 || {
    echo "otp: debootstrap $suite failed; last lines of $cache/$suite.log:" >&2
    tail -20 "$cache/$suite.log" >&2
    return 1
  }
  cp /etc/hosts "$dir.tmp/etc/hosts"
  chroot "$dir.tmp" env HOME=/root erl -noshell -eval \
    'io:format("~s ~s~n",[erlang:system_info(otp_release),erlang:system_info(version)]),halt().' \
    >"$dir.tmp/.distribute-otp"
  chroot "$dir.tmp" env HOME=/root elixir -e 'IO.puts(System.version())' >"$dir.tmp/.distribute-elixir" 2>/dev/null || true
  mv "$dir.tmp" "$dir"
  touch "$dir/.distribute-ready"
  echo "otp: $suite built: OTP $(cut -d' ' -f1 "$dir/.distribute-otp"), erts $(cut -d' ' -f2 "$dir/.distribute-otp"), Elixir $(cat "$dir/.distribute-elixir")"
}
# summary ROOT LABEL prints one line: the runtime's name, its OTP version, erts and Elixir.
summary() {
  local root=$1 label=$2 erts rel ver ex
  read -r erts rel <"$root/releases/start_erl.data" || return 1
  ver=$(cat "$root/releases/$rel/OTP_VERSION")
  ex=$(grep -o 'vsn,"[^"]*"' "$3" 2>/dev/null | cut -d'"' -f2 || true)
  echo "runtime OTP-$rel ($label): OTP $ver, erts $erts, Elixir ${ex:-none}"
}
pids=()
for s in $suites; do build "$s" & pids+=($!); done
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=1; done
if erl=$(command -v erl); then
  root=$(dirname "$(dirname "$(readlink -f "$erl")")")
  exapp=
  if ex=$(command -v elixir); then exapp="$(dirname "$(dirname "$(readlink -f "$ex")")")/lib/elixir/ebin/elixir.app"; fi
  summary "$root" host "$exapp" || rc=1
else
  echo "runtime host: no erl installed" >&2
  rc=1
fi
for s in $suites; do
  [ -f "$cache/$s/.distribute-ready" ] || continue
  summary "$cache/$s/usr/lib/erlang" "$s chroot $cache/$s" "$cache/$s/usr/lib/elixir/lib/elixir/ebin/elixir.app" || rc=1
done
exit $rc
