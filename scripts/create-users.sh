#!/usr/bin/env bash
# Creates the system users of Tagbox's privilege separation (run as root; safe to
# run again). When Tagbox is started as root it never runs anything as root:
#   tagbox          the server (control plane); launches the sandboxes
#   tagbox-proxy    the Agent Proxy: the only one that reads the vault and the master key
#   tagbox-sandbox  what commands in a sandbox are on the host
# `tagbox` and `tagbox-proxy` share the group `tagbox` (the database, the socket
# directory); `tagbox-sandbox` shares nothing. The sandbox user's uid and gid are
# delegated to `tagbox` in /etc/subuid and /etc/subgid, so that the server can map
# them into a sandbox's user namespace (newuidmap, package uidmap).
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
  echo "create-users: run as root (Tagbox started unprivileged uses single-user mode and needs none of this)" >&2
  exit 1
fi
nologin=$(command -v nologin || echo /usr/sbin/nologin)

getent group tagbox >/dev/null || groupadd --system tagbox
for user in tagbox tagbox-proxy; do
  if ! getent passwd "$user" >/dev/null; then
    useradd --system --gid tagbox --no-create-home --home-dir /nonexistent --shell "$nologin" "$user"
  fi
done
if ! getent passwd tagbox-sandbox >/dev/null; then
  useradd --system --user-group --no-create-home --home-dir /nonexistent --shell "$nologin" tagbox-sandbox
fi

sandbox_uid=$(id -u tagbox-sandbox)
sandbox_gid=$(id -g tagbox-sandbox)
touch /etc/subuid /etc/subgid
grep -qx "tagbox:$sandbox_uid:1" /etc/subuid || echo "tagbox:$sandbox_uid:1" >> /etc/subuid
grep -qx "tagbox:$sandbox_gid:1" /etc/subgid || echo "tagbox:$sandbox_gid:1" >> /etc/subgid
echo "users: tagbox $(id -u tagbox), tagbox-proxy $(id -u tagbox-proxy), tagbox-sandbox $sandbox_uid (delegated to tagbox)"
