# microscale: make | make deps | make test | make bench | make demo | make install
CC ?= cc
CFLAGS ?= -O2 -g
LDFLAGS ?=
PREFIX ?= /usr/local
DESTDIR ?=
BUILD ?= build

WARN := -std=c11 -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Werror
ALL_CPPFLAGS := -D_GNU_SOURCE -Ishared -Iregistry $(CPPFLAGS)
ALL_CFLAGS := $(WARN) $(CFLAGS)
# libev ships no pkg-config file on Debian 12.
LIBS := -lev -lcurl -ljansson -lcrypto -lhttp_parser -larchive
SAN := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer

SHARED_SRC := $(wildcard shared/*.c)
REGISTRY_SRC := $(filter-out registry/main.c,$(wildcard registry/*.c))
LIB_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(SHARED_SRC) $(REGISTRY_SRC))
UNIT_SRC := $(wildcard tests/unit/*/test_*.c)
UNIT_BIN := $(patsubst %.c,$(BUILD)/%,$(UNIT_SRC))

.PHONY: all deps test unit check-san bench demo install clean format
all: $(BUILD)/microscale-registry

$(BUILD)/%.o: %.c $(wildcard shared/*.h registry/*.h)
	@mkdir -p $(@D)
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/libms.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/microscale-registry: $(BUILD)/registry/main.o $(BUILD)/libms.a
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

# Unit tests may #include the .c they test; the archive then supplies only the rest.
$(BUILD)/tests/unit/%: tests/unit/%.c $(BUILD)/libms.a
	@mkdir -p $(@D)
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libms.a $(LIBS) -lcmocka

unit: $(UNIT_BIN)

deps:
	@tests/lib/deps.sh

# The tests run against a build with AddressSanitizer and UndefinedBehaviorSanitizer; the plain
# build is made too, so that both compile warning-free.
test: deps all
	$(MAKE) BUILD=build/san CFLAGS="-O1 -g $(SAN)" LDFLAGS="$(SAN)" all unit
	tests/run.sh build/san

bench: deps all
	tests/bench/run.sh $(BUILD)

install: all
	install -D -m 0755 $(BUILD)/microscale-registry $(DESTDIR)$(PREFIX)/bin/microscale-registry

format:
	clang-format -i shared/*.[ch] registry/*.[ch] tests/unit/*/*.c

clean:
	rm -rf build
