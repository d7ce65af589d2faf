#!/usr/bin/env bash
# The browser of the UI tests (tests/ui): Debian's chromium package, driven by Playwright through
# executable_path=/usr/bin/chromium. Playwright's own browser download is never used.
set -euo pipefail
# shellcheck source=scripts/_lib.sh
source "$(dirname "$0")/_lib.sh"

if [ -x /usr/bin/chromium ]; then
  exit 0
fi
apt_install chromium
/usr/bin/chromium --version
