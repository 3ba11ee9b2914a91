# cdc build.  `make` builds build/release/cdc; `make VARIANT=asan` (address +
# undefined behaviour sanitizers) or `make VARIANT=tsan` build the same tree
# elsewhere.  `make test` runs everything the README's test command runs.

VARIANT ?= release
CC      ?= cc

# Every pkg-config module cdc can use.  The optional ones belong to modules
# (below): a module whose library pkg-config cannot find, or that
# PKG_DISABLE names (`make PKG_DISABLE=rdkafka`), is left out of the build:
# its sources and tests are not built, its CDC_HAVE_* is not defined, and
# its registry line (src/sink/registry.c, ...) says it is not available in
# this build.  A PKG_DISABLE build goes to build/$(VARIANT)-no-<pkg>.
PKGS          := libpq yaml-0.1 libcurl sqlite3 openssl libzstd zlib libmariadb rdkafka libnats
OPTIONAL_PKGS := libmariadb rdkafka libnats
PKG_DISABLE   ?=

# The modules, by library: define, sources (patterns) and tests/helpers.
MOD_rdkafka_DEFINE    := CDC_HAVE_RDKAFKA
MOD_rdkafka_SRCS      := src/transport/kafka/% src/sink/kafka/% src/source/kafka/% \
                         src/main/cmd_consume.c
MOD_rdkafka_TESTS     := test_kafka test_kproducer test_ktopics kafka_mock
MOD_libmariadb_DEFINE := CDC_HAVE_MARIADB
MOD_libmariadb_SRCS   := src/source/mysql/%
MOD_libmariadb_TESTS  := test_binlog test_mysrc_pos binlog_dump fuzz_binlog
MOD_libnats_DEFINE    := CDC_HAVE_NATS
MOD_libnats_SRCS      := src/sink/nats/%
MOD_libnats_TESTS     := test_nats_subject fuzz_nats_subject

empty :=
space := $(empty) $(empty)
PKGS_OFF := $(strip $(foreach p,$(OPTIONAL_PKGS),$(if $(filter $p,$(PKG_DISABLE)),$p,$(if $(shell pkg-config --exists $p && echo y),,$p))))
PKGS_ON  := $(filter-out $(PKGS_OFF),$(PKGS))
OFF_SRCS  := $(foreach p,$(PKGS_OFF),$(MOD_$(p)_SRCS))
OFF_TESTS := $(foreach p,$(PKGS_OFF),$(MOD_$(p)_TESTS))
MOD_DEFINES := $(foreach p,$(filter-out $(PKGS_OFF),$(OPTIONAL_PKGS)),-D$(MOD_$(p)_DEFINE))

BUILD   := build/$(VARIANT)$(subst $(space),,$(patsubst %,-no-%,$(sort $(filter $(OPTIONAL_PKGS),$(PKG_DISABLE)))))

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS_ON))
PKG_LIBS   := $(shell pkg-config --libs $(PKGS_ON))

WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 \
           -Wno-unused-parameter -Wvla -Wpointer-arith
ifeq ($(WERROR),1)
WARN    += -Werror
endif

CFLAGS_release := -O2 -g
CFLAGS_asan    := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
CFLAGS_tsan    := -O1 -g -fno-omit-frame-pointer -fsanitize=thread
LDFLAGS_asan   := -fsanitize=address,undefined
LDFLAGS_tsan   := -fsanitize=thread

CPPFLAGS += -Isrc -D_GNU_SOURCE $(MOD_DEFINES) $(PKG_CFLAGS)
CFLAGS   += -std=gnu11 -pthread $(WARN) $(CFLAGS_$(VARIANT))
LDFLAGS  += -pthread $(LDFLAGS_$(VARIANT))
LDLIBS   += $(PKG_LIBS) -lsnappy -lm

SRCS      := $(filter-out $(OFF_SRCS),$(sort $(shell find src -name '*.c')))
MAIN_SRCS := $(filter src/main/%,$(SRCS))
LIB_SRCS  := $(filter-out src/main/%,$(SRCS))
LIB_OBJS  := $(LIB_SRCS:%.c=$(BUILD)/%.o)
MAIN_OBJS := $(MAIN_SRCS:%.c=$(BUILD)/%.o)

