# Shared helpers for the setup and test scripts (sourced, not run).

# Installs the Debian packages that are missing; as root through apt-get,
# otherwise it says which command to run and carries on (doctor reports the gap).
apt_install_missing() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -eq 0 ]; then
    echo "installing ${missing[*]} (apt-get)"
    if [ -z "${TAGBOX_APT_UPDATED:-}" ]; then apt-get update -qq; export TAGBOX_APT_UPDATED=1; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "missing system packages: ${missing[*]} — run: sudo apt-get install ${missing[*]}" >&2
  fi
}
