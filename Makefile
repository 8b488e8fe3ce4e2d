# Every target installs what it needs first: a fresh clone with Python 3.11+
# (and Node.js for the CDK CLI) needs nothing else.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
REQUIREMENTS := requirements.txt worker/requirements.txt submit/requirements.txt pyproject.toml
STAMP := $(VENV)/.installed-$(shell cat $(REQUIREMENTS) | cksum | cut -d' ' -f1)

.PHONY: demo test lint synth simulate bench clean bytecode

$(STAMP): $(REQUIREMENTS)
	@$(PYTHON) -c 'import sys; sys.exit("Drover needs Python 3.11 or newer, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	# The `drover` command, running this checkout's code.
	$(PY) -m pip install --quiet --no-deps -e .
	rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)

# The project's own modules compiled ahead, even where the environment says
# not to write bytecode (PYTHONDONTWRITEBYTECODE): each process of a local
# fleet would otherwise compile them again as it starts. Only what changed
# is compiled again; a stale file is never used (Python checks the source's
# time and size). Not bench/out, where the benchmark copies the standard
# library, test files of invalid syntax included.
bytecode: $(STAMP)
	@$(PY) -m compileall -q -x '^bench/out/' worker submit infra bench app.py > /dev/null

# The CDK CLI pinned in package.json (a 2.x release that reads the cloud
# assembly schema of the aws-cdk-lib in requirements.txt).
NODE_STAMP := node_modules/.package-lock.json

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

# A word count over the installed Python standard library's .py files, on the
# embedded AWS with a local fleet, then everything is shut down again.
demo: bytecode
	$(PY) -m submit run --local --job wordcount --include '*.py' --exclude 'site-packages/*' \
		--chunk-size 2MB --top 20 --compare \
		"$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')"

test: bytecode $(NODE_STAMP)
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(PY) -m pytest

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m mypy

# The CloudFormation template, offline and without AWS credentials, checked by
# cdk-nag during synthesis (app.py fails on any unacknowledged finding) and by
# cfn-lint after it.
synth: $(STAMP) $(NODE_STAMP)
	node_modules/.bin/cdk synth --quiet
	$(VENV)/bin/cfn-lint cdk.out/*.template.json

# The scaling simulator on the freshly synthesized template: a table of the
# scenarios, and one plot each in cdk.out/simulate.
simulate: synth
	$(PY) -m infra.simulate --plot cdk.out/simulate

# Drover beside the reference one-liner, GNU tools and mrjob on one generated
# 256 MiB corpus (README.md, "Benchmarks"). Tables and plot go to bench/out,
# and for the README to bench/results, with a scale run of 20,000 chunks.
# `make bench BENCH_ARGS=--quick` runs a 16 MiB version (2,000 chunks) in a
# few minutes. mrjob and matplotlib are installed into
# the benchmark's own bench/.venv on first use.
bench: bytecode
	$(PY) -m bench --publish bench/results $(BENCH_ARGS)

clean:
	rm -rf $(VENV) cdk.out node_modules .pytest_cache .ruff_cache
