#!/usr/bin/env bash
# Builds Tagbox's small native parts into native/build/ (run by `npm run build`):
#   seccomp-outer.bpf, seccomp-command.bpf  the sandbox's seccomp profiles, made with libseccomp
#   peercred.node                            SO_PEERCRED for the proxy's control socket (N-API)
#   tagbox-relay                             the sandbox's one-process relay to its proxy socket
# Needs a C compiler and libseccomp's headers (`npm run setup` installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
out=native/build
mkdir -p "$out"
cc=${CC:-cc}
cflags=(-O2 -Wall -Wextra -Werror -D_FORTIFY_SOURCE=2 -fstack-protector-strong)

if ! command -v "$cc" >/dev/null 2>&1; then
  echo "build-native: no C compiler ($cc); run: apt-get install gcc libseccomp-dev (or npm run setup)" >&2
  exit 1
fi
if [ ! -f /usr/include/seccomp.h ] && ! echo '#include <seccomp.h>' | "$cc" -E - >/dev/null 2>&1; then
  echo "build-native: libseccomp headers are missing; run: apt-get install libseccomp-dev (or npm run setup)" >&2
  exit 1
fi

# Node's headers, for the N-API addon: beside the running node, or where npm builds addons against.
node_include=""
for dir in "$(dirname "$(dirname "$(command -v node)")")/include/node" "$(npm config get nodedir 2>/dev/null)/include/node" /usr/include/node /usr/local/include/node; do
  if [ -f "$dir/node_api.h" ]; then node_include=$dir; break; fi
done
if [ -z "$node_include" ]; then
  echo "build-native: Node's headers (node_api.h) were not found; install the nodejs development headers" >&2
  exit 1
fi

build() { # target sources... -- extra flags
  local target=$1; shift
  local newest=0
  [ -f "$target" ] || newest=1
  for f in "$@"; do [ "$f" = -- ] && break; [ "$f" -nt "$target" ] && newest=1; done
  [ "$newest" = 1 ] || return 0
  local sources=() rest=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do sources+=("$1"); shift; done
  [ $# -gt 0 ] && shift && rest=("$@")
  "$cc" "${cflags[@]}" -o "$target.tmp" "${sources[@]}" "${rest[@]}"
  mv "$target.tmp" "$target"
}

build "$out/tagbox-seccomp-export" native/seccomp-export.c -- -lseccomp
for profile in outer command; do
  if [ ! -f "$out/seccomp-$profile.bpf" ] || [ "$out/tagbox-seccomp-export" -nt "$out/seccomp-$profile.bpf" ]; then
    "$out/tagbox-seccomp-export" "$profile" "$out/seccomp-$profile.bpf.tmp"
    mv "$out/seccomp-$profile.bpf.tmp" "$out/seccomp-$profile.bpf"
  fi
done
build "$out/peercred.node" native/peercred.c -- -shared -fPIC -I"$node_include"
if [ -f native/relay.c ]; then build "$out/tagbox-relay" native/relay.c; fi
chmod -R a+rX "$out"
