#!/bin/sh
# setup.sh - installs what the `browser` test suite, bench/dashboard_bench and the ONNX round trip
# (tests/model_layers/test_export_onnx, onnxruntime-node) need, if missing:
# Debian's Chromium and Node.js/npm (apt), then playwright-core from npm (`npm ci` here, from
# package-lock.json). Never downloads a browser build of its own (playwright's `install` is not
# used: the tests drive /usr/bin/chromium). Safe to run again; run as root for apt.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
missing=""
[ -x /usr/bin/chromium ] || missing="$missing chromium"
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"
if [ -n "$missing" ]; then
	echo "setup.sh: installing$missing with apt-get"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing
fi
if [ ! -d "$here/node_modules/playwright-core" ] || [ "$here/package-lock.json" -nt "$here/node_modules/.package-lock.json" ]; then
	echo "setup.sh: npm ci in $here"
	# onnxruntime-node (test_export_onnx) uses the CPU binary its package ships: its install script
	# would fetch GPU builds from the network, which npm_config_onnxruntime_node_install=skip stops.
	(cd "$here" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm_config_onnxruntime_node_install=skip \
		npm ci --no-audit --no-fund --loglevel=error)
fi
echo "setup.sh: chromium $(/usr/bin/chromium --version 2>/dev/null | head -1 | cut -d' ' -f2), node $(node --version), playwright-core $(node -p "require('$here/node_modules/playwright-core/package.json').version")"
