#!/usr/bin/env bash
# Installs what the browser tests drive: Debian's chromium (Playwright for Python, pinned in
# constraints.txt, starts /usr/bin/chromium; Playwright's own browser download is not used).
# Idempotent and quick when chromium is already there.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "install-browser: need root to apt-get install chromium" >&2
    exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core
