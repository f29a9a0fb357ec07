# qemu-oc: the two commands are `make demo` and `make check` (README.md).

QTESTS := $(shell grep -hv '^\#' tests/upstream-qtests.list tests/oc-qtests.list)

.PHONY: all build qtests guest guest-trixie demo check bench sanitize fuzz \
	fuzz-tools sanitize-tools \
	install deb clean distclean

all: build

build:
	scripts/build.sh

qtests:
	scripts/build.sh $(addprefix tests/qtest/,$(QTESTS))

guest:
	scripts/build-guest.sh build/guest

# a second test guest with Debian 13's cloud kernel (balloon stats tags 10-15)
guest-trixie:
	scripts/build-guest.sh build/guest-trixie trixie

# the emulator, its modules, the tools, man pages, the systemd unit and a
# default configuration (PREFIX, default /usr; DESTDIR): docs/install.md
install: build
	scripts/install.sh

# Debian binary packages in build/deb/ (qemu-oc-system-x86, qemu-oc-tools)
deb: build
	scripts/make-deb.sh

# boot a demo VM and show its balloon statistics (and runstates)
demo: build guest
	/usr/bin/python3 scripts/demo.py

# every suite; ends with "N passed, N failed, N skipped"
check: qtests guest guest-trixie
	scripts/run-tests.sh

# benchmarks print numbers (bench/); they are not tests
bench: build guest
	/usr/bin/python3 bench/balloon_stats.py
	/usr/bin/python3 bench/runstates.py
	/usr/bin/python3 bench/migration.py
	/usr/bin/python3 bench/vmtop.py
	/usr/bin/python3 bench/balloond.py
	/usr/bin/python3 bench/pv_overcommit.py || [ $$? -eq 77 ]
	/usr/bin/python3 bench/overcommit.py || [ $$? -eq 77 ]

# ASan + UBSan build (build/asan) running our qtests and real-guest tests
sanitize:
	scripts/sanitize.sh

# the host tools and their tests with ASan + UBSan + LeakSanitizer
# (build/oc-asan): the whole tools suite, no report allowed
sanitize-tools:
	scripts/sanitize-tools.sh

# libFuzzer target of the balloon statistics code (build/fuzz): 1,000,000
# executions, then the number of executions and findings
fuzz:
	scripts/fuzz.sh

# libFuzzer targets of the host tools: the checks of what peers send, the
# QMP client (blocking, and on the workers' event loop), the collector's
# reader; 1,000,000 executions each
fuzz-tools:
	scripts/fuzz.sh --target snapshot-wire
	scripts/fuzz.sh --target qmp-client
	scripts/fuzz.sh --target qmp-async
	scripts/fuzz.sh --target collector-reader

clean:
	rm -rf build/qemu build/asan build/oc build/guest build/guest-trixie build/fuzz build/qemu-system-x86_64

distclean:
	rm -rf build
