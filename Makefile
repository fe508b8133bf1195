# Convenience targets; each is a thin wrapper around a script under scripts/.
.PHONY: demo setup test bench

## demo: install, build, and run the default image in both modes
demo: setup
	scripts/demo.sh

## setup: apt packages, release build, guest kernel, default images
setup:
	scripts/setup.sh

## test: every test (what CI runs)
test:
	scripts/test.sh

## bench: the full comparison report (VM vs container, vmc vs crun vs runc)
bench: setup
	bench/compare.sh
