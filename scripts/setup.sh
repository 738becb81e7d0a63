#!/usr/bin/env bash
# Installs what Tagbox needs to run on a Debian machine with Node, builds it and
# prepares TAGBOX_HOME. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

apt_install_missing bubblewrap ca-certificates gcc libc6-dev libseccomp-dev uidmap
[ -d node_modules ] && [ node_modules -nt package-lock.json ] || npm ci --no-audit --no-fund
npm run build
node bin/tagbox.js migrate
