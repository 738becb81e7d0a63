#!/usr/bin/env bash
# The suites that hold the security boundaries — sandbox, proxy, vault, exec
# end to end, and `tagbox up` — once more as an unprivileged user (issue 9:
# they must hold both ways). Run as root, after the root pass: it runs them as
# the `tagbox` system user (which has a subordinate uid for its sandboxes, as
# under privilege separation). Run unprivileged, there is nothing more to do.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  echo "test-unprivileged: already unprivileged ($(id -un)): the suites above ran as such"
  exit 0
fi
user=tagbox
if ! runuser -u "$user" -- test -r package.json; then
  echo "test-unprivileged: $user cannot read $(pwd); run the suite from a directory system users can read" >&2
  exit 1
fi
home=$(mktemp -d /tmp/tagbox-unprivileged-XXXXXX)
chown "$user" "$home"
trap 'rm -rf "$home"' EXIT
# --configLoader runner: vitest would otherwise write its bundled config into node_modules (root's).
exec runuser -u "$user" -- env HOME="$home" TMPDIR=/tmp CI="${CI:-}" \
  npx vitest run --configLoader runner test/sandbox test/proxy test/vault test/e2e test/server/up.test.ts test/server/proxy-daemon.test.ts test/sessions/session-layer.test.ts
