# Two commands set up everything on a fresh Debian machine:
#   make demo   ingest a generated sample session and serve the web UI
#   make test   run the test suite
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
DEMO_HOME ?= demo-data
APT_PACKAGES := ffmpeg espeak-ng chromium chromium-driver

.PHONY: demo test setup system venv bench clean

setup: system venv

system:
	@missing=""; \
	command -v ffmpeg >/dev/null || missing="$$missing ffmpeg"; \
	command -v espeak-ng >/dev/null || missing="$$missing espeak-ng"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v chromedriver >/dev/null || missing="$$missing chromium-driver"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "Installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	  else \
	    echo "Please install the Debian packages:$$missing  (sudo apt-get install$$missing)"; exit 1; \
	  fi; \
	fi

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $@

venv: $(VENV)/.installed

demo: setup
	$(PY) -m web.demo --home $(DEMO_HOME)

test: setup
	$(VENV)/bin/pytest -q

bench: setup
	$(PY) bench/ingest.py

clean:
	rm -rf $(VENV) $(DEMO_HOME) .pytest_cache
