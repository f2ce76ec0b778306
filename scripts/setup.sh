#!/usr/bin/env bash
# Create .venv and install Lapse into it. With --test: the test extras too, and the Debian
# packages the browser tests use. Idempotent: a second run installs nothing new.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
fi
if [ "${1:-}" = "--test" ]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
else
  .venv/bin/python -m pip install -q --disable-pip-version-check -e .
fi
if [ "${1:-}" = "--test" ]; then
  # promtool (checks Prometheus rules, config and live /metrics in tests/deploy/) comes only
  # with Debian's full `prometheus` package. Install it without recommends, and with a
  # policy-rc.d that forbids starting services, so no Prometheus server is left running.
  if ! command -v promtool >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      export DEBIAN_FRONTEND=noninteractive
      if ! apt-cache show prometheus >/dev/null 2>&1; then apt-get update -qq; fi
      added_policy=""
      if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
        added_policy=1
      fi
      install_promtool() { apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }
      install_promtool || { apt-get update -qq && install_promtool; } || status=$?
      if [ -n "$added_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi
      if [ "${status:-0}" != 0 ]; then exit "$status"; fi
    else
      echo "setup.sh: promtool is missing and this is not root with apt-get: install Debian's" \
        "'prometheus' package (it provides promtool), or the deploy tests will fail." >&2
    fi
  fi
fi
if [ "${1:-}" = "--test" ]; then
  # Debian's Chromium for the browser tests (tests/page/): Playwright drives /usr/bin/chromium
  # through executable_path; `playwright install` downloads browsers and is never used.
  if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      export DEBIAN_FRONTEND=noninteractive
      if ! apt-cache show chromium >/dev/null 2>&1; then apt-get update -qq; fi
      install_chromium() { apt-get install -y -qq --no-install-recommends chromium >/dev/null; }
      install_chromium || { apt-get update -qq && install_chromium; }
    else
      echo "setup.sh: chromium is missing and this is not root with apt-get: install Debian's" \
        "'chromium' package, or the browser tests (tests/page/) will fail in CI and skip locally." >&2
    fi
  fi
fi
if [ "${1:-}" = "--test" ]; then
  # axe-core for the browser tests' accessibility check (tests/page/a11y.py injects
  # node_modules/axe-core/axe.min.js into each page), pinned by package-lock.json. `npm ci`
  # takes it from npm's cache when it is there; it runs again only when the lock changed.
  if ! command -v npm >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      export DEBIAN_FRONTEND=noninteractive
      if ! apt-cache show npm >/dev/null 2>&1; then apt-get update -qq; fi
      install_npm() { apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null; }
      install_npm || { apt-get update -qq && install_npm; }
    else
      echo "setup.sh: npm is missing and this is not root with apt-get: install Node.js and" \
        "npm, or the browser tests (tests/page/) will fail in CI and skip locally." >&2
    fi
  fi
  stamp=node_modules/.lapse-lock.sha256
  want=$(sha256sum package-lock.json | cut -d' ' -f1)
  if [ ! -f node_modules/axe-core/axe.min.js ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    npm ci --prefer-offline --no-audit --no-fund --loglevel=error >/dev/null
    echo "$want" >"$stamp"
  fi
fi
