# Convenience targets; each is a thin wrapper around a script under scripts/.
.PHONY: demo setup test

## demo: install, build, and run the default image in both modes
demo: setup
	scripts/demo.sh

## setup: apt packages, release build, guest kernel, default images
setup:
	scripts/setup.sh

## test: every test (what CI runs)
test:
	scripts/test.sh
