# The two commands a newcomer types: `make demo` and `make test`.
# Each creates .venv from requirements.lock first when it is missing.
PY := .venv/bin/python
export TF_USE_LEGACY_KERAS := 1
export TF_CPP_MIN_LOG_LEVEL := 2

.PHONY: demo test venv lock

venv:
	@scripts/venv.sh

demo: venv
	$(PY) pipeline.py demo

test: venv
	$(PY) -m pytest

# Maintainers only: re-resolve the pins (slow: pip backtracks for minutes).
lock:
	scripts/lock.sh
