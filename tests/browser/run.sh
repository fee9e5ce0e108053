#!/bin/sh
# run.sh - entry point of the `browser` suite (tests/browser/meson.build): runs one .mjs test with
# Node against a real ssld, or exits 77 (skipped) saying what is missing.
#   run.sh TEST.mjs SSLD_EXE WEB_DIR OUT_DIR
here=$(cd "$(dirname "$0")" && pwd)
node=${NODE:-$(command -v node)}
if [ -z "$node" ]; then echo "SKIP: node is not installed (run tests/browser/setup.sh)"; exit 77; fi
if [ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]; then echo "SKIP: Chromium is not installed at ${CHROMIUM:-/usr/bin/chromium} (run tests/browser/setup.sh)"; exit 77; fi
if [ ! -d "$here/node_modules/playwright-core" ]; then echo "SKIP: playwright-core is not installed in $here/node_modules (run tests/browser/setup.sh)"; exit 77; fi
test=$1; shift
exec "$node" "$here/$test" "$@"
