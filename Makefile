# cdc build.  `make` builds build/release/cdc; `make VARIANT=asan` (address +
# undefined behaviour sanitizers) or `make VARIANT=tsan` build the same tree
# elsewhere.  `make test` runs everything the README's test command runs.

VARIANT ?= release
BUILD   := build/$(VARIANT)
CC      ?= cc

PKGS    := libpq yaml-0.1 libcurl sqlite3 openssl libmariadb rdkafka libzstd zlib
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   := $(shell pkg-config --libs $(PKGS))

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

CPPFLAGS += -Isrc -D_GNU_SOURCE $(PKG_CFLAGS)
CFLAGS   += -std=gnu11 -pthread $(WARN) $(CFLAGS_$(VARIANT))
LDFLAGS  += -pthread $(LDFLAGS_$(VARIANT))
LDLIBS   += $(PKG_LIBS) -lsnappy -lm

SRCS      := $(sort $(shell find src -name '*.c'))
MAIN_SRCS := $(filter src/main/%,$(SRCS))
LIB_SRCS  := $(filter-out src/main/%,$(SRCS))
LIB_OBJS  := $(LIB_SRCS:%.c=$(BUILD)/%.o)
MAIN_OBJS := $(MAIN_SRCS:%.c=$(BUILD)/%.o)

UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
HELPER_SRCS := $(sort $(wildcard tests/helpers/*.c))
HELPER_BINS := $(HELPER_SRCS:tests/helpers/%.c=$(BUILD)/tests/%)

.PHONY: all clean unit helpers test format-check fuzz man install
all: $(BUILD)/cdc

$(BUILD)/libcdc.a: $(LIB_OBJS)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/cdc: $(MAIN_OBJS) $(BUILD)/libcdc.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/%.o: %.c
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
FUZZ_SRCS := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=build/fuzz/%)
FUZZ_CFLAGS := -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -Isrc -D_GNU_SOURCE $(PKG_CFLAGS)
build/fuzz/%: tests/fuzz/%.c $(LIB_SRCS)
	@mkdir -p $(@D)
	clang $(FUZZ_CFLAGS) -o $@ $< $(LIB_SRCS) $(PKG_LIBS) -lsnappy -lm -pthread
fuzz: $(FUZZ_BINS)

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

-include $(LIB_OBJS:.o=.d) $(MAIN_OBJS:.o=.d)
