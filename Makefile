# The two commands: `make run` and `make test`.  Everything else is meson's.
BUILD      ?= build
BUILD_SAN  ?= build-san
BUILD_REL  ?= build-rel
# What building and running need, and nothing more: `make run` installs
# only these.  The test tools come with `make test` (and `make build`, which
# builds the tests), the benchmark's with `make bench`.
RUN_DEPS   := gcc libc6-dev pkg-config meson ninja-build \
              libuv1-dev libxxhash-dev python3 python3-dev
TEST_DEPS  := clang clang-format libcmocka-dev cppcheck python3-pymemcache \
              libmemcached-tools memcached nutcracker valgrind \
              python3-pylibmc php-cli php-memcached
RUN_FLAGS  ?=
C_DIRS     := client server bench tests include python
BENCH_DEPS := memcached redis-server redis-tools gnuplot-nox python3-pymemcache
BENCH_FLAGS ?=
BUILD_FUZZ ?= build-fuzz
FUZZ_SECONDS ?= 60
# Whether a new $(BUILD) is configured with the tests; make run says false.
WITH_TESTS ?= true

.PHONY: all deps deps-run deps-test build build-san test test-unit test-san lint run clean bench
.PHONY: fuzz memcheck format

all: build

deps-run:
	@./scripts/install-deps.sh $(RUN_DEPS)

deps deps-test:
	@./scripts/install-deps.sh $(RUN_DEPS) $(TEST_DEPS)

$(BUILD)/build.ninja:
	meson setup $(BUILD) -Dtests=$(WITH_TESTS) >/dev/null

$(BUILD_REL)/build.ninja:
	meson setup $(BUILD_REL) -Dbuildtype=release -Db_ndebug=true \
		-Dtests=false >/dev/null

$(BUILD_SAN)/build.ninja:
	CC=clang meson setup $(BUILD_SAN) -Db_sanitize=address,undefined \
		-Db_lundef=false -Dbuildtype=debug >/dev/null

# A $(BUILD) that make run configured without the tests gets them now.
build: deps-test $(BUILD)/build.ninja
	@[ "$$(meson configure $(BUILD) | awk '$$1 == "tests" { print $$2 }')" = true ] \
		|| meson configure $(BUILD) -Dtests=true >/dev/null
	ninja -C $(BUILD)

build-san: deps-test $(BUILD_SAN)/build.ninja
	ninja -C $(BUILD_SAN)

# gcc build first, then the clang build under ASan+UBSan, then cppcheck,
# then the C unit tests once more under valgrind's memcheck.  The release
# build `make bench` uses is compiled too: -O3 warns where -O2 does not.
test: build build-san $(BUILD_REL)/build.ninja
	ninja -C $(BUILD_REL)
	meson test -C $(BUILD) --print-errorlogs
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		meson test -C $(BUILD_SAN) --print-errorlogs
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory memcheck

# The Python module is checked without Python.h (cppcheck does not follow
# its multiarch pyconfig.h), so its return macros are spelled out.  Then
# every file under ~800 lines and function under ~80, except the files
# scripts/size_allowlist.txt still lists (scripts/check_sizes.py), and every
# C file as the root .clang-format lays it out (`make format` rewrites them).
lint: deps-test
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability \
		--inline-suppr --std=c11 -D_GNU_SOURCE -Iinclude -Iclient -Iserver \
		client server bench tests
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability \
		--inline-suppr --std=c11 -D_GNU_SOURCE -Iinclude \
		'-DPy_RETURN_NONE=return Py_None' '-DPy_RETURN_TRUE=return Py_True' \
		'-DPy_RETURN_FALSE=return Py_False' python
	/usr/bin/python3 scripts/check_sizes.py
	find $(C_DIRS) -name '*.[ch]' | xargs clang-format --dry-run --Werror

format:
	find $(C_DIRS) -name '*.[ch]' | xargs clang-format -i

