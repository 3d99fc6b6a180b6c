#!/usr/bin/env bash
# Creates .venv from requirements.lock when it is missing or stale.
# Needs Python 3.10 (TFX 1.16 supports 3.9-3.10): `python3.10` on PATH, or
# one installed by pyenv.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
STAMP="$VENV/.installed"

if [[ -f "$STAMP" && "$STAMP" -nt requirements.lock && "$STAMP" -nt setup.py ]]; then
  exit 0
fi

find_python() {
  local candidate
  for candidate in python3.10 \
      "$(command -v pyenv >/dev/null && pyenv root 2>/dev/null)"/versions/3.10*/bin/python3.10 \
      "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.10*/bin/python3.10 \
      /usr/local/bin/python3.10 /usr/bin/python3.10; do
    if "$candidate" -c 'import sys, venv; assert sys.version_info[:2] == (3, 10)' \
        >/dev/null 2>&1; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

if ! PYTHON=$(find_python); then
  cat >&2 <<'MSG'
error: Python 3.10 not found. TFX 1.16 runs on Python 3.9-3.10 only.
Install it, then run this command again, e.g. one of:
  pyenv install 3.10          (https://github.com/pyenv/pyenv)
  apt-get install python3.10 python3.10-venv
MSG
  exit 1
fi

echo "Creating $VENV with $PYTHON from requirements.lock ..."
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --upgrade pip==24.3.1
# The lock holds the whole resolved set, so pip does no resolving at all.
"$VENV/bin/pip" install --quiet --no-deps -r requirements.lock
"$VENV/bin/pip" install --quiet --no-deps --no-build-isolation --use-pep517 -e .
"$VENV/bin/pip" check
touch "$STAMP"
echo "$VENV ready."
