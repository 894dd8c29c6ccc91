#!/bin/sh
# Installs ephysd as a systemd service: binary, default config, unit, udev rules, user.
# Usage (as root, from the repository): systemd/install.sh [path/to/ephysd]
# Idempotent: re-running upgrades the binary and unit and keeps an existing config.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
binary=${1:-$repo/target/release/ephysd}
prefix=${PREFIX:-/usr/local}

if [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: run as root (sudo $0)" >&2
    exit 1
fi
if [ ! -x "$binary" ]; then
    echo "install.sh: $binary not found; build it first with: cargo build --release -p ephysd" >&2
    exit 1
fi

if ! getent group ephysd >/dev/null; then
    groupadd --system ephysd
fi
if ! getent passwd ephysd >/dev/null; then
    useradd --system --gid ephysd --home-dir /var/lib/ephysd --no-create-home \
        --shell /usr/sbin/nologin --comment "ephysd acquisition daemon" ephysd
fi

install -D -m 0755 "$binary" "$prefix/bin/ephysd"
install -d -m 0755 /etc/ephysd
if [ ! -e /etc/ephysd/ephysd.toml ]; then
    install -m 0644 "$repo/config/ephysd.toml" /etc/ephysd/ephysd.toml
fi
install -D -m 0644 "$here/ephysd.service" /etc/systemd/system/ephysd.service
install -D -m 0644 "$here/99-ephysd-usb.rules" /etc/udev/rules.d/99-ephysd-usb.rules
install -D -m 0644 "$repo/docs/OPERATIONS.md" "$prefix/share/doc/ephysd/OPERATIONS.md"

"$prefix/bin/ephysd" check-config --config /etc/ephysd/ephysd.toml >/dev/null

if command -v udevadm >/dev/null; then
    udevadm control --reload-rules && udevadm trigger --subsystem-match=usb || true
fi
if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    echo "installed; start with: systemctl enable --now ephysd"
else
    echo "installed; systemd is not running here, so the unit was not loaded"
fi