UNIT_SRCS := $(filter-out $(OFF_TESTS:%=tests/unit/%.c),$(sort $(wildcard tests/unit/test_*.c)))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
HELPER_SRCS := $(filter-out $(OFF_TESTS:%=tests/helpers/%.c),$(sort $(wildcard tests/helpers/*.c)))
HELPER_BINS := $(HELPER_SRCS:tests/helpers/%.c=$(BUILD)/tests/%)

.PHONY: all clean unit helpers test format-check fuzz fuzz-check man install modules FORCE
all: $(BUILD)/cdc

# Which optional libraries this build uses and leaves out, and where it goes.
modules:
	@echo 'built with: $(filter $(OPTIONAL_PKGS),$(PKGS_ON))'
	@echo 'left out: $(PKGS_OFF)'
	@echo 'build directory: $(BUILD)'

# Objects depend on which modules are in: a library that appears or goes
# away rebuilds everything (the registries' #if lines change).
$(BUILD)/modules.stamp: FORCE
	@mkdir -p $(@D)
	@echo '$(PKGS_OFF)' | cmp -s - $@ || echo '$(PKGS_OFF)' > $@

$(BUILD)/libcdc.a: $(LIB_OBJS)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/cdc: $(MAIN_OBJS) $(BUILD)/libcdc.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/%.o: %.c $(BUILD)/modules.stamp
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/tests/test_%: tests/unit/test_%.c $(BUILD)/libcdc.a
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) -Itests/unit $(CFLAGS) -o $@ $< $(BUILD)/libcdc.a $(LDFLAGS) $(LDLIBS) -lcmocka

$(BUILD)/tests/%: tests/helpers/%.c $(BUILD)/libcdc.a
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(BUILD)/libcdc.a $(LDFLAGS) $(LDLIBS)

# lake_write is one helper in several files (tests/helpers/lake/).
LAKE_HELPER_SRCS := $(sort $(wildcard tests/helpers/lake/*.c))
$(BUILD)/tests/lake_write: tests/helpers/lake_write.c $(LAKE_HELPER_SRCS) $(wildcard tests/helpers/lake/*.h) $(BUILD)/libcdc.a
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) -Itests/helpers $(CFLAGS) -o $@ tests/helpers/lake_write.c $(LAKE_HELPER_SRCS) $(BUILD)/libcdc.a $(LDFLAGS) $(LDLIBS)

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; CMOCKA_MESSAGE_OUTPUT=stdout $$t; done

helpers: $(HELPER_BINS)

# Fuzz targets: clang + libFuzzer, built with their own flags into build/fuzz.
FUZZ_SRCS := $(filter-out $(OFF_TESTS:%=tests/fuzz/%.c),$(sort $(wildcard tests/fuzz/fuzz_*.c)))
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=build/fuzz/%)
# The library is compiled once (instrumented for coverage, not linked with
# the fuzzer's main) and every target links against it.
FUZZ_SAN    := address,undefined
FUZZ_CFLAGS := -std=gnu11 -g -O1 -Isrc -D_GNU_SOURCE $(MOD_DEFINES) $(PKG_CFLAGS)
FUZZ_OBJS   := $(LIB_SRCS:%.c=build/fuzz/obj/%.o)
build/fuzz/obj/%.o: %.c
	@mkdir -p $(@D)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link,$(FUZZ_SAN) -MMD -MP -c -o $@ $<
build/fuzz/libcdc.a: $(FUZZ_OBJS)
	rm -f $@ && ar rcs $@ $^
build/fuzz/%: tests/fuzz/%.c build/fuzz/libcdc.a
	@mkdir -p $(@D)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer,$(FUZZ_SAN) -o $@ $< build/fuzz/libcdc.a $(PKG_LIBS) -lsnappy -lm -pthread
fuzz: $(FUZZ_BINS)
# Every target briefly, stopping on sanitizer findings as the test command
# does (FUZZ_SECONDS=N per target; scripts/fuzz-check.sh NAME for one).
fuzz-check:
	scripts/fuzz-check.sh

# The manual page is generated from docs/cli.md (the one CLI reference);
# `make install` puts the binary, the page and the shell completions under
# $(DESTDIR)$(PREFIX).
PREFIX      ?= /usr/local
BINDIR      ?= $(PREFIX)/bin
MANDIR      ?= $(PREFIX)/share/man
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR  ?= $(PREFIX)/share/zsh/site-functions
PYTHON      ?= python3
CDC_VERSION := $(shell grep -rhs '^\#define CDC_VERSION ' src | sed 's/.*"\(.*\)".*/\1/' | head -n 1)

man: build/man/cdc.1
build/man/cdc.1: docs/cli.md scripts/md2man.py $(shell grep -rls '^\#define CDC_VERSION ' src)
	@mkdir -p $(@D)
	$(PYTHON) scripts/md2man.py --version "$(CDC_VERSION)" docs/cli.md > $@.tmp && mv $@.tmp $@

install: $(BUILD)/cdc build/man/cdc.1
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR)
	install -m 0755 $(BUILD)/cdc $(DESTDIR)$(BINDIR)/cdc
	install -m 0644 build/man/cdc.1 $(DESTDIR)$(MANDIR)/man1/cdc.1
	install -m 0644 packaging/completion/cdc.bash $(DESTDIR)$(BASHCOMPDIR)/cdc
	install -m 0644 packaging/completion/_cdc $(DESTDIR)$(ZSHCOMPDIR)/_cdc

format-check:
	clang-format --dry-run -Werror $(shell find src tests -name '*.[ch]')

clean:
	rm -rf build

-include $(LIB_OBJS:.o=.d) $(MAIN_OBJS:.o=.d) $(FUZZ_OBJS:.o=.d)
