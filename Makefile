# Build and test vmsnap.libvirt. `make help` lists the targets.
#
# ansible-test runs on a staged copy at .build/ansible_collections/vmsnap/libvirt (hacking/ansible-test.sh), with the
# virtual environment .venv (hacking/bootstrap.sh) first on PATH; integration tests use the real libvirt daemon that
# hacking/libvirt-up.sh starts when none answers.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

# The .venv's Python version, read when a recipe runs (after bootstrap made the .venv).
PYTHON_VERSION = $(shell $(VENV)/bin/python -c 'import sys; print("%d.%d" % sys.version_info[:2])')
VENV := .venv
ANSIBLE_TEST := hacking/ansible-test.sh
TESTCTL := $(VENV)/bin/python tests/integration/targets/setup_libvirt/files/vmsnap_testctl.py
# Where libvirt and QEMU come from: stock (Debian 12: libvirt 9.0, QEMU 7.2) or backports (bookworm-backports:
# libvirt 11.3, QEMU 10), e.g. `make test LIBVIRT=backports`. A daemon that already answers keeps its version: stop it
# first to test another one. hacking/test-in-bpo-root.sh tests backports in a root of its own instead.
LIBVIRT ?= stock

.PHONY: help setup bootstrap libvirt-up sanity units integration integration-backports test demo clean cleanup-domains
.PHONY: lint build docs changelog molecule
.PHONY: reliability archive-check
.PHONY: bench
.PHONY: guest-image

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## (.*)/  \1\t\2/' | expand -t 24

setup: bootstrap libvirt-up ## install Debian packages and .venv, start libvirtd if nothing answers

bootstrap: ## Debian packages (LIBVIRT=stock|backports), .venv from requirements-dev.txt, ansible-test's offline pip bootstrap
	LIBVIRT=$(LIBVIRT) hacking/bootstrap.sh

libvirt-up: ## start virtlogd + libvirtd (no systemd) unless qemu:///system answers
	hacking/libvirt-up.sh

sanity: bootstrap ## ansible-test sanity (each test in its own pinned venv)
	$(ANSIBLE_TEST) sanity --venv --python $(PYTHON_VERSION)

units: bootstrap ## ansible-test units with the .venv's Python
	$(ANSIBLE_TEST) units --local --python $(PYTHON_VERSION)

# --allow-destructive: our targets define domains and write under /var/lib/libvirt (each only what it created).
# --continue-on-error: one broken target does not hide the results of the others; the run still fails.
integration: setup ## ansible-test integration on the real daemon (root, destructive targets)
	$(ANSIBLE_TEST) integration --local --python $(PYTHON_VERSION) --allow-destructive --continue-on-error

# The same targets on libvirt 11.3 / QEMU 10 (bookworm-backports) in a Debian 12 root of its own with a private daemon
# (hacking/test-in-bpo-root.sh: built the first time, a few minutes; this machine's libvirt stays as it is). The guest
# image is built here first: the root's test namespace has no network to build it with.
integration-backports: bootstrap guest-image ## the integration suite on libvirt 11.3 (hacking/test-in-bpo-root.sh)
	hacking/test-in-bpo-root.sh integration

