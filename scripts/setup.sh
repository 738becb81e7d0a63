#!/usr/bin/env bash
# Installs what Tagbox needs to run on a Debian machine with Node, builds it and
# prepares TAGBOX_HOME. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

apt_install_missing bubblewrap ca-certificates gcc libc6-dev libseccomp-dev uidmap
# Not needed to run Tagbox: Chromium for the web app's browser tests and `npm run bench:web`.
apt_install_missing chromium fonts-dejavu-core
[ -d node_modules ] && [ node_modules -nt package-lock.json ] || npm ci --no-audit --no-fund
npm run build

if [ "$(id -u)" -eq 0 ]; then
  # Started as root, Tagbox runs as three system users (privilege separation).
  bash scripts/create-users.sh
  # They cannot enter /root: root's default home, ~/.tagbox, is a link to /var/lib/tagbox.
  if [ -z "${TAGBOX_HOME:-}" ] && [ ! -e "$HOME/.tagbox" ] && [ ! -L "$HOME/.tagbox" ]; then
    mkdir -p -m 700 /var/lib/tagbox
    ln -s /var/lib/tagbox "$HOME/.tagbox"
    echo "TAGBOX_HOME: $HOME/.tagbox -> /var/lib/tagbox (the tagbox users cannot enter $HOME)"
  fi
fi
node bin/tagbox.js migrate
