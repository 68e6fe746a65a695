{% autoescape off %}#!/usr/bin/env bash
# Installs the Azure Connected Machine agent (ArcPortal's reference agent, version {{ version }}).
#
#   bash install_linux_azcmagent.sh --portal-url https://portal:8443 --ca-file /path/ca.pem [--proxy http://host:port]
#                                   [--find-links DIR] [--no-index]
#
# Creates a virtual environment at $AZCMAGENT_PREFIX/venv (default prefix /opt/azcmagent), downloads the agent wheel
# from the portal over https trusting only --ca-file (whatever CA bundle the host sets), installs it and then its
# dependencies (from the package index as pip is set up on this host, or only from --find-links with --no-index),
# records the portal URL and CA for the agent in $AZCMAGENT_PREFIX/etc/install.json, and puts the command at
# $AZCMAGENT_PREFIX/bin/azcmagent. For managed identity it sets IDENTITY_ENDPOINT/IMDS_ENDPOINT for services
# (/lib/systemd/system.conf.d/azcmagent.conf) and creates /var/opt/azcmagent/tokens (both under the prefix when the
# prefix is not /opt/azcmagent).
#
# Environment: AZCMAGENT_PREFIX, AZCMAGENT_PYTHON (python3.11+ to use), AZCMAGENT_CA_FILE (when --ca-file is not
# given), PIP_* (pip's own settings for the dependencies, e.g. PIP_FIND_LINKS, PIP_NO_INDEX, PIP_INDEX_URL), and
# AZCMAGENT_SITE_PACKAGES (colon-separated directories of already-installed packages the agent's venv may use, for
# offline installs).
set -euo pipefail

portalUrl="${AZCMAGENT_PORTAL_URL:-}"
caFile="${AZCMAGENT_CA_FILE:-}"
proxyUrl=""
findLinks=""
noIndex=""
prefix="${AZCMAGENT_PREFIX:-/opt/azcmagent}"
python="${AZCMAGENT_PYTHON:-python3}"
wheelName='{{ wheel_name }}'

fail() {
    echo "AZCM0150: Failed to install the Azure Connected Machine agent: $*" >&2
    exit 1
}

while [ $# -gt 0 ]; do
    case "$1" in
        --portal-url) portalUrl="${2:?--portal-url needs a value}"; shift 2 ;;
        --ca-file) caFile="${2:?--ca-file needs a value}"; shift 2 ;;
        --proxy) proxyUrl="${2:?--proxy needs a value}"; shift 2 ;;
        --find-links) findLinks="${2:?--find-links needs a value}"; shift 2 ;;
        --no-index) noIndex=1; shift ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) fail "unknown option $1" ;;
    esac
done

[ -n "$portalUrl" ] || portalUrl='{{ portal_url }}'
case "$portalUrl" in
    https://*) ;;
    *) fail "the portal URL must be https:// (got '$portalUrl')" ;;
esac
portalUrl="${portalUrl%/}"
[ -n "$caFile" ] || fail "--ca-file is required: the CA certificate the onboarding script verified"
[ -r "$caFile" ] || fail "cannot read the CA file $caFile"
command -v "$python" >/dev/null 2>&1 || fail "$python was not found; install Python 3.11 or newer"
"$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || fail "$python is older than Python 3.11"

echo "Installing azcmagent {{ version }} into $prefix"
mkdir -p -- "$prefix/bin" "$prefix/etc"
cp -- "$caFile" "$prefix/etc/portal-ca.pem"
chmod 0644 "$prefix/etc/portal-ca.pem"

if [ ! -x "$prefix/venv/bin/python" ]; then
    "$python" -m venv "$prefix/venv" || fail "could not create the virtual environment $prefix/venv"