# In the foreground with the defaults (127.0.0.1:11211, 1 GiB, huge pages
# if the kernel has them); flags through RUN_FLAGS.  As root it says -u
# root, which the server (as memcached) wants before it runs as root.
run: WITH_TESTS = false
run: deps-run $(BUILD)/build.ninja
	ninja -C $(BUILD)
	exec $(BUILD)/server/shmkv-server $(if $(filter 0,$(shell id -u)),-u root) $(RUN_FLAGS)

# shmkv beside memcached and Redis on this machine (not part of `make test`):
# writes bench/results/<date>.md and .png.  Flags for bench/run.py go through
# BENCH_FLAGS, e.g. BENCH_FLAGS="--duration 2 --workloads abd".
bench: deps-run $(BUILD_REL)/build.ninja
	@./scripts/install-deps.sh $(BENCH_DEPS)
	ninja -C $(BUILD_REL)
	/usr/bin/python3 bench/run.py --build $(BUILD_REL) $(BENCH_FLAGS)

# The protocol parser under libFuzzer for FUZZ_SECONDS (tests/fuzz/), in a
# clang build of its own whose code carries the fuzzer's coverage hooks.
# New interesting inputs go to $(BUILD_FUZZ)/corpus, a crash's input to
# $(BUILD_FUZZ)/artifacts/; the committed seeds in tests/fuzz/corpus are
# read, not written.  To keep new inputs, minimise them into the seeds:
#   $(BUILD_FUZZ)/tests/fuzz/fuzz_protocol -merge=1 tests/fuzz/corpus $(BUILD_FUZZ)/corpus
$(BUILD_FUZZ)/build.ninja:
	CC=clang meson setup $(BUILD_FUZZ) -Db_sanitize=address,undefined \
		-Db_lundef=false -Dc_args=-fsanitize=fuzzer-no-link >/dev/null

fuzz: deps-test $(BUILD_FUZZ)/build.ninja
	ninja -C $(BUILD_FUZZ) tests/fuzz/fuzz_protocol
	mkdir -p $(BUILD_FUZZ)/corpus $(BUILD_FUZZ)/artifacts
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		$(BUILD_FUZZ)/tests/fuzz/fuzz_protocol -max_total_time=$(FUZZ_SECONDS) \
		-max_len=4096 -print_final_stats=1 \
		-artifact_prefix=$(BUILD_FUZZ)/artifacts/ \
		$(BUILD_FUZZ)/corpus tests/fuzz/corpus

# The unit tests (the C ones; not the Python end-to-end and bench tests,
# which drive the server) under valgrind's memcheck: any error or leak
# fails the test.  Servers the client tests start run without valgrind.
MEMCHECK := valgrind --leak-check=full --error-exitcode=1 --quiet
memcheck: build
	@./scripts/install-deps.sh valgrind
	meson test -C $(BUILD) --no-suite e2e --no-suite bench --print-errorlogs \
		--timeout-multiplier 10 --wrapper '$(MEMCHECK)'
	meson test -C $(BUILD) bench_units --print-errorlogs \
		--timeout-multiplier 10 --wrapper '$(MEMCHECK)'

# The same random command streams to memcached and to shmkv, replies
# compared (tests/e2e/difftest.py): SEEDS seeds of OPS commands each;
# divergences are printed with a minimal stream (DIFFTEST_FLAGS="--report
# FILE" writes them to FILE instead).  Not part of `make test`.
SEEDS ?= 1-20
OPS ?= 5000
DIFFTEST_FLAGS ?=
.PHONY: difftest
difftest: build
	/usr/bin/python3 tests/e2e/difftest.py --server $(BUILD)/server/shmkv-server \
		--seeds $(SEEDS) --ops $(OPS) $(DIFFTEST_FLAGS)

clean:
	rm -rf $(BUILD) $(BUILD_SAN) $(BUILD_REL) $(BUILD_FUZZ)
