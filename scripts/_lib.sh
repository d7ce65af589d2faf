# Shared by the setup scripts (scripts/services.sh, browser.sh, ...): source it, don't run it.
# Each setup script is idempotent, quick when its work is already done, and callable on its own.

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

# apt_install PACKAGE...: install Debian packages that are missing. The package lists are refreshed
# only when an install fails (a fresh machine has none, a kept one may have stale ones), so a
# machine that already has everything never touches the network.
apt_install() {
  local missing=() pkg sudo=""
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  ((${#missing[@]})) || return 0
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  say "Installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" ||
    { $sudo apt-get update -q && $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"; }
}
