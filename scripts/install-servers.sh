#!/usr/bin/env bash
# Installs the real servers the integration tests start: Mosquitto, InfluxDB 1.x (influxd)
# and PostgreSQL (initdb/postgres from Debian's postgresql package; tests/servers.py starts
# its own server on a free port, never the package's service).
# Debian 12 has both in apt; Debian 13 has no influxdb, so we unpack Debian 12's package
# (kept in ../shared/debs) into .servers/, where tests/servers.py looks for it.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need_apt+=(mosquitto)
# mosquitto_sub: the tests run docker-compose.yml's broker healthcheck command for real.
command -v mosquitto_sub >/dev/null 2>&1 || need_apt+=(mosquitto-clients)
have_postgres() {
    command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1 && return 0
    ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1
}
have_postgres || need_apt+=(postgresql)
# DejaVu Sans: the spray diary's PDF embeds it for Vietnamese (reports/diary_render.py).
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need_apt+=(fonts-dejavu-core)
have_influxd() { command -v influxd >/dev/null 2>&1 || [ -x .servers/influxdb/usr/bin/influxd ]; }

apt_updated=0
apt_update() {
    if [ "$apt_updated" = 0 ]; then
        apt-get update -qq
        apt_updated=1
    fi
}

if ! have_influxd; then
    apt_update
    if apt-cache policy influxdb 2>/dev/null | grep -q 'Candidate: [0-9]'; then
        need_apt+=(influxdb)
    else
        deb=$(ls ../shared/debs/influxdb_*_amd64.deb 2>/dev/null | head -n 1 || true)
        if [ -z "$deb" ]; then
            echo "install-servers: apt has no influxdb and ../shared/debs has no .deb" >&2
            exit 1
        fi
        mkdir -p .servers/influxdb
        dpkg-deb -x "$deb" .servers/influxdb
        echo "install-servers: unpacked $deb into .servers/influxdb"
    fi
fi

if [ "${#need_apt[@]}" -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "install-servers: need root to apt-get install ${need_apt[*]}" >&2
        exit 1
    fi
    apt_update
    # policy-rc.d 101 keeps apt from starting the packages' own services on default ports.
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d.agridrone
    chmod +x /usr/sbin/policy-rc.d.agridrone
    had_policy=0
    [ -e /usr/sbin/policy-rc.d ] && had_policy=1
    [ "$had_policy" = 1 ] || cp /usr/sbin/policy-rc.d.agridrone /usr/sbin/policy-rc.d
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
    [ "$had_policy" = 1 ] || rm -f /usr/sbin/policy-rc.d
    rm -f /usr/sbin/policy-rc.d.agridrone
fi
# HAProxy only checks deploy/haproxy.cfg (tests/unit/test_deploy_files.py): unpacked, never
# installed, so no service starts. Optional: without it that one check is skipped.
if ! command -v haproxy >/dev/null 2>&1 && [ ! -x .servers/haproxy/usr/sbin/haproxy ]; then
    tmp=$(mktemp -d)
    if (cd "$tmp" && apt-get download -qq haproxy liblua5.3-0 libopentracing-c-wrapper0 \
            libopentracing1) >/dev/null 2>&1; then
        mkdir -p .servers/haproxy
        for deb in "$tmp"/*.deb; do dpkg-deb -x "$deb" .servers/haproxy; done
        echo "install-servers: unpacked haproxy into .servers/haproxy"
    else
        echo "install-servers: no haproxy (optional: deploy/haproxy.cfg is not checked)" >&2
    fi
    rm -rf "$tmp"
fi
echo "install-servers: mosquitto, influxd and postgresql are available"
