# microscale: make | make deps | make test | make bench | make demo | make install
CC ?= cc
CFLAGS ?= -O2 -g
LDFLAGS ?=
PREFIX ?= /usr/local
DESTDIR ?=
BUILD ?= build

WARN := -std=c11 -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Werror
ALL_CPPFLAGS := -D_GNU_SOURCE -Ishared -Iregistry -Iscaler $(CPPFLAGS)
ALL_CFLAGS := $(WARN) $(CFLAGS)
# libev ships no pkg-config file on Debian 12.
LIBS := -lev -lcurl -ljansson -lcrypto -lhttp_parser -larchive -luring -lzookeeper_st
SAN := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer

# One archive per directory (an archive keeps only base names: registry/config.o and
# scaler/config.o could not share one).
objs = $(patsubst %.c,$(BUILD)/%.o,$(filter-out $(1)/main.c,$(wildcard $(1)/*.c)))
LIBSHARED := $(BUILD)/libshared.a
LIBREGISTRY := $(BUILD)/libregistry.a
LIBSCALER := $(BUILD)/libscaler.a
ARCHIVES := $(LIBREGISTRY) $(LIBSCALER) $(LIBSHARED)
UNIT_SRC := $(wildcard tests/unit/*/test_*.c)
UNIT_BIN := $(patsubst %.c,$(BUILD)/%,$(UNIT_SRC))
BINS := $(BUILD)/microscale-registry $(if $(wildcard scaler/main.c),$(BUILD)/microscale-scaler)

.PHONY: all deps test unit bench demo fuzz install clean format check-cycles
all: $(BINS)

$(BUILD)/%.o: %.c $(wildcard shared/*.h registry/*.h scaler/*.h)
	@mkdir -p $(@D)
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -c -o $@ $<

# The dashboard's page is compiled in: scaler/dashboard.html as a byte array (od and sed, so
# no tool beyond coreutils), declared in scaler.h.
DASH_PAGE := $(BUILD)/scaler/dashboard_page
$(DASH_PAGE).c: scaler/dashboard.html
	@mkdir -p $(@D)
	{ echo '/* made from scaler/dashboard.html by the Makefile; do not edit */'; \
	  echo '#include "scaler.h"'; \
	  echo 'const unsigned char dash_page[] = {'; \
	  od -An -v -tx1 $< | sed 's/ \([0-9a-f][0-9a-f]\)/0x\1,/g'; \
	  echo '};'; \
	  echo 'const size_t dash_page_len = sizeof(dash_page);'; } >$@.tmp
	mv $@.tmp $@
$(DASH_PAGE).o: $(DASH_PAGE).c $(wildcard shared/*.h scaler/*.h)
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -c -o $@ $<

$(LIBSHARED): $(call objs,shared)
$(LIBREGISTRY): $(call objs,registry)
$(LIBSCALER): $(call objs,scaler) $(DASH_PAGE).o
$(ARCHIVES):
	@mkdir -p $(@D)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/microscale-registry: $(BUILD)/registry/main.o $(LIBREGISTRY) $(LIBSHARED)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/microscale-scaler: $(BUILD)/scaler/main.o $(LIBSCALER) $(LIBSHARED)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

# Unit tests may #include the .c they test; the archives then supply only the rest.
$(BUILD)/tests/unit/%: tests/unit/%.c $(ARCHIVES)
	@mkdir -p $(@D)
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(ARCHIVES) $(LIBS) -lcmocka

unit: $(UNIT_BIN)

# Files of one directory that call each other in a circle, from the objects' symbols.
check-cycles: $(ARCHIVES)
	tests/lib/callgraph.py $(BUILD)/registry $(BUILD)/shared $(BUILD)/scaler

deps:
	@tests/lib/deps.sh

# The tests run against a build with AddressSanitizer and UndefinedBehaviorSanitizer; the plain
# build is made too, so that both compile warning-free.
test: deps all
	$(MAKE) BUILD=build/san CFLAGS="-O1 -g $(SAN)" LDFLAGS="$(SAN)" all unit
	tests/run.sh build/san

bench: deps all
	tests/bench/run.sh $(BUILD)

# Every libFuzzer target for FUZZ_SECONDS each (make test only replays their corpora).
FUZZ_SECONDS ?= 60
fuzz: deps
	tests/fuzz/run.sh $(BUILD) $(FUZZ_SECONDS)

# A real `packer build -only=docker.node` of packer/, and the baked node booted twice under
# systemd-nspawn (tests/bake/run.sh; needs root). It makes the base root file system with
# debootstrap when /var/cache/microscale-bake has none yet. make test runs it too (91_bake).
.PHONY: bake-test
bake-test: deps
	tests/bake/run.sh

# The whole microscaling story on a cluster on this machine (tests/demo/run.sh; needs root):
# DEMO_SECONDS=60, DEMO_AGENTS=3 by default.
demo: deps all
	tests/demo/run.sh $(BUILD)

# Units go to $(PREFIX)/lib/systemd/system, which systemd searches for /usr and /usr/local alike
# (UNITDIR=… to choose). They name /usr, so another PREFIX gets its own paths written in. The
# configs are the node's: in /etc whatever the PREFIX, and never overwritten, so a reinstall keeps
# the node's edits.
install: UNITDIR ?= $(PREFIX)/lib/systemd/system
install: all
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BINS) $(DESTDIR)$(PREFIX)/bin/
	install -d $(DESTDIR)$(UNITDIR)
	set -e; for u in packer/systemd/*.service; do \
		sed -e 's|=/usr/bin/|=$(PREFIX)/bin/|' -e 's|file:/usr/share/|file:$(PREFIX)/share/|' \
			$$u >$(DESTDIR)$(UNITDIR)/$${u##*/}; \
		chmod 0644 $(DESTDIR)$(UNITDIR)/$${u##*/}; \
	done
	install -d $(DESTDIR)/etc/microscale
	set -e; for f in registry.json scaler.json images.list; do \
		[ -e $(DESTDIR)/etc/microscale/$$f ] || install -m 0644 packer/etc/$$f $(DESTDIR)/etc/microscale/; \
	done
	install -d $(DESTDIR)$(PREFIX)/share/doc/microscale $(DESTDIR)$(PREFIX)/lib/microscale
	install -m 0644 README.md $(DESTDIR)$(PREFIX)/share/doc/microscale/
	install -m 0755 packer/wire-runtimes.sh $(DESTDIR)$(PREFIX)/lib/microscale/
	install -m 0644 packer/systemd/microscale-registry-docker-socket.conf \
		$(DESTDIR)$(PREFIX)/lib/microscale/

format:
	git ls-files '*.c' '*.h' | xargs clang-format -i

clean:
	rm -rf build
