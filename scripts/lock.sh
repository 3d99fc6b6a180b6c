#!/usr/bin/env bash
# Re-resolves requirements.in into requirements.lock (maintainers only).
# Uses uv: pip's resolver backtracks for minutes over TFX's dependency tree.
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLS=$(mktemp -d)
python3 -m venv "$TOOLS" && "$TOOLS/bin/pip" install --quiet uv==0.13.9
"$TOOLS/bin/uv" pip compile requirements.in --python-version 3.10 \
  --python-platform x86_64-manylinux_2_28 --no-header -o requirements.lock
rm -rf "$TOOLS"
