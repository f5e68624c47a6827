# MUTT build. Every library comes from Debian through pkg-config (third_party/README.md).
# Required flags live in MUTT_CFLAGS so `make CFLAGS=...` cannot drop them.
PKGS       := libh2o libuv hiredis libpq libcurl jansson libpcre2-8 openssl libarchive netsnmp zlib
TEST_PKGS  := cmocka
BUILD      ?= build
CC         ?= gcc
CFLAGS     ?= -O2 -g
LDFLAGS    ?=
BIN        ?= mutt
GIT_REV    := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)

PKG_CFLAGS  = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS    = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm
TEST_LIBS   = $(shell pkg-config --libs $(TEST_PKGS) 2>/dev/null)
MUTT_CFLAGS = -std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter -DH2O_USE_LIBUV=1 \
              -Iinclude -I$(BUILD)/gen $(PKG_CFLAGS) -DMUTT_GIT_REV='"$(GIT_REV)"' -MMD -MP

SRCS       := $(shell find src -name '*.c' | sort)
MAIN_SRC   := src/app/main.c
LIB_SRCS   := $(filter-out $(MAIN_SRC),$(SRCS))
LIB_OBJS   := $(patsubst %.c,$(BUILD)/%.o,$(LIB_SRCS))
MAIN_OBJ   := $(BUILD)/src/app/main.o
UI_FILES   := $(sort $(wildcard src/web/ui/*))

UNIT_SRCS  := $(sort $(wildcard tests/unit/test_*.c))
INTEG_SRCS := $(sort $(wildcard tests/integration/test_*.c))
TEST_SUPPORT_SRCS := $(sort $(wildcard tests/support/*.c))
TEST_SUPPORT_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(TEST_SUPPORT_SRCS))
UNIT_BINS  := $(patsubst tests/unit/%.c,$(BUILD)/tests/unit/%,$(UNIT_SRCS))
FUZZ_SRCS  := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_REPLAY_BINS := $(patsubst tests/fuzz/%.c,$(BUILD)/tests/fuzz/%,$(FUZZ_SRCS))
INTEG_BINS := $(patsubst tests/integration/%.c,$(BUILD)/tests/integration/%,$(INTEG_SRCS))
SINK_BIN   := $(BUILD)/tests/mutt-sink
VAULT_STANDIN_BIN := $(BUILD)/tests/vault-standin

.PHONY: all deps run test test-fleet test-unit test-image test-asan tests-build fuzz bench-ingest bench-listeners bench-rules bench-alert bench-forward bench-e2e bench-fleet bench-soak clean
all: $(BIN)

# Packages (apt) only when something is missing; see tests/harness/deps.sh.
deps:
	@bash tests/harness/deps.sh

$(BIN): $(MAIN_OBJ) $(BUILD)/libmutt.a
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(BUILD)/libmutt.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(MUTT_CFLAGS) $(CFLAGS) -c -o $@ $<

# The dashboard is embedded in the binary (W39: no CDN, nothing to install).
$(BUILD)/gen/ui_assets.h: $(UI_FILES) tools/embed.sh
	@mkdir -p $(dir $@)
	bash tools/embed.sh $@ $(UI_FILES)
$(BUILD)/src/web/ui_assets.o: $(BUILD)/gen/ui_assets.h

# A test binary may list extra link flags (for --wrap mocks) in tests/<tier>/<name>.ldflags.
$(BUILD)/tests/unit/%: tests/unit/%.c $(BUILD)/libmutt.a $(TEST_SUPPORT_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(MUTT_CFLAGS) -Itests/support $(CFLAGS) $(LDFLAGS) -o $@ $< $(TEST_SUPPORT_OBJS) $(BUILD)/libmutt.a \
	    $(shell cat tests/unit/$*.ldflags 2>/dev/null) $(TEST_LIBS) $(PKG_LIBS)
$(BUILD)/tests/integration/%: tests/integration/%.c $(BUILD)/libmutt.a $(TEST_SUPPORT_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(MUTT_CFLAGS) -Itests/support $(CFLAGS) $(LDFLAGS) -o $@ $< $(TEST_SUPPORT_OBJS) $(BUILD)/libmutt.a \
	    $(shell cat tests/integration/$*.ldflags 2>/dev/null) $(TEST_LIBS) $(PKG_LIBS)
# Each fuzz target also links with a replay main under the normal compiler: `make test` feeds it
# the committed corpus (tests/fuzz/README.md), so CI needs no clang (D59).
$(BUILD)/tests/fuzz/%: tests/fuzz/%.c $(BUILD)/tests/fuzz/replay_main.o $(BUILD)/libmutt.a $(TEST_SUPPORT_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(MUTT_CFLAGS) -Itests/support $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/tests/fuzz/replay_main.o \
	    $(TEST_SUPPORT_OBJS) $(BUILD)/libmutt.a $(PKG_LIBS)
$(SINK_BIN): tests/harness/sink.c $(BUILD)/libmutt.a
	@mkdir -p $(dir $@)
	$(CC) $(MUTT_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libmutt.a $(PKG_LIBS)
# Vault API stand-in for the secrets tests (Vault itself cannot be installed here).
$(VAULT_STANDIN_BIN): tests/harness/vault-standin.c
	@mkdir -p $(dir $@)
	$(CC) $(MUTT_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(PKG_LIBS)

.SECONDARY: $(TEST_SUPPORT_OBJS) $(BUILD)/tests/fuzz/replay_main.o
tests-build: $(BIN) $(UNIT_BINS) $(FUZZ_REPLAY_BINS) $(INTEG_BINS) $(SINK_BIN) $(VAULT_STANDIN_BIN) $(BUILD)/bench/e2e_driver

# Two-command set-up: both targets install what is missing first.
# `make test T=redis` (or T="unit/test_x e2e/smoke") runs only the tests whose names contain T.
run: deps
	@$(MAKE) --no-print-directory $(BIN) $(SINK_BIN)
	@MUTT_BUILD=$(BUILD) MUTT_BIN=$(abspath $(BIN)) bash tests/harness/run-dev.sh

test: deps
	@$(MAKE) --no-print-directory tests-build
	@MUTT_BUILD=$(BUILD) MUTT_BIN=$(abspath $(BIN)) bash tests/harness/run-tests.sh $(T)

# The container image (tests/e2e/test_image.sh): podman build, README's docker run lines, compose.
test-image: deps
	@$(MAKE) --no-print-directory tests-build
	@MUTT_BUILD=$(BUILD) MUTT_BIN=$(abspath $(BIN)) bash tests/harness/run-tests.sh e2e/test_image

# The fleet drills across network namespaces at full size (tests/fleet/fleet.sh, CONTRACT D54):
# 2,000 events/s, 30 s partition; needs root (ip netns). `make test` runs them at 200 events/s
# (tests/e2e/test_fleet.sh).
test-fleet: deps
	@$(MAKE) --no-print-directory $(BIN) $(SINK_BIN) $(BUILD)/bench/e2e_driver
	@MUTT_BUILD=$(BUILD) MUTT_BIN=$(abspath $(BIN)) FLEET_RATE=2000 FLEET_PARTITION_S=30 bash tests/fleet/fleet.sh

test-unit: $(UNIT_BINS) $(FUZZ_REPLAY_BINS)
	@MUTT_BUILD=$(BUILD) bash tests/harness/run-tests.sh --unit-only $(T)

SAN := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
test-asan: deps
	@$(MAKE) --no-print-directory BUILD=build/asan BIN=build/asan/mutt CFLAGS="-O1 -g $(SAN)" LDFLAGS="$(SAN)" tests-build
	@MUTT_BUILD=build/asan MUTT_BIN=$(CURDIR)/build/asan/mutt bash tests/harness/run-tests.sh $(T)

# Fuzzing (D59, tests/fuzz/README.md): clang-14 + libFuzzer under ASan+UBSan, everything in
# build/fuzz (no gcc object mixed in). `make fuzz` runs every target FUZZ_SECONDS (60) in turn,
# one process at a time, and prints execs and crashes per target; FUZZ=name picks targets.
FUZZ_SECONDS ?= 60
FUZZ_SAN := -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
$(BUILD)/fuzzers/%: tests/fuzz/%.c $(BUILD)/libmutt.a $(TEST_SUPPORT_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(MUTT_CFLAGS) -Itests/support $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $< $(TEST_SUPPORT_OBJS) \
	    $(BUILD)/libmutt.a $(PKG_LIBS)
fuzz:
	@bash tests/harness/deps.sh clang-14 libfuzzer-14-dev libclang-rt-14-dev
	@$(MAKE) --no-print-directory BUILD=build/fuzz CC=clang-14 CFLAGS="$(FUZZ_SAN) -fsanitize=fuzzer-no-link" \
	    $(patsubst tests/fuzz/%.c,build/fuzz/fuzzers/%,$(FUZZ_SRCS))
	@FUZZ_BUILD=build/fuzz FUZZ_SECONDS=$(FUZZ_SECONDS) bash tests/fuzz/run.sh $(FUZZ)

bench-ingest: deps
	@$(MAKE) --no-print-directory $(BIN)
	@MUTT_BIN=$(abspath $(BIN)) bash bench/ingest.sh

# Native syslog/SNMP listeners vs the rsyslog and snmptrapd chains (bench/listeners.sh, issue 15).
$(BUILD)/bench/listen_sender: bench/listen_sender.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -O2 -Wall -Wextra -Werror -o $@ $<
bench-listeners: deps
	@$(MAKE) --no-print-directory $(BIN) $(BUILD)/bench/listen_sender
	@MUTT_BIN=$(abspath $(BIN)) SENDER_BIN=$(abspath $(BUILD)/bench/listen_sender) bash bench/listeners.sh

# Rules engine throughput (D13 mix); not a test. Results go to bench/README.md by hand.
$(BUILD)/bench/rules_bench: bench/rules_bench.c $(BUILD)/libmutt.a
	@mkdir -p $(dir $@)
	$(CC) $(MUTT_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libmutt.a $(PKG_LIBS)
bench-rules: $(BUILD)/bench/rules_bench
	@$(BUILD)/bench/rules_bench

# Alert stage end to end: 200,000 preloaded events, 1,000 rules (bench/alert.sh).
bench-alert: deps
	@$(MAKE) --no-print-directory $(BIN)
	@MUTT_BIN=$(abspath $(BIN)) bash bench/alert.sh

# Forward stage: 100,000 alerts to a local sink answering 200 (bench/forward.sh, bench/README.md).
bench-forward: deps
	@$(MAKE) --no-print-directory $(BIN) $(SINK_BIN)
	@MUTT_BIN=$(abspath $(BIN)) SINK_BIN=$(abspath $(SINK_BIN)) bash bench/forward.sh

# Pipeline ingest -> webhook at a fixed offered load (bench/e2e.sh): p50/p99 latency, zero loss.
$(BUILD)/bench/e2e_driver: bench/e2e_driver.c
	@mkdir -p $(dir $@)
	$(CC) $(MUTT_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(PKG_LIBS)
bench-e2e: deps
	@$(MAKE) --no-print-directory $(BIN) $(SINK_BIN) $(BUILD)/bench/e2e_driver
	@MUTT_BIN=$(abspath $(BIN)) SINK_BIN=$(abspath $(SINK_BIN)) DRIVER_BIN=$(abspath $(BUILD)/bench/e2e_driver) \
	    bash bench/e2e.sh

# The same load through one ingest,web process and 1, 2, 4 alert,forward processes on one Redis
# (bench/fleet.sh, issue 13): events/s, Redis CPU and commands per event per fleet size.
bench-fleet: deps
	@$(MAKE) --no-print-directory $(BIN) $(SINK_BIN) $(BUILD)/bench/e2e_driver
	@MUTT_BIN=$(abspath $(BIN)) SINK_BIN=$(abspath $(SINK_BIN)) DRIVER_BIN=$(abspath $(BUILD)/bench/e2e_driver) \
	    bash bench/fleet.sh

# Soak: the same pipeline at 2,000 events/s for SOAK_MINUTES (30), sampled every 10 s; drift report
# (RSS, fds, p99, loss) with PASS/FAIL per target (bench/soak.sh, bench/README.md "Soak").
bench-soak: deps
	@$(MAKE) --no-print-directory $(BIN) $(SINK_BIN) $(BUILD)/bench/e2e_driver
	@MUTT_BIN=$(abspath $(BIN)) SINK_BIN=$(abspath $(SINK_BIN)) DRIVER_BIN=$(abspath $(BUILD)/bench/e2e_driver) \
	    bash bench/soak.sh

clean:
	rm -rf build $(BIN)

# Includes point down the tiers (README "Architecture"); known exceptions in tools/layers.allow.
# Every test target runs it before building anything.
.PHONY: check-layers
check-layers:
	@bash tools/check_layers.sh
test test-unit test-asan: check-layers

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# ---------------------------------------------------------------------------------- install
# `make install` (PREFIX=/usr/local, DESTDIR for staging/packaging): binary, systemd units (their
# paths rewritten for PREFIX), man page, example config, schema, and the integration files
# (Prometheus, Grafana, rsyslog, snmptrapd). Never touches /etc/mutt/mutt.conf.
PREFIX     ?= /usr/local
DESTDIR    ?=
UNITDIR    ?= $(PREFIX)/lib/systemd/system
SHAREDIR   := $(PREFIX)/share/mutt
.PHONY: install
install: $(BIN)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(UNITDIR) $(DESTDIR)$(PREFIX)/share/man/man1 \
	    $(DESTDIR)$(SHAREDIR)/prometheus $(DESTDIR)$(SHAREDIR)/grafana $(DESTDIR)$(SHAREDIR)/rsyslog \
	    $(DESTDIR)$(SHAREDIR)/snmptrapd $(DESTDIR)$(PREFIX)/libexec/mutt
	install -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/mutt
	for u in mutt.service mutt@.service; do \
	    sed 's|/usr/local/bin/mutt|$(PREFIX)/bin/mutt|g' conf/$$u >$(DESTDIR)$(UNITDIR)/$$u && \
	    chmod 0644 $(DESTDIR)$(UNITDIR)/$$u || exit 1; done
	install -m 0644 conf/mutt.1 $(DESTDIR)$(PREFIX)/share/man/man1/mutt.1
	install -m 0644 mutt.conf.example conf/schema.sql $(DESTDIR)$(SHAREDIR)/
	install -m 0644 conf/prometheus/*.yml $(DESTDIR)$(SHAREDIR)/prometheus/
	install -m 0644 conf/grafana/*.json $(DESTDIR)$(SHAREDIR)/grafana/
	for f in conf/rsyslog/*.conf; do \
	    sed 's|/usr/local/bin/mutt|$(PREFIX)/bin/mutt|g' $$f >$(DESTDIR)$(SHAREDIR)/rsyslog/$$(basename $$f) || exit 1; done
	sed 's|/usr/local/libexec/mutt|$(PREFIX)/libexec/mutt|g' conf/snmptrapd/snmptrapd.conf \
	    >$(DESTDIR)$(SHAREDIR)/snmptrapd/snmptrapd.conf
	install -m 0755 conf/snmptrapd/mutt-traphandle $(DESTDIR)$(PREFIX)/libexec/mutt/mutt-traphandle
	@echo "installed under $(DESTDIR)$(PREFIX); next: cp $(SHAREDIR)/mutt.conf.example /etc/mutt/mutt.conf," \
	      "useradd --system mutt, systemctl daemon-reload"
