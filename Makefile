# Laminar: top-level Makefile.
#
#   make            build everything under build/ (installs missing deps first)
#   make test       build and run every test; ends with Check's summary line
#   make bench      run the benchmarks; figures go to build/bench/results.jsonl
#   make run        start a node and show the runtime working
#   make fuzz       build the libFuzzer targets and fuzz for FUZZ_SECONDS
#   make format     format the C sources with the committed .clang-format
#   make clean
#
#   SANITIZER=address|undefined|thread   build and test a sanitized variant
#                                         (objects under build/<sanitizer>/)

SANITIZER ?=
PKGS      := libevent_core libevent_extra libevent_pthreads msgpack libzstd yaml-0.1 jansson \
             libxxhash sqlite3 libpq
CC        ?= cc
ifeq ($(CC),cc)
CC        := gcc
endif

ifeq ($(SANITIZER),)
VARIANT   := release
SANFLAGS  :=
else ifeq ($(SANITIZER),address)
VARIANT   := asan
SANFLAGS  := -fsanitize=address -fno-omit-frame-pointer
else ifeq ($(SANITIZER),undefined)
VARIANT   := ubsan
SANFLAGS  := -fsanitize=undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
else ifeq ($(SANITIZER),thread)
VARIANT   := tsan
SANFLAGS  := -fsanitize=thread
else
$(error SANITIZER must be address, undefined or thread)
endif

B         := build/$(VARIANT)
BIN       := build/bin
ifneq ($(SANITIZER),)
BIN       := $(B)/bin
endif

# Before anything is built, make sure every dependency is installed: when
# scripts/install-deps.sh --check reports something missing, run the
# installer (as root or through sudo) once, here, so that pkg-config below
# sees the libraries.
ifeq ($(filter clean format format-check,$(MAKECMDGOALS)),)
ifneq ($(shell scripts/install-deps.sh --check >/dev/null 2>&1 && echo yes),yes)
$(info make: installing missing dependencies with scripts/install-deps.sh)
ifneq ($(shell scripts/install-deps.sh >&2; echo $$?),0)
$(error scripts/install-deps.sh failed; see above)
endif
endif
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   := $(shell pkg-config --libs $(PKGS)) -lnng
CHECK_LIBS := $(shell pkg-config --libs check)
endif

