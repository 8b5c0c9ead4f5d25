# SPDX-License-Identifier: Apache-2.0
# trailwatch: one non-recursive Makefile. Outputs go under build/ (build/asan/, build/fuzz/).
#
#   make            build/trailwatch
#   make run        install missing packages, build, run the main job on samples/
#   make test       install missing packages, build and run the Criterion suite
#   make check      ASan+UBSan build of the suite; fails on any LeakSanitizer report; replays fuzz corpora
#   make fuzz       clang libFuzzer targets (FUZZ_SECONDS=60 each, FUZZ_TARGETS="wal segment" to pick)
#   make bench      benchmarks on data from ../shared/bench/gen-cloudtrail
#   make soak       crash soak: SIGKILL `trailwatch run` SOAK_KILLS=100 times, check nothing lost
#   make deps       apt-get install the Debian packages that are missing
#   make clean

CC       ?= cc
BUILD    ?= build
OPT      ?= -O2 -g
WARN     := -Wall -Wextra -Wshadow -Wformat=2 -Wstrict-prototypes -Wmissing-prototypes -Wvla -Werror
CSTD     := -std=c11 -D_GNU_SOURCE
CFLAGS_ALL = $(CSTD) $(OPT) $(WARN) -I. -pthread $(PKG_CFLAGS) $(EXTRA_CFLAGS)
LDLIBS_ALL = $(PKG_LIBS) -pthread -lm

# pkg-config name -> Debian package. Every library goes through pkg-config.
PKGS         := zlib libzstd libpcre2-8 jansson libcurl rdkafka libisal
PKG_DEB_zlib        := zlib1g-dev
PKG_DEB_libzstd     := libzstd-dev
PKG_DEB_libpcre2-8  := libpcre2-dev
PKG_DEB_jansson     := libjansson-dev
PKG_DEB_libcurl     := libcurl4-openssl-dev
PKG_DEB_rdkafka     := librdkafka-dev
PKG_DEB_libisal     := libisal-dev
PKG_DEB_criterion   := libcriterion-dev
# Tools the tests and benchmarks run (not libraries).
TOOL_DEBS    := pkg-config python3 python3-aiosmtpd kcat jq zstd clang libclang-rt-14-dev
DEBS         := $(foreach p,$(PKGS) criterion,$(PKG_DEB_$(p))) $(TOOL_DEBS)

NOCHECK_GOALS := deps clean help
ifeq ($(filter-out $(NOCHECK_GOALS),$(or $(MAKECMDGOALS),all)),)
else
missing_pkgs := $(strip $(foreach p,$(PKGS),$(if $(shell pkg-config --exists $(p) && echo y),,$(p))))
ifneq ($(missing_pkgs),)
ifeq ($(filter run test check,$(MAKECMDGOALS)),)
$(error missing libraries: $(foreach p,$(missing_pkgs),$(p) (Debian package $(PKG_DEB_$(p)))). Run 'make deps' to install them)
endif
endif
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
endif

