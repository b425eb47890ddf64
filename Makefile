# Entry points; the work is done by tools/test and tools/sandbox (readable bash, no make magic).
.PHONY: test check lint sanity units integration venv sandbox sandbox-clean

test:            ## everything CI runs: lint, sanity, unit tests, tests on sandbox hosts
	tools/test all

check:           ## the fast developer loop: lint, sanity, unit tests
	tools/test check

lint sanity units integration venv:
	tools/test $@

sandbox:         ## install podman & co and build the sandbox host image (idempotent)
	tools/sandbox prepare

sandbox-clean:   ## remove every sandbox container and network
	tools/sandbox clean
