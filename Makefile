# A thin wrapper around CMake. Every target first makes sure the packages
# are installed (scripts/deps.sh; apt-get as root, or it prints the command).
#
#   make run        build, then start build/moongate config.lua
#   make test       build in build/ and run every test with ctest
#   make test-asan  the same in build-asan/ with ASan + UBSan
#   make fuzz       libFuzzer on kcp_input for FUZZ_SECONDS (60) in build-fuzz/
#   make fuzz-wire  the same for the packet codec (test/fuzz/fuzz_wire.c)
#   make fuzz-fec   the same for the FEC decoder (test/fuzz/fuzz_fec.c)
#   make fuzz-all   every fuzz target (test/fuzz/), each for FUZZ_SECONDS or
#                   until FUZZ_RUNS executions; FUZZ_TARGETS picks some,
#                   FUZZ_NICE="nice -n 19" runs them at low priority
#   make install    build, then install into PREFIX (/usr/local); DESTDIR
#                   stages it elsewhere (packaging/install.cmake)
#   make package    build, then the .deb in build/package/ (CPack)
#   make clean      remove the build directories

SHELL := /bin/bash
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
FUZZ_SECONDS ?= 60
FUZZ_RUNS ?= 0
CMAKE_ARGS ?=
CTEST_ARGS ?=
PREFIX ?= /usr/local
DESTDIR ?=

SAN_ENV := ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=1 \
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

.PHONY: all deps deps-fuzz deps-page build run test test-asan fuzz fuzz-wire \
	fuzz-fec fuzz-all install package clean

all: build

deps:
	@bash scripts/deps.sh base

deps-fuzz:
	@bash scripts/deps.sh base fuzz

build: deps
	cmake -S . -B build $(CMAKE_ARGS)
	cmake --build build -j $(JOBS)

run: build
	./build/moongate config.lua

test: build deps-page
	cd build && ctest --output-on-failure $(CTEST_ARGS)

# the status page's browser test needs Chromium; without it (no network, not
# root) that one test is reported pending, with the reason
deps-page:
	-@bash scripts/deps.sh page || echo "make test: Chromium could not be installed: the status page test is pending"

# Installed straight into the system (no DESTDIR), as root: ldconfig, so
# that the new libmoongate-client.so.1 is found (/usr/local/lib).
install: build
	DESTDIR="$(DESTDIR)" cmake --install build --prefix "$(PREFIX)"
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ] && command -v ldconfig >/dev/null; then \
		ldconfig; \
	fi

package: build
	cd build && cpack -G DEB
	@ls -1 build/package/*.deb

# ctest's own log keeps every test's output, passed or not: a sanitizer
# report anywhere in it fails the target.
test-asan: deps
	cmake -S . -B build-asan -DMOONGATE_SANITIZE=ON $(CMAKE_ARGS)
	cmake --build build-asan -j $(JOBS)
	cd build-asan && $(SAN_ENV) ctest --output-on-failure $(CTEST_ARGS)
	@if grep -E -n "runtime error:|ERROR: AddressSanitizer|ERROR: LeakSanitizer" \
		build-asan/Testing/Temporary/LastTest.log; then \
		echo "test-asan: sanitizer report in build-asan/Testing/Temporary/LastTest.log" >&2; \
		exit 1; \
	fi

fuzz: deps-fuzz
	cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DMOONGATE_FUZZ=ON $(CMAKE_ARGS)
	cmake --build build-fuzz -j $(JOBS) --target fuzz_kcp_input
	mkdir -p build-fuzz/corpus build-fuzz/artifacts
	build-fuzz/fuzz_kcp_input -max_total_time=$(FUZZ_SECONDS) \
		-artifact_prefix=build-fuzz/artifacts/ -print_final_stats=1 \
		build-fuzz/corpus test/fuzz/corpus

fuzz-wire: deps-fuzz
	cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DMOONGATE_FUZZ=ON $(CMAKE_ARGS)
	cmake --build build-fuzz -j $(JOBS) --target fuzz_wire
	mkdir -p build-fuzz/corpus_wire build-fuzz/artifacts
	build-fuzz/fuzz_wire -max_total_time=$(FUZZ_SECONDS) \
		-artifact_prefix=build-fuzz/artifacts/ -print_final_stats=1 \
		build-fuzz/corpus_wire test/fuzz/corpus_wire

fuzz-fec: deps-fuzz
	cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DMOONGATE_FUZZ=ON $(CMAKE_ARGS)
	cmake --build build-fuzz -j $(JOBS) --target fuzz_fec
	mkdir -p build-fuzz/corpus_fec build-fuzz/artifacts
	build-fuzz/fuzz_fec -max_total_time=$(FUZZ_SECONDS) \
		-artifact_prefix=build-fuzz/artifacts/ -print_final_stats=1 \
		build-fuzz/corpus_fec test/fuzz/corpus_fec

fuzz-all: deps-fuzz
	cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DMOONGATE_FUZZ=ON $(CMAKE_ARGS)
	cmake --build build-fuzz -j $(JOBS) --target fuzz_kcp_input fuzz_wire \
		fuzz_fec fuzz_gate fuzz_session fuzz_frame fuzz_url fuzz_admin \
		fuzz_sync fuzz_config
	FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_RUNS=$(FUZZ_RUNS) \
		bash test/fuzz/fuzz_all.sh build-fuzz

clean:
	rm -rf build build-asan build-fuzz