test: setup ## setup, then sanity, units, integration (9.0, then 11.3), lint, build, docs, molecule...: all run; fails if any failed
	@failed=(); \
	for step in sanity units integration $(TEST_EXTRA_STEPS); do \
	    echo "=== make $$step"; \
	    if $(MAKE) --no-print-directory $$step; then echo "=== $$step: ok"; else echo "=== $$step: FAILED"; failed+=("$$step"); fi; \
	done; \
	if (( $${#failed[@]} )); then echo "make test: FAILED: $${failed[*]}"; exit 1; fi; \
	echo "make test: sanity, units, integration and $(TEST_EXTRA_STEPS) all passed"

# What `make test` runs after the tests: the integration suite on libvirt 11.3 (unless LIBVIRT=backports), lint, the
# package, the documentation site (with the changelog), the Molecule examples, reliability and the archive check.
# Tools for lint, docs and the package check live in .venv-docs (docs/requirements.txt, hacking/tools-venv.sh).
# With LIBVIRT=backports this machine's daemon is 11.3 already, and integration-backports would repeat integration.
TEST_EXTRA_STEPS := $(if $(filter stock,$(LIBVIRT)),integration-backports) lint build docs molecule reliability archive-check

lint: bootstrap ## ruff, ansible-lint (production) on roles/ and examples/, antsibull-docs and antsibull-changelog lint
	hacking/lint.sh

build: bootstrap ## ansible-galaxy collection build to .build/dist; check its files, install it, ansible-doc, a playbook, the EE
	hacking/check-build.sh

docs: bootstrap ## the documentation site in .build/docs/html: module and role reference (antsibull-docs), guides, pictures
	hacking/docs.sh

changelog: bootstrap ## antsibull-changelog lint; the next release's notes in .build/changelog/CHANGELOG.rst
	hacking/changelog.sh

molecule: setup ## the Molecule scenarios: examples/molecule and the snapshot_guard role's, on throwaway domains
	hacking/molecule-examples.sh
	hacking/molecule-snapshot-guard.sh

# The demo gets the staged collection on ANSIBLE_COLLECTIONS_PATH, the .venv first on PATH, and the .venv's Python as the
# interpreter for localhost (interpreter discovery can pick a pyenv shim of a Python that is not installed here).
demo: setup guest-image ## three real Debian guests (hacking/demo.sh), the staged collection and the .venv
	@if [[ ! -e hacking/demo.sh ]]; then echo "demo: hacking/demo.sh does not exist yet: nothing to show"; exit 0; fi; \
	stage=$$(hacking/stage-collection.sh); \
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" \
	ANSIBLE_COLLECTIONS_PATH="$${stage%/ansible_collections/*}" \
	ANSIBLE_PYTHON_INTERPRETER="$(CURDIR)/$(VENV)/bin/python" \
	VMSNAP_TESTCTL="$(CURDIR)/$(VENV)/bin/python $(CURDIR)/tests/integration/targets/setup_libvirt/files/vmsnap_testctl.py" \
	bash hacking/demo.sh

# Timings live in bench/ and bench/results/, never in tests. BENCH_ARGS=--quick for a smoke run, --skip-info, --only NAME.
bench: setup ## the benchmark suite on the real daemon (bench/suite.py): prints ratios, writes bench/results/
	$(VENV)/bin/python bench/suite.py $(BENCH_ARGS)

# tests/reliability/README.md: bad input, concurrency, faults and security, against a private libvirtd of its own (run by
# the system user vmsnaprel, which it creates) that it may kill. RELIABILITY_ARGS=--parts faults --iterations 3, ...
reliability: setup ## the reliability and security suite (tests/reliability): prints a summary table
	stage=$$(hacking/stage-collection.sh); \
	$(VENV)/bin/python tests/reliability/run.py --collections-path "$${stage%/ansible_collections/*}" $(RELIABILITY_ARGS)

# A source archive (no .git) must stage and test like a clone: hacking/check-archive.sh exports the tree and runs the
# staging and `make units` from the export.
archive-check: bootstrap ## from an export of the tree without .git: the staging, then make units
	hacking/check-archive.sh

clean: ## remove the staged collection (.build)
	rm -rf .build

# The real-guest lab's Debian 12 image (docs/testing.md, "The real-guest lab"): built once per recipe, then cached in
# $VMSNAP_GUEST_CACHE (default /var/cache/vmsnap/guest-image); prints the image's folder.
guest-image: ## build (once) and cache the Debian 12 guest image for real-guest tests (hacking/guest-image.sh)
	hacking/guest-image.sh

# PREFIX=vmsnap-it-abcd1234- limits it to one run's domains; without it, every domain with our marker goes, including
# those of a test run going on in parallel.
cleanup-domains: ## destroy the throwaway domains vmsnap_testctl created (and only those), optionally PREFIX=...
	$(TESTCTL) cleanup $(if $(PREFIX),--prefix '$(PREFIX)')
