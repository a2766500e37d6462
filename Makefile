# fengkong — the two commands a newcomer needs are `make run` and `make test`;
# `make lint` checks style and the import layers (pyproject's [tool.importlinter]).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test cluster chaos bench lint install clean locale chromium bytecode

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,ctp]'
	touch $(STAMP)

install: $(STAMP) locale

# openctp-ctp (the CTP API) aborts the process without the zh_CN.GB18030 locale. Install it when
# missing (Debian: the locales package, then localedef; needs root, as in CI); skip quietly where
# that cannot be done: the CTP tests then skip and say why.
locale:
	@locale -a 2>/dev/null | grep -qi '^zh_CN\.gb18030$$' || { \
	  if command -v localedef >/dev/null 2>&1 && [ -d /usr/share/i18n/locales ] && [ -e /usr/share/i18n/locales/zh_CN ]; then :; \
	  elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    (apt-get install -y -qq locales >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq locales >/dev/null 2>&1; }) || true; \
	  fi; \
	  if command -v localedef >/dev/null 2>&1; then \
	    localedef -i zh_CN -f GB18030 zh_CN.GB18030 >/dev/null 2>&1 || echo "note: could not create the zh_CN.GB18030 locale (CTP tests will skip)"; \
	  else echo "note: no localedef here: the zh_CN.GB18030 locale is missing (CTP tests will skip)"; fi; }

run: $(STAMP) bytecode
	$(BIN)/fengkong demo $(ARGS)

# Every Ray worker imports our modules afresh; where PYTHONDONTWRITEBYTECODE is set (as on some
# CI images) each one compiled them from source again (~0.15 s of CPU per actor). Compiled
# once here, they are read from __pycache__ (gitignored) whatever that variable says.
bytecode:
	@$(BIN)/python -m compileall -q -j 0 actors app gateways infra rules benchmarks tests >/dev/null

# One pytest process per core (pytest-xdist), whole files to each (module fixtures stay shared):
# each process starts its own local Ray once, and hands out ports from a band of its own
# (tests/zmq_util.py). The suite is CPU-bound: one process left the second core idle in every
# wait of a test.
TEST_WORKERS ?= 2
test: $(STAMP) locale chromium bytecode
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --durations=20 $(PYTEST_ARGS)

# The console's browser tests drive the Debian chromium (never `playwright install`); without
# root or a package mirror they skip with their reason instead. The CJK font is for the screenshots.
chromium:
	@dpkg -s chromium fonts-wqy-microhei >/dev/null 2>&1 || { \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-microhei) \
	    >/dev/null 2>&1 || echo "chromium could not be installed: the console browser tests will skip"; }

cluster: $(STAMP) bytecode
	$(BIN)/python -m pytest -q -m cluster tests/cluster $(PYTEST_ARGS)

# The long kill -9 runs (several kills of each actor kind under more load); their short
# variants run in `make test`.
chaos: $(STAMP) bytecode
	$(BIN)/python -m pytest -q -m chaos tests/chaos $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m benchmarks $(BENCH)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) var build *.egg-info
