# Two commands: `make run` serves the demo, `make test` runs the suite. See README.md.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
FLASK  := $(PY) -m flask --app referral_hub
HOST   ?= 127.0.0.1
PORT   ?= 5000

.PHONY: run test test-sqlite test-postgres lint format bench install install-dev \
        i18n-extract i18n-update i18n-compile migrate clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(PY)
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[dev]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed i18n-compile

install-dev: $(VENV)/.installed-dev i18n-compile

run: install
	$(FLASK) db upgrade
	$(FLASK) seed demo --if-empty
	@echo
	@echo "referral_hub demo on http://$(HOST):$(PORT)/ — sign in with one of:"
	@$(FLASK) seed logins
	@echo
	$(FLASK) run --host $(HOST) --port $(PORT)

# The whole suite on SQLite, then again on PostgreSQL when TEST_DATABASE_URL is set.
test: install-dev
	env -u TEST_DATABASE_URL $(PY) -m pytest $(PYTEST_ARGS)
	@if [ -n "$$TEST_DATABASE_URL" ]; then \
		echo "--- again on PostgreSQL ($$TEST_DATABASE_URL)"; \
		$(PY) -m pytest $(PYTEST_ARGS); \
	else \
		echo "TEST_DATABASE_URL not set: PostgreSQL run skipped"; \
	fi

lint: install-dev
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: install-dev
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

bench: install-dev
	$(PY) bench/run.py $(if $(BENCH),--only $(BENCH),)

migrate: install
	$(FLASK) db migrate -m "$(m)"

i18n-extract: $(VENV)/.installed
	$(VENV)/bin/pybabel extract -F babel.cfg -k _l -k lazy_pgettext:1c,2 \
		--no-location --sort-output -o translations/messages.pot .

i18n-update: i18n-extract
	$(VENV)/bin/pybabel update -i translations/messages.pot -d translations \
		--no-fuzzy-matching --ignore-obsolete
	$(PY) tools/fix_catalogs.py translations

i18n-compile: $(VENV)/.installed
	$(VENV)/bin/pybabel compile -d translations >/dev/null

clean:
	rm -rf $(VENV) instance .pytest_cache
