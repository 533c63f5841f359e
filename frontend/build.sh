#!/bin/sh
# Rebuild engine/console/static/vendor/ from the locked npm packages.
# Needs node and npm; run from any directory.
set -eu
cd "$(dirname "$0")"
npm ci --no-audit --no-fund
node build.mjs
