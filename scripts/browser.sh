#!/usr/bin/env bash
# Makes sure a Chromium is installed for the real-browser test (tests/integration/
# browser-chromium.test.ts, driven by playwright-core) and prints its path.
#
#   scripts/browser.sh                   find it, or install Debian's `chromium` with apt-get
#   CHROMIUM_PATH=/path/to/chrome ...    use that browser instead
#
# As root with apt-get (CI on a fresh Debian machine) a missing Chromium is installed without
# its recommended packages; otherwise the script says how to install one and fails.
set -euo pipefail

say() { printf 'browser: %s\n' "$*" >&2; }

find_chromium() {
  local candidate
  for candidate in "${CHROMIUM_PATH:-}" /usr/bin/chromium /usr/bin/chromium-browser; do
    if [ -n "$candidate" ] && [ -x "$candidate" ]; then echo "$candidate"; return 0; fi
  done
  return 1
}

find_chromium && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  say "installing chromium with apt-get"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >&2
  find_chromium && exit 0
  say "apt-get installed chromium, but no /usr/bin/chromium was found"
  exit 1
fi
cat >&2 <<MSG
browser: no Chromium found (looked for \$CHROMIUM_PATH, /usr/bin/chromium, /usr/bin/chromium-browser).
  Debian/Ubuntu:  sudo apt-get install --no-install-recommends chromium
  elsewhere:      install Chrome or Chromium and set CHROMIUM_PATH to its executable
MSG
exit 1
