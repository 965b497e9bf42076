#!/usr/bin/env bash
# Headless Chromium for the `stats report --html` test (tests/report_html.rs): the test opens
# the report, takes a screenshot and checks the rendered DOM. Debian's package, no browser
# download of its own.
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
    echo "chromium: found $(command -v chromium)"
    exit 0
fi
sudo_cmd=""
if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi
$sudo_cmd apt-get update -qq
$sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    chromium fonts-dejavu-core >/dev/null
echo "chromium: installed $(command -v chromium)"