fi
if [ -n "${AZCMAGENT_SITE_PACKAGES:-}" ]; then
    sitePackages=$("$prefix/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    printf '%s\n' "$AZCMAGENT_SITE_PACKAGES" | tr ':' '\n' > "$sitePackages/azcmagent-extra-site.pth"
fi

# The wheel comes from the portal, fetched by Python trusting only the pinned CA (below), and pip installs that local
# file with --isolated --no-index: no host setting (REQUESTS_CA_BUNDLE, PIP_CERT, PIP_INDEX_URL, ...) takes part.
# Its dependencies then come from the package index as pip is set up on this host (its CA bundle, index and proxy).
download="$(mktemp -d "${TMPDIR:-/tmp}/azcmagent-install.XXXXXX")"
trap 'rm -rf -- "$download"' EXIT
wheel="$download/$wheelName"
"$prefix/venv/bin/python" - "$portalUrl/downloads/$wheelName" "$prefix/etc/portal-ca.pem" "$wheel" "$proxyUrl" <<'PY' \
    || fail "could not download $portalUrl/downloads/$wheelName"
{% include "onboarding/installers/fetch_wheel.py" %}PY
"$prefix/venv/bin/python" -m pip install --isolated --disable-pip-version-check --quiet --no-index --no-deps \
    --force-reinstall "$wheel" || fail "could not install $portalUrl/downloads/$wheelName"

pipArgs=(install --disable-pip-version-check --quiet)
if [ -n "$proxyUrl" ]; then pipArgs+=(--proxy "$proxyUrl"); fi
if [ -n "$findLinks" ]; then pipArgs+=(--find-links "$findLinks"); fi
if [ -n "$noIndex" ]; then pipArgs+=(--no-index); fi
"$prefix/venv/bin/python" -m pip "${pipArgs[@]}" "$wheel" \
    || fail "could not install the agent's dependencies (cryptography, PyJWT, httpx)"

"$prefix/venv/bin/python" - "$prefix/etc/install.json" "$portalUrl" "$prefix/etc/portal-ca.pem" "$proxyUrl" '{{ version }}' <<'PY'
import json, os, sys
path, portal, ca, proxy, version = sys.argv[1:6]
with open(path + ".tmp", "w") as handle:
    json.dump({"portalUrl": portal, "caFile": ca, "proxy": proxy, "version": version}, handle, indent=2)
os.replace(path + ".tmp", path)
PY

{
    echo '#!/bin/sh'
    echo '# azcmagent, installed by the ArcPortal installer.'
    # shellcheck disable=SC2016 # the wrapper expands it when it runs, not this script
    printf '[ -n "${AZCMAGENT_INSTALL_CONFIG:-}" ] || AZCMAGENT_INSTALL_CONFIG=%q\n' "$prefix/etc/install.json"
    echo 'export AZCMAGENT_INSTALL_CONFIG'
    printf 'exec %q "$@"\n' "$prefix/venv/bin/azcmagent"
} > "$prefix/bin/azcmagent"
chmod 0755 "$prefix/bin/azcmagent"
if [ "$prefix" = /opt/azcmagent ] && [ -d /usr/local/bin ] && [ -w /usr/local/bin ]; then
    ln -sf "$prefix/bin/azcmagent" /usr/local/bin/azcmagent
fi

# Managed identity (HIMDS): services find the machine's identity endpoint through IDENTITY_ENDPOINT and IMDS_ENDPOINT,
# which systemd gives every service (as Azure's installer does), and HIMDS writes its one-time challenge files to
# /var/opt/azcmagent/tokens, the one directory azure-identity reads them from (0750; group himds when it exists).
# With a prefix other than /opt/azcmagent (a side-by-side or test install) both live under the prefix instead.
systemRoot=""
if [ "$prefix" != /opt/azcmagent ]; then systemRoot="$prefix"; fi
systemdConf="$systemRoot/lib/systemd/system.conf.d/azcmagent.conf"
tokensDir="$systemRoot/var/opt/azcmagent/tokens"
mkdir -p -- "${systemdConf%/*}" "$tokensDir"
{
    echo '# Written by the azcmagent installer: the identity endpoint of this machine (HIMDS) for every service.'
    echo '[Manager]'
    echo 'DefaultEnvironment="IDENTITY_ENDPOINT={{ identity_endpoint }}" "IMDS_ENDPOINT={{ imds_endpoint }}"'
} > "$systemdConf"
chmod 0644 "$systemdConf"
chmod 0750 "$tokensDir"
if getent group himds >/dev/null 2>&1; then chgrp himds "$tokensDir"; fi
if [ -z "$systemRoot" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    systemctl daemon-reload || echo "warning: systemctl daemon-reload failed; services see IDENTITY_ENDPOINT after a reboot" >&2
fi

"$prefix/bin/azcmagent" version >/dev/null || fail "the installed agent does not run"
echo "Installed: $("$prefix/bin/azcmagent" version) at $prefix/bin/azcmagent"
{% endautoescape %}
