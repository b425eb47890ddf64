# Entry points; the work is done by tools/test and tools/sandbox (readable bash, no make magic).
.PHONY: demo demo-down test check lint sanity units integration venv sandbox sandbox-clean

demo:            ## a whole cluster on sandbox hosts of this machine; prints the URL
	tools/demo up

demo-down:       ## remove the demo's hosts
	tools/demo down

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