CFLAGS    ?= -O2 -g
# Components live in actors/<component>/; the daemon's main in actors/laminard.
ACTOR_DIRS := $(filter-out actors/laminard,$(patsubst %/,%,$(sort $(dir $(wildcard actors/*/*.c)))))
INCLUDES  := -Iruntime -Iproto $(addprefix -I,$(ACTOR_DIRS))

CFLAGS    += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -pthread $(SANFLAGS) \
             $(INCLUDES) $(PKG_CFLAGS)
LDFLAGS   += -pthread $(SANFLAGS)
LIBS      := $(PKG_LIBS) -lm

LIB_SRCS  := $(wildcard runtime/*.c proto/*.c) $(wildcard $(addsuffix /*.c,$(ACTOR_DIRS)))
LIB_OBJS  := $(LIB_SRCS:%.c=$(B)/obj/%.o)
LIB       := $(B)/liblaminar.a

LAMINARD_SRCS := $(wildcard actors/laminard/*.c)
# laminarctl, the command-line client of the REST API.
CLI_SRCS  := $(wildcard cli/*.c)
TEST_SRCS := $(wildcard test/*.c test/runtime/*.c test/proto/*.c test/integration/*.c \
                       test/connectors/*.c test/operators/*.c test/engine/*.c test/sql/*.c \
                       test/metastore/*.c test/api/*.c test/cli/*.c test/controlplane/*.c)
TEST_OBJS := $(TEST_SRCS:%.c=$(B)/obj/%.o)
HELPER_SRCS := $(wildcard test/helpers/*.c)
BENCH_SRCS := $(wildcard scripts/bench/*.c)

PROGRAMS  := $(BIN)/laminard $(BIN)/laminarctl $(B)/test/check_laminar $(B)/test/lm-test-peer \
             $(BIN)/lm-bench-runtime $(BIN)/lm-bench-nexmark

FUZZ_SECONDS ?= 30
FUZZ_B    := build/fuzz

.PHONY: all deps test bench run fuzz fuzz-build format format-check clean
all: $(PROGRAMS)

deps:
	@scripts/install-deps.sh

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

# Test code also sees the shared test helpers (test/lm_test.h).
$(TEST_OBJS) $(B)/obj/test/helpers/peer.o: CFLAGS += -Itest

$(LIB): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BIN)/laminard: $(LAMINARD_SRCS:%.c=$(B)/obj/%.o) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BIN)/laminarctl: $(CLI_SRCS:%.c=$(B)/obj/%.o) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BIN)/lm-bench-runtime: $(B)/obj/scripts/bench/bench_runtime.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BIN)/lm-bench-nexmark: $(B)/obj/scripts/bench/bench_nexmark.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(B)/test/check_laminar: $(TEST_OBJS) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS) $(CHECK_LIBS)

$(B)/test/lm-test-peer: $(B)/obj/test/helpers/peer.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

# --- fuzzing (clang + libFuzzer, address sanitizer) -------------------------
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer-no-link,address,undefined \
               $(INCLUDES) $(PKG_CFLAGS)
FUZZ_LIB_OBJS := $(LIB_SRCS:%.c=$(FUZZ_B)/obj/%.o)
FUZZ_TARGETS := $(FUZZ_B)/fuzz_decode $(FUZZ_B)/fuzz_config $(FUZZ_B)/fuzz_sql \
                $(FUZZ_B)/fuzz_sql_compile

$(FUZZ_B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -MMD -MP -c $< -o $@

$(FUZZ_B)/fuzz_%: test/fuzz/fuzz_%.c $(FUZZ_LIB_OBJS)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $^ $(LIBS) -pthread

.SECONDARY: $(FUZZ_LIB_OBJS)

fuzz-build: $(FUZZ_TARGETS)

fuzz: fuzz-build
	@for t in $(FUZZ_TARGETS); do \
	  name=$$(basename $$t); mkdir -p $(FUZZ_B)/corpus/$$name; \
	  echo "fuzz: $$name for $(FUZZ_SECONDS)s"; \
	  $$t -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=1024 -malloc_limit_mb=256 \
	      -print_final_stats=1 -artifact_prefix=$(FUZZ_B)/ \
	      $(FUZZ_B)/corpus/$$name test/fuzz/corpus/$$name 2>&1 \
	    | grep -E '^(stat::number_of_executed_units|==|SUMMARY|Done|INFO: -max_total_time)|ERROR' ; \
	  test $${PIPESTATUS[0]} -eq 0 || exit 1; \
	done

# --- test, bench, run -------------------------------------------------------
# Fuzzing runs first, briefly; the Check runner runs last so that the final
# line of `make test` is Check's summary line.
test: SHELL := /bin/bash
test: all fuzz-build
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(or $(TEST_FUZZ_SECONDS),15)
	@LM_TEST_BIN=$(BIN) LM_TEST_PEER=$(B)/test/lm-test-peer $(B)/test/check_laminar

fuzz: SHELL := /bin/bash

# QUERIES=q5,q7 EVENTS=1000000 PARALLELISM=1,2 RUNS=3 pick a subset of Nexmark. The
# queries run twice: as hand-built plans, then compiled from SQL.
NEXMARK_ARGS = $(if $(QUERIES),--queries $(QUERIES)) $(if $(EVENTS),--events $(EVENTS)) \
	    $(if $(PARALLELISM),--parallelism $(PARALLELISM)) $(if $(RUNS),--runs $(RUNS))
bench: all
	@mkdir -p build/bench
	$(BIN)/lm-bench-runtime --json build/bench/results.jsonl
	$(BIN)/lm-bench-nexmark --json build/bench/results.jsonl --table build/bench/nexmark.txt \
	    $(NEXMARK_ARGS)
	$(BIN)/lm-bench-nexmark --json build/bench/results.jsonl --table build/bench/nexmark-sql.txt \
	    --sql scripts/nexmark/sql $(NEXMARK_ARGS)

run: all
	@scripts/run.sh $(BIN)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	@clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build

# Every object's header dependencies (from -MMD), so that a changed header
# rebuilds whatever includes it.
-include $(LIB_OBJS:.o=.d) $(TEST_OBJS:.o=.d) $(FUZZ_LIB_OBJS:.o=.d) \
         $(LAMINARD_SRCS:%.c=$(B)/obj/%.d) $(CLI_SRCS:%.c=$(B)/obj/%.d) $(BENCH_SRCS:%.c=$(B)/obj/%.d) \
         $(HELPER_SRCS:%.c=$(B)/obj/%.d)
