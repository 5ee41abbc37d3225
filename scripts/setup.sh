#!/usr/bin/env bash
# Idempotent setup for a fresh Debian 12 machine (run as root): Debian packages, a running
# Docker engine, and the project's virtualenv. Every install step the project needs lives here.
set -euo pipefail
cd "$(dirname "$0")/.."

DEB_PACKAGES=(docker.io debootstrap iptables iproute2 etcd-server containernetworking-plugins
              python3-venv tar)
VENV=.venv
log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

missing=()
for pkg in "${DEB_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  log "starting dockerd (no engine answered)"
  mkdir -p /var/log
  # setsid: the engine must outlive this script and the make that ran it.
  setsid nohup dockerd >/var/log/testbed-dockerd.log 2>&1 < /dev/null &
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { log "dockerd did not start; see /var/log/testbed-dockerd.log"; exit 1; }
fi

stamp="$VENV/.installed-$(sha256sum pyproject.toml | cut -c1-12)"
if [[ ! -f "$stamp" ]]; then
  log "creating the virtualenv and installing the project"
  [[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -U pip wheel "setuptools>=68"
  "$VENV/bin/pip" install -q --disable-pip-version-check -e '.[test]'
  rm -f "$VENV"/.installed-*
  touch "$stamp"
fi
log "ready: $(docker version --format 'docker engine {{.Server.Version}}'), $("$VENV/bin/python" --version)"