LIB_SRC  := $(sort $(wildcard core/*.c ingest/*.c index/*.c query/*.c alerts/*.c))
CLI_SRC  := $(sort $(wildcard cli/*.c))
TEST_SRC := $(sort $(wildcard tests/unit/*.c tests/helpers/*.c tests/fuzz/fuzz_*.c))
FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))

obj = $(patsubst %.c,$(1)/obj/%.o,$(2))

.PHONY: all run test check fuzz fuzz-build fuzz-lib fuzz-seeds bench bench-nab soak deps clean help lint-deps ensure-deps
all: $(BUILD)/trailwatch

# ---- the library and the program -------------------------------------------------------------
$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -MMD -MP -c -o $@ $<

$(BUILD)/libtrailwatch.a: $(call obj,$(BUILD),$(LIB_SRC))
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/trailwatch: $(call obj,$(BUILD),$(CLI_SRC)) $(BUILD)/libtrailwatch.a
	$(CC) $(CFLAGS_ALL) -o $@ $^ $(LDLIBS_ALL)

# ---- tests -----------------------------------------------------------------------------------
TEST_CFLAGS = $(shell pkg-config --cflags criterion 2>/dev/null)
TEST_LIBS   = $(shell pkg-config --libs criterion 2>/dev/null)

$(BUILD)/trailwatch-tests: $(call obj,$(BUILD)/t,$(TEST_SRC)) $(BUILD)/libtrailwatch.a
	$(CC) $(CFLAGS_ALL) -o $@ $^ $(TEST_LIBS) $(LDLIBS_ALL)

$(BUILD)/t/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(TEST_CFLAGS) -Wno-missing-prototypes -MMD -MP -c -o $@ $<

# Tests find the program, the fixtures and the shared data through the environment.
TEST_ENV = TW_BIN=$(abspath $(BUILD)/trailwatch) TW_SRC=$(CURDIR) TW_SHARED=$(abspath ../shared)
CRITERION_FLAGS ?= --jobs 2

ensure-deps:
	@missing=""; for p in $(PKGS) criterion; do pkg-config --exists $$p || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "missing:$$missing; running make deps"; $(MAKE) --no-print-directory deps; fi

test: ensure-deps
	@$(MAKE) --no-print-directory $(BUILD)/trailwatch $(BUILD)/trailwatch-tests
	$(TEST_ENV) $(BUILD)/trailwatch-tests $(CRITERION_FLAGS)

run: ensure-deps
	@command -v jq >/dev/null 2>&1 || $(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory $(BUILD)/trailwatch
	@sh samples/run.sh $(BUILD)/trailwatch $(BUILD)/run

# ---- sanitizers: make check ------------------------------------------------------------------
# One job: with --jobs 2, Criterion 2.4.1's runner itself leaks 48 bytes when tests set .timeout,
# and a suppression for it would also hide leaks in our tests (their stacks pass through Criterion).
ASAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
check: ensure-deps
	@$(MAKE) --no-print-directory BUILD=build/asan OPT="-O1 -g" EXTRA_CFLAGS="$(ASAN_FLAGS)" \
		build/asan/trailwatch build/asan/trailwatch-tests build/asan/fuzz-replay
	@set -e; log=build/asan/check.log; \
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	TW_BIN=$(abspath build/asan/trailwatch) TW_SRC=$(CURDIR) TW_SHARED=$(abspath ../shared) \
		build/asan/trailwatch-tests --jobs 1 >$$log 2>&1 || true; cat $$log; \
	ASAN_OPTIONS=detect_leaks=1 build/asan/fuzz-replay tests/fuzz/corpus >>$$log 2>&1 || \
		{ tail -20 $$log; echo "make check: fuzz corpus replay failed"; exit 1; }; \
	if grep -q 'ERROR: LeakSanitizer\|ERROR: AddressSanitizer\|runtime error:' $$log; then \
		echo "make check: sanitizer reports in $$log"; exit 1; fi; \
	grep -q 'Synthesis: .* Failing: 0 ' $$log || { echo "make check: failing tests"; exit 1; }

# Replays every fuzz corpus file through every fuzz target with a plain main (gcc builds too).
$(BUILD)/fuzz-replay: $(call obj,$(BUILD)/t,$(FUZZ_SRC) tests/fuzz/replay_main.c) $(BUILD)/libtrailwatch.a
	$(CC) $(CFLAGS_ALL) -o $@ $^ $(LDLIBS_ALL)

# ---- fuzzing: make fuzz ----------------------------------------------------------------------
# FUZZ_TARGETS="wal segment" picks targets (default: all). Each runs until FUZZ_RUNS executions
# (default: no limit) or FUZZ_SECONDS, FUZZ_JOBS targets at a time; tests/fuzz/campaign.sh
# prints each target's executions and appends them to build/fuzz/results.tsv.
# The issue's campaign: make fuzz FUZZ_SECONDS=1800 FUZZ_RUNS=10000000 FUZZ_JOBS=2
FUZZ_SECONDS ?= 60
FUZZ_RUNS ?= -1
FUZZ_JOBS ?= 1
FUZZ_TARGETS ?= $(patsubst tests/fuzz/fuzz_%.c,%,$(FUZZ_SRC))
# UBSan findings stop the run (as in make check), else libFuzzer would print them and go on.
FUZZ_CFLAGS := -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
fuzz-lib: ensure-deps
	@$(MAKE) --no-print-directory CC=clang BUILD=build/fuzz OPT="-O1 -g" EXTRA_CFLAGS="$(FUZZ_CFLAGS)" \
		WARN="-Wall -Wextra -Werror -Wno-unused-command-line-argument" build/fuzz/libtrailwatch.a
fuzz-build: fuzz-lib
	@set -e; for t in $(FUZZ_TARGETS); do \
		clang -std=c11 -D_GNU_SOURCE -O1 -g -I. -DTW_FUZZ_ONE=fuzz_$$t \
		-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined tests/fuzz/fuzz_$$t.c \
		build/fuzz/libtrailwatch.a \
		$(PKG_LIBS) -pthread -lm -o build/fuzz/fuzz_$$t; \
	done
fuzz: fuzz-build
	@FUZZ_TARGETS="$(FUZZ_TARGETS)" FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_RUNS=$(FUZZ_RUNS) \
		FUZZ_JOBS=$(FUZZ_JOBS) bash tests/fuzz/campaign.sh

# Rewrites the seeds of the wal, segment and state targets with our own writers (tests/fuzz/seedgen.c).
fuzz-seeds: fuzz-lib
	clang -std=c11 -D_GNU_SOURCE -O1 -g -I. -fsanitize=address,undefined tests/fuzz/seedgen.c \
		build/fuzz/libtrailwatch.a $(PKG_LIBS) -pthread -lm -o build/fuzz/seedgen
	mkdir -p tests/fuzz/corpus/wal tests/fuzz/corpus/segment tests/fuzz/corpus/state && \
		build/fuzz/seedgen tests/fuzz/corpus

# ---- benchmarks ------------------------------------------------------------------------------
bench: $(BUILD)/trailwatch $(BUILD)/bench/kafka_cluster
	@sh bench/run.sh $(BUILD)/trailwatch
	@sh bench/filter.sh
	@sh bench/kafka.sh $(BUILD)/trailwatch $(BUILD)/bench/kafka_cluster
	@sh bench/anomalies.sh $(BUILD)/trailwatch

# ---- crash soak: make soak (not part of make test; ~10 min) ----------------------------------
# Kafka mock cluster + followed directory + an event rule and a metric alarm mailing an SMTP
# server on 127.0.0.1; SIGKILL SOAK_KILLS times; then every event once, every notification once.
# Then tests/soak/faults.py: disk full on an 8 MB tmpfs (root), ingest rate with a hanging SMTP.
soak: ensure-deps
	@$(MAKE) --no-print-directory $(BUILD)/trailwatch $(BUILD)/bench/kafka_cluster
	/usr/bin/python3 tests/soak/soak.py $(BUILD)/trailwatch $(BUILD)/bench/kafka_cluster
	/usr/bin/python3 tests/soak/faults.py $(BUILD)/trailwatch

# hosts librdkafka's mock cluster for the end-to-end Kafka benchmark (bench/kafka.sh)
$(BUILD)/bench/kafka_cluster: bench/kafka_cluster.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -o $@ $< $(PKG_LIBS)

# NAB realAWSCloudwatch: trailwatch detect scored by ../shared/bench/nab-score next to published detectors.
bench-nab: $(BUILD)/trailwatch
	@sh bench/nab.sh $(BUILD)/trailwatch

# ---- packages --------------------------------------------------------------------------------
deps:
	@missing=""; for d in $(DEBS) make gcc; do \
		dpkg-query -W -f='$${Status}' $$d 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$d"; \
	done; \
	if [ -z "$$missing" ]; then echo "make deps: all packages present"; exit 0; fi; \
	echo "make deps: installing$$missing"; \
	if [ "$$(id -u)" != 0 ]; then SUDO=sudo; else SUDO=; fi; \
	$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing

# Module layering: core includes no other module; only query may include index; nobody includes cli.
lint-deps:
	@bad=$$(grep -n '#include "\(ingest\|index\|query\|alerts\|cli\)/' core/*.[ch] 2>/dev/null; \
		grep -n '#include "\(index\|query\|alerts\|cli\)/' ingest/*.[ch] 2>/dev/null; \
		grep -n '#include "\(ingest\|query\|alerts\|cli\)/' index/*.[ch] 2>/dev/null; \
		grep -n '#include "\(ingest\|alerts\|cli\)/' query/*.[ch] 2>/dev/null; \
		grep -n '#include "\(ingest\|index\|query\|cli\)/' alerts/*.[ch] 2>/dev/null); \
	if [ -n "$$bad" ]; then echo "include runs against the module layering:"; echo "$$bad"; exit 1; fi

clean:
	rm -rf build

help:
	@sed -n '2,13p' Makefile

-include $(shell find build -name '*.d' 2>/dev/null)
