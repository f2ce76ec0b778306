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
