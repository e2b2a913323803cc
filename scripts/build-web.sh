#!/usr/bin/env bash
# Builds the web app's browser libraries: Leaflet from the npm registry, at the version of
# web/package-lock.json (npm ci), copied into web/static/vendor/leaflet/ where the app
# serves it. Nothing comes from a CDN at run time. Quick when already built: it does
# nothing when the copied files are newer than the lock file.
set -euo pipefail
cd "$(dirname "$0")/.."

out=web/static/vendor/leaflet
if [ -f "$out/leaflet.js" ] && [ -f "$out/leaflet.css" ] && [ "$out/leaflet.js" -nt web/package-lock.json ]; then
    exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
    if [ "$(id -u)" != 0 ]; then
        echo "build-web: npm is missing; install Node.js and npm (apt-get install npm)" >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm
fi
npm ci --prefix web --no-audit --no-fund --ignore-scripts --loglevel=error
mkdir -p "$out"
cp web/node_modules/leaflet/dist/leaflet.js web/node_modules/leaflet/dist/leaflet.css "$out/"
cp web/node_modules/leaflet/LICENSE "$out/LICENSE"
echo "build-web: Leaflet $(node -p "require('./web/node_modules/leaflet/package.json').version" 2>/dev/null || echo '?') copied into $out"
