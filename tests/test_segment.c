/*
 * test_segment.c - tests for client/segment.c on real memory and processes
 *
 * Every test creates a real segment.  The page sizes are checked against
 * /proc/self/smaps by a parser of the test's own, so a bug in the library's
 * parser cannot hide itself.  Attaching is tested from a process that was
 * not forked from the creator: the test re-executes its own binary with
 * --attach-child and hands it the fds over a Unix socket, as the server
 * hands them to client programs.  The huge page test with pages reserved
 * changes vm.nr_hugepages (root only) and always puts it back in teardown.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "segment.h"

#define MB ((size_t)1 << 20)
#define GREETING "greeting"
#define MAILBOX "mailbox"
#define GREETING_LEN 5000u
#define CHILD_WROTE UINT64_C(0x6368696c64212121)

#define assert_has(haystack, needle)                                        \
	do {                                                                \
		if (strstr((haystack), (needle)) == NULL)                   \
			fail_msg("message \"%s\" lacks \"%s\"", (haystack), \
				 (needle));                                 \
	} while (0)

static size_t base_page(void)
{
	return (size_t)sysconf(_SC_PAGESIZE);
}

static unsigned char pattern_byte(size_t i)
{
	return (unsigned char)(i * 31u + 7u);
}

/* smaps_page_kb - KernelPageSize (kB) of the mapping holding addr, or 0. */
static unsigned long smaps_page_kb(const void *addr)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	bool inside = false;
	unsigned long kb = 0;

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		uintptr_t lo, hi;
		char sp;

		if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR "%c", &lo, &hi, &sp) == 3 &&
		    sp == ' ') {
			if (inside)
				break;
			inside = (uintptr_t)addr >= lo && (uintptr_t)addr < hi;
		} else if (inside && sscanf(line, "KernelPageSize: %lu kB", &kb) == 1) {
			break;
		}
	}
	fclose(f);
	return inside ? kb : 0;
}

/* meminfo - a number from /proc/meminfo ("HugePages_Free"), or -1. */
static long meminfo(const char *key)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[256];
	size_t klen = strlen(key);
	long v = -1;

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
			v = strtol(line + klen + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

static long read_long(const char *path)
{
	FILE *f = fopen(path, "r");
	long v = -1;

	if (f == NULL)
		return -1;
	if (fscanf(f, "%ld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

static int write_long(const char *path, long v)
{
	FILE *f = fopen(path, "w");
	int rc = 0;

	if (f == NULL)
		return -errno;
	if (fprintf(f, "%ld\n", v) < 0)
		rc = -EIO;
	if (fclose(f) != 0)
		rc = -errno;
	return rc;
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	assert_non_null(d);
	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return n;
}

static void create_ok(struct segment *seg, size_t data_size, size_t ctl_size,
		      enum segment_huge_pages hp, bool prefault)
{
	struct segment_options opt = {
		.data_size = data_size,
		.ctl_size = ctl_size,
		.huge_pages = hp,
		.prefault = prefault,
		.rundir_dev = 42,
		.rundir_ino = 4242,
	};
	char err[512] = "";
	int rc = segment_create(seg, &opt, err, sizeof(err));

	if (rc != 0)
		fail_msg("segment_create: %d: %s", rc, err);
}

/* Creation writes a complete header and regions round-trip in both parts. */
static void test_create_alloc_find(void **state)
{
	struct segment seg;
	struct segment_header *h;
	enum segment_part part;
	uint64_t doff, coff, off, size;
	unsigned char *p;
	time_t now = time(NULL);
	(void)state;

	create_ok(&seg, MB, 64 * 1024, SEGMENT_HUGE_OFF, false);
	h = segment_header(&seg);
	assert_true(seg.writable);
	assert_int_equal(h->magic, SEGMENT_MAGIC);
	assert_int_equal(h->layout_version, SEGMENT_LAYOUT_VERSION);
	assert_int_equal(h->header_size, sizeof(struct segment_header));
	assert_int_equal(h->creator_pid, getpid());
	assert_int_equal(h->data_size, seg.data_size);
	assert_int_equal(h->ctl_size, seg.ctl_size);
	assert_int_equal(h->rundir_dev, 42);
	assert_int_equal(h->rundir_ino, 4242);
	assert_int_equal(h->dir_count, 0);
	assert_int_equal(h->dir_capacity, SEGMENT_DIR_CAPACITY);
	assert_int_equal(atomic_load(&h->state), SEGMENT_STATE_RUNNING);
	assert_in_range(segment_clock(&seg), (uint64_t)now - 1, (uint64_t)now + 2);
	assert_true(seg.data_size >= MB + segment_overhead());
	assert_int_equal(seg.data_size % base_page(), 0);
	assert_true(seg.ctl_size >= 64 * 1024 + segment_overhead());
	assert_int_equal(seg.ctl_size % base_page(), 0);

	assert_int_equal(segment_alloc(&seg, SEGMENT_DATA, GREETING, 1000, &doff), 0);
	assert_int_equal(segment_alloc(&seg, SEGMENT_CTL, MAILBOX, 300, &coff), 0);
	assert_int_equal(doff % SEGMENT_ALIGN, 0);
	assert_int_equal(coff % SEGMENT_ALIGN, 0);
	assert_true(doff >= sizeof(struct segment_header));
	assert_true(coff >= sizeof(struct segment_ctl_header));
	/* A second region starts aligned, past the first's end. */
	assert_int_equal(segment_alloc(&seg, SEGMENT_DATA, "second", 1, &off), 0);
	assert_int_equal(off % SEGMENT_ALIGN, 0);
	assert_true(off >= doff + 1000);

	p = segment_ptr(&seg, SEGMENT_DATA, doff, 1000);
	assert_non_null(p);
	for (size_t i = 0; i < 1000; i++)
		assert_int_equal(p[i], 0); /* fresh regions are zero */
	memset(p, 0xab, 1000);
	p = segment_ptr(&seg, SEGMENT_CTL, coff, 300);
	assert_non_null(p);
	assert_ptr_equal(p, seg.ctl + coff);
	memset(p, 0xcd, 300);

	assert_int_equal(segment_find(&seg, GREETING, &part, &off, &size), 0);
	assert_int_equal(part, SEGMENT_DATA);
	assert_int_equal(off, doff);
	assert_int_equal(size, 1000);
	assert_int_equal(((unsigned char *)segment_ptr(&seg, part, off, size))[999], 0xab);
	assert_int_equal(segment_find(&seg, MAILBOX, &part, &off, &size), 0);
	assert_int_equal(part, SEGMENT_CTL);
	assert_int_equal(off, coff);
	assert_int_equal(size, 300);
	assert_int_equal(segment_find(&seg, "nope", &part, &off, &size), -ENOENT);

	/* Names are one namespace over both parts. */
	assert_int_equal(segment_alloc(&seg, SEGMENT_CTL, GREETING, 8, &off), -EEXIST);
	assert_int_equal(segment_alloc(&seg, SEGMENT_DATA, "abcdefghijklmnopqrstuvwx", 8, &off),
			 -ENAMETOOLONG);
	assert_int_equal(segment_alloc(&seg, SEGMENT_DATA, "abcdefghijklmnopqrstuvw", 8, &off), 0);
	assert_int_equal(segment_find(&seg, "abcdefghijklmnopqrstuvw", NULL, NULL, NULL), 0);
	assert_int_equal(segment_alloc(&seg, SEGMENT_DATA, "huge", seg.data_size, &off), -ENOSPC);
	assert_int_equal(segment_alloc(&seg, SEGMENT_CTL, "huge", seg.ctl_size, &off), -ENOSPC);
	assert_int_equal(segment_alloc(&seg, SEGMENT_DATA, "", 8, &off), -EINVAL);
	assert_int_equal(segment_alloc(&seg, SEGMENT_DATA, "zero", 0, &off), -EINVAL);

	segment_detach(&seg);
	assert_null(seg.data);
	assert_null(seg.ctl);
	assert_int_equal(seg.data_fd, -1);
	segment_detach(&seg); /* idempotent */
	assert_int_equal(segment_readonly_fd(&seg), -EBADF);
}

/* The overhead promise: regions adding up to the requested size all fit. */
static void test_overhead_promise(void **state)
{
	struct segment seg;
	size_t data = 4 * base_page() - segment_overhead();
	size_t ctl = 2 * base_page() - segment_overhead();
	uint64_t off, free_left;
	char name[16];
	(void)state;

	/* Sizes chosen so no page rounding hides a shortfall. */
	create_ok(&seg, data, ctl, SEGMENT_HUGE_OFF, false);
	assert_int_equal(seg.data_size, 4 * base_page());
	for (unsigned i = 0; i < SEGMENT_DIR_CAPACITY - 1; i++) {
		snprintf(name, sizeof(name), "d%u", i);
		assert_int_equal(segment_alloc(&seg, SEGMENT_DATA, name, 1, &off), 0);
	}
	assert_int_equal(segment_alloc(&seg, SEGMENT_DATA, "last",
				       data - (SEGMENT_DIR_CAPACITY - 1), &off), 0);
	/* The directory is full now. */
	assert_int_equal(segment_alloc(&seg, SEGMENT_CTL, "more", 1, &off), -ENOSPC);
	segment_detach(&seg);

	create_ok(&seg, data, ctl, SEGMENT_HUGE_OFF, false);
	assert_int_equal(seg.ctl_size, 2 * base_page());
	for (unsigned i = 0; i < SEGMENT_DIR_CAPACITY - 1; i++) {
		snprintf(name, sizeof(name), "c%u", i);
		assert_int_equal(segment_alloc(&seg, SEGMENT_CTL, name, 1, &off), 0);
	}
	assert_int_equal(segment_alloc(&seg, SEGMENT_CTL, "last",
				       ctl - (SEGMENT_DIR_CAPACITY - 1), &off), 0);
	segment_detach(&seg);

	/* Filling a part exactly, then one byte more. */
	create_ok(&seg, data, ctl, SEGMENT_HUGE_OFF, false);
	free_left = seg.data_size - segment_header(&seg)->free_offset;
	assert_int_equal(segment_alloc(&seg, SEGMENT_DATA, "too big", free_left + 1, &off),
			 -ENOSPC);
	assert_int_equal(segment_alloc(&seg, SEGMENT_DATA, "all", free_left, &off), 0);
	assert_int_equal(off + free_left, seg.data_size);
	assert_int_equal(segment_alloc(&seg, SEGMENT_DATA, "one more", 1, &off), -ENOSPC);
	segment_detach(&seg);
}

/* segment_ptr and segment_find refuse anything outside the mapped part. */
static void test_bounds(void **state)
{
	struct segment seg;
	struct segment_header *h;
	struct segment_dir_entry *dir;
	uint64_t off;
	uint64_t ds;
	(void)state;

	create_ok(&seg, 64 * 1024, 4096, SEGMENT_HUGE_OFF, false);
	ds = seg.data_size;
	assert_ptr_equal(segment_ptr(&seg, SEGMENT_DATA, 0, ds), seg.data);
	assert_non_null(segment_ptr(&seg, SEGMENT_DATA, ds - 1, 1));
	assert_null(segment_ptr(&seg, SEGMENT_DATA, ds, 1));
	assert_null(segment_ptr(&seg, SEGMENT_DATA, 1, ds));
	assert_null(segment_ptr(&seg, SEGMENT_DATA, UINT64_MAX, 2));
	assert_null(segment_ptr(&seg, SEGMENT_DATA, UINT64_MAX - 10, 20)); /* wraps */
	assert_null(segment_ptr(&seg, SEGMENT_DATA, 64, UINT64_MAX));
	assert_null(segment_ptr(&seg, SEGMENT_DATA, 64, UINT64_MAX - 63)); /* wraps to 0 */
	assert_non_null(segment_ptr(&seg, SEGMENT_CTL, seg.ctl_size - 8, 8));
	assert_null(segment_ptr(&seg, SEGMENT_CTL, seg.ctl_size - 8, 9));
	assert_null(segment_ptr(&seg, (enum segment_part)7, 0, 1));

	/* A directory entry pointing outside its part is refused, not followed. */
	assert_int_equal(segment_alloc(&seg, SEGMENT_DATA, "r", 100, &off), 0);
	h = segment_header(&seg);
	dir = (struct segment_dir_entry *)(seg.data + h->dir_offset);
	dir[0].offset = ds - 50;
	assert_int_equal(segment_find(&seg, "r", NULL, NULL, NULL), -EIO);
	dir[0].offset = off;
	dir[0].size = UINT64_MAX;
	assert_int_equal(segment_find(&seg, "r", NULL, NULL, NULL), -EIO);
	dir[0].size = 100;
	dir[0].part = 9;
	assert_int_equal(segment_find(&seg, "r", NULL, NULL, NULL), -EIO);
	dir[0].part = SEGMENT_DATA;
	assert_int_equal(segment_find(&seg, "r", NULL, NULL, NULL), 0);
	h->dir_count = SEGMENT_DIR_CAPACITY + 1;
	assert_int_equal(segment_find(&seg, "r", NULL, NULL, NULL), -EIO);
	h->dir_count = 1;
	h->dir_offset = ds - 10;
	assert_int_equal(segment_find(&seg, "r", NULL, NULL, NULL), -EIO);
	h->dir_offset = UINT64_MAX - 8;
	assert_int_equal(segment_find(&seg, "r", NULL, NULL, NULL), -EIO);
	segment_detach(&seg);
}

/* huge_pages=off: normal pages, and the size comes from smaps. */
static void test_huge_off(void **state)
{
	struct segment seg;
	size_t ps = 0;
	(void)state;

	create_ok(&seg, MB, 4096, SEGMENT_HUGE_OFF, false);
	assert_false(seg.huge);
	assert_false(seg.huge_fell_back);
	assert_int_equal(seg.page_size, base_page());
	assert_int_equal(smaps_page_kb(seg.data) * 1024, base_page());
	assert_int_equal(segment_header(&seg)->page_size, base_page());
	assert_int_equal(segment_header(&seg)->huge, 0);
	assert_int_equal(segment_mapping_page_size(seg.data + seg.data_size - 1, &ps), 0);
	assert_int_equal(ps, base_page());
	segment_detach(&seg);
}

/*
 * unavailable_huge_size - a data_size needing more default huge pages than
 * are available now, or 0 (and why) if that cannot be arranged cheaply.
 */
static size_t unavailable_huge_size(size_t *hps, const char **why)
{
	long avail, overcommit;

	*hps = segment_default_huge_page_size();
	if (*hps == 0) {
		*why = "the kernel offers no huge pages";
		return 0;
	}
	overcommit = read_long("/proc/sys/vm/nr_overcommit_hugepages");
	if (overcommit != 0) {
		*why = "vm.nr_overcommit_hugepages is set: the kernel may add pages";
		return 0;
	}
	avail = meminfo("HugePages_Free") - meminfo("HugePages_Rsvd");
	if (avail < 0 || avail > 64) {
		*why = "too many huge pages are free to exceed them cheaply";
		return 0;
	}
	return ((size_t)avail + 2) * *hps - segment_overhead();
}

/* try: without enough huge pages, falls back to normal pages and says so. */
static void test_huge_try_falls_back(void **state)
{
	struct segment seg;
	struct segment_options opt = { .ctl_size = 4096, .huge_pages = SEGMENT_HUGE_TRY };
	const char *why = NULL;
	char err[512] = "";
	size_t hps;
	(void)state;

	opt.data_size = unavailable_huge_size(&hps, &why);
	if (opt.data_size == 0) {
		print_message("skipped: %s\n", why);
		skip();
	}
	assert_int_equal(segment_create(&seg, &opt, err, sizeof(err)), 0);
	assert_true(seg.huge_fell_back);
	assert_false(seg.huge);
	assert_int_equal(seg.page_size, base_page());
	assert_int_equal(smaps_page_kb(seg.data) * 1024, base_page());
	assert_int_equal(segment_header(&seg)->page_size, base_page());
	assert_has(err, "using normal pages");
	assert_has(err, "vm.nr_hugepages");
	segment_detach(&seg);
}

/* on: without enough huge pages, fails with a hint and leaves nothing behind. */
static void test_huge_on_fails(void **state)
{
	struct segment seg;
	struct segment_options opt = { .ctl_size = 4096, .huge_pages = SEGMENT_HUGE_ON };
	const char *why = NULL;
	char err[512] = "", want[64];
	size_t hps;
	int fds;
	(void)state;

	opt.data_size = unavailable_huge_size(&hps, &why);
	if (opt.data_size == 0) {
		print_message("skipped: %s\n", why);
		skip();
	}
	fds = count_fds();
	assert_int_equal(segment_create(&seg, &opt, err, sizeof(err)), -ENOMEM);
	assert_has(err, "vm.nr_hugepages");
	assert_has(err, "--huge-pages=try");
	snprintf(want, sizeof(want), "%zu huge pages of %zu MB",
		 (opt.data_size + segment_overhead()) / hps, hps / MB);
	assert_has(err, want);
	assert_null(seg.data);
	assert_null(seg.ctl);
	assert_int_equal(seg.data_fd, -1);
	assert_int_equal(seg.ctl_fd, -1);
	assert_int_equal(count_fds(), fds);
	segment_detach(&seg);
}

/* on/try with a page size the kernel does not offer: the message lists them. */
static void test_huge_size_not_offered(void **state)
{
	struct segment seg;
	struct segment_options opt = {
		.data_size = MB, .ctl_size = 4096, .huge_pages = SEGMENT_HUGE_ON,
		.huge_page_size = 4 * MB,
	};
	char err[512] = "";
	size_t hps = segment_default_huge_page_size();
	(void)state;

	if (hps == 0 || hps == 4 * MB) {
		print_message("skipped: no huge pages, or 4 MB is offered\n");
		skip();
	}
	assert_int_equal(segment_create(&seg, &opt, err, sizeof(err)), -EINVAL);
	assert_has(err, "4 MB is not offered");
	assert_has(err, hps == 2 * MB ? "2 MB" : "offers: ");

	opt.huge_pages = SEGMENT_HUGE_TRY;
	err[0] = '\0';
	assert_int_equal(segment_create(&seg, &opt, err, sizeof(err)), 0);
	assert_true(seg.huge_fell_back);
	assert_has(err, "4 MB is not offered");
	segment_detach(&seg);

	/* A size that overflows is refused, not wrapped. */
	opt.huge_pages = SEGMENT_HUGE_OFF;
	opt.data_size = SIZE_MAX - 10;
	assert_int_equal(segment_create(&seg, &opt, err, sizeof(err)), -EOVERFLOW);
	assert_null(seg.data);
}

/* State of the tests that reserve huge pages. */
struct huge_fixture {
	long old_nr;
	bool changed;
	struct segment seg;
	struct segment seg2;
	const char *skip_why;
};

#define NR_HUGEPAGES "/proc/sys/vm/nr_hugepages"
#define HUGE_TEST_PAGES 4

static int huge_setup(void **state)
{
	struct huge_fixture *fx = calloc(1, sizeof(*fx));

	if (fx == NULL)
		return -1;
	fx->seg.data_fd = fx->seg.ctl_fd = -1;
	fx->seg2.data_fd = fx->seg2.ctl_fd = -1;
	*state = fx;
	if (geteuid() != 0) {
		fx->skip_why = "not root: cannot reserve huge pages in vm.nr_hugepages";
		return 0;
	}
	if (segment_default_huge_page_size() != 2 * MB) {
		fx->skip_why = "the default huge page size is not 2 MB";
		return 0;
	}
	fx->old_nr = read_long(NR_HUGEPAGES);
	if (fx->old_nr < 0) {
		fx->skip_why = "cannot read " NR_HUGEPAGES;
		return 0;
	}
	if (write_long(NR_HUGEPAGES, fx->old_nr + 2 * HUGE_TEST_PAGES) < 0) {
		fx->skip_why = "cannot write " NR_HUGEPAGES;
		return 0;
	}
	fx->changed = true;
	if (meminfo("HugePages_Free") - meminfo("HugePages_Rsvd") < HUGE_TEST_PAGES)
		fx->skip_why = "the kernel could not allocate the huge pages asked for "
			       "(memory too fragmented?)";
	return 0;
}

/* huge_teardown - detach first (pages in use cannot be released), then restore. */
static int huge_teardown(void **state)
{
	struct huge_fixture *fx = *state;
	int rc = 0;

	segment_detach(&fx->seg2);
	segment_detach(&fx->seg);
	if (fx->changed) {
		if (write_long(NR_HUGEPAGES, fx->old_nr) < 0 ||
		    read_long(NR_HUGEPAGES) != fx->old_nr) {
			print_error("could not restore vm.nr_hugepages to %ld\n", fx->old_nr);
			rc = -1;
		}
	}
	free(fx);
	return rc;
}

/* on, with pages reserved: hugetlb pages, all faulted in at creation. */
static void test_huge_on_reserved(void **state)
{
	struct huge_fixture *fx = *state;
	struct segment_options opt = {
		.data_size = HUGE_TEST_PAGES * 2 * MB - segment_overhead(),
		.ctl_size = 4096, .huge_pages = SEGMENT_HUGE_ON,
	};
	char err[512] = "";
	long free_before;
	uint64_t off;
	int rc;

	if (fx->skip_why != NULL) {
		print_message("skipped: %s\n", fx->skip_why);
		skip();
	}
	free_before = meminfo("HugePages_Free");
	rc = segment_create(&fx->seg, &opt, err, sizeof(err));
	if (rc != 0)
		fail_msg("segment_create: %d: %s", rc, err);
	assert_true(fx->seg.huge);
	assert_false(fx->seg.huge_fell_back);
	assert_int_equal(fx->seg.data_size, HUGE_TEST_PAGES * 2 * MB);
	assert_int_equal(fx->seg.page_size, 2 * MB);
	assert_int_equal(smaps_page_kb(fx->seg.data), 2048);
	assert_int_equal(segment_header(&fx->seg)->huge, 1);
	assert_int_equal(segment_header(&fx->seg)->page_size, 2 * MB);
	/* Populated at creation, not reserved for later: no SIGBUS to come. */
	assert_int_equal(free_before - meminfo("HugePages_Free"), HUGE_TEST_PAGES);

	assert_int_equal(segment_alloc(&fx->seg, SEGMENT_DATA, "big", opt.data_size, &off), 0);
	memset(segment_ptr(&fx->seg, SEGMENT_DATA, off, opt.data_size), 0x5a, opt.data_size);

	/* A reader of a read-only fd sees the same huge pages. */
	rc = segment_attach(&fx->seg2, segment_readonly_fd(&fx->seg), dup(fx->seg.ctl_fd),
			    err, sizeof(err));
	if (rc != 0)
		fail_msg("segment_attach: %d: %s", rc, err);
	assert_true(fx->seg2.huge);
	assert_int_equal(fx->seg2.page_size, 2 * MB);
	assert_int_equal(((unsigned char *)fx->seg2.data)[off + opt.data_size - 1], 0x5a);
}

/* try, with pages reserved: takes them. */
static void test_huge_try_reserved(void **state)
{
	struct huge_fixture *fx = *state;
	struct segment_options opt = {
		.data_size = HUGE_TEST_PAGES * 2 * MB - segment_overhead(),
		.ctl_size = 4096, .huge_pages = SEGMENT_HUGE_TRY,
	};
	char err[512] = "";
	int rc;

	if (fx->skip_why != NULL) {
		print_message("skipped: %s\n", fx->skip_why);
		skip();
	}
	rc = segment_create(&fx->seg, &opt, err, sizeof(err));
	if (rc != 0)
		fail_msg("segment_create: %d: %s", rc, err);
	assert_true(fx->seg.huge);
	assert_false(fx->seg.huge_fell_back);
	assert_int_equal(smaps_page_kb(fx->seg.data), 2048);
	assert_int_equal(fx->seg.page_size, 2 * MB);
}

/* prefault: every page is resident after creation; without it, not. */
static void test_prefault(void **state)
{
	struct segment seg;
	size_t pages;
	unsigned char *vec;
	size_t resident = 0;
	(void)state;

	create_ok(&seg, 4 * MB, 4096, SEGMENT_HUGE_OFF, true);
	assert_true(seg.create_seconds > 0);
	pages = seg.data_size / base_page();
	vec = calloc(pages, 1);
	assert_non_null(vec);
	assert_int_equal(mincore(seg.data, seg.data_size, vec), 0);
	for (size_t i = 0; i < pages; i++)
		resident += vec[i] & 1;
	assert_int_equal(resident, pages);
	segment_detach(&seg);

	create_ok(&seg, 4 * MB, 4096, SEGMENT_HUGE_OFF, false);
	assert_int_equal(mincore(seg.data, seg.data_size, vec), 0);
	assert_int_equal(vec[pages - 1] & 1, 0);
	free(vec);
	segment_detach(&seg);
}

/* expect_attach_fails - attach must fail with want, say msg1 and msg2, close the fds. */
static void expect_attach_fails(int data_fd, int ctl_fd, int want,
				const char *msg1, const char *msg2)
{
	struct segment att;
	char err[512] = "";

	assert_int_equal(segment_attach(&att, data_fd, ctl_fd, err, sizeof(err)), want);
	if (msg1 != NULL)
		assert_has(err, msg1);
	if (msg2 != NULL)
		assert_has(err, msg2);
	assert_null(att.data);
	assert_null(att.ctl);
	/* It owned the fds: they are closed now. */
	if (data_fd >= 0)
		assert_int_equal(fcntl(data_fd, F_GETFD), -1);
	if (ctl_fd >= 0)
		assert_int_equal(fcntl(ctl_fd, F_GETFD), -1);
}

/* memfd_copy - an unsealed memfd of size bytes starting with len bytes of src. */
static int memfd_copy(size_t size, const void *src, size_t len)
{
	int fd = memfd_create("test-copy", MFD_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	assert_int_equal(pwrite(fd, src, len, 0), (ssize_t)len);
	return fd;
}

/* attach refuses what is not a segment of our layout, of the size it says. */
static void test_attach_refuses(void **state)
{
	struct segment seg;
	struct segment_header *h;
	char sizes[64];
	int fds;
	(void)state;

	create_ok(&seg, 64 * 1024, 4096, SEGMENT_HUGE_OFF, false);
	h = segment_header(&seg);
	fds = count_fds();

	h->magic ^= 1;
	expect_attach_fails(dup(seg.data_fd), dup(seg.ctl_fd), -EINVAL,
			    "not a shmkv segment", NULL);
	h->magic ^= 1;

	h->layout_version = 99;
	expect_attach_fails(dup(seg.data_fd), dup(seg.ctl_fd), -EPROTO,
			    "layout version 99", "layout version 1");
	h->layout_version = SEGMENT_LAYOUT_VERSION;

	h->header_size = 8;
	expect_attach_fails(dup(seg.data_fd), dup(seg.ctl_fd), -EPROTO, "header", NULL);
	h->header_size = sizeof(*h);

	/* The header says one size, the memfd has another. */
	snprintf(sizes, sizeof(sizes), "%zu", seg.data_size + 4096);
	expect_attach_fails(memfd_copy(seg.data_size + 4096, seg.data, 4096),
			    dup(seg.ctl_fd), -EINVAL, sizes, NULL);
	expect_attach_fails(dup(seg.data_fd),
			    memfd_copy(seg.ctl_size * 2, seg.ctl, 64), -EINVAL, NULL, NULL);
	/* The right size, but a control part anyone could shrink under us. */
	expect_attach_fails(dup(seg.data_fd), memfd_copy(seg.ctl_size, seg.ctl, 64),
			    -EPERM, "control part is not sealed", NULL);
	expect_attach_fails(memfd_copy(seg.data_size, seg.data, 4096), dup(seg.ctl_fd),
			    -EPERM, "data part is not sealed", NULL);
	/* Too small to hold a header at all, and no fds at all. */
	expect_attach_fails(memfd_copy(16, seg.data, 16), dup(seg.ctl_fd), -EINVAL,
			    "too small", NULL);
	expect_attach_fails(-1, -1, -EBADF, NULL, NULL);

	/* A directory outside the part. */
	h->dir_offset = seg.data_size - 8;
	expect_attach_fails(dup(seg.data_fd), dup(seg.ctl_fd), -EINVAL, "directory", NULL);
	h->dir_offset = sizeof(*h);

	assert_int_equal(count_fds(), fds);
	segment_detach(&seg);
}

/* attach in this process: read-only data, shared control, the same memory. */
static void test_attach_readonly(void **state)
{
	struct segment seg, att;
	char err[512] = "";
	uint64_t off, off2;
	int rc, fd;
	void *p;
	(void)state;

	create_ok(&seg, 64 * 1024, 4096, SEGMENT_HUGE_OFF, false);
	assert_int_equal(segment_alloc(&seg, SEGMENT_DATA, GREETING, 100, &off), 0);
	fd = segment_readonly_fd(&seg);
	assert_true(fd >= 0);
	assert_int_equal(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDONLY);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	rc = segment_attach(&att, fd, dup(seg.ctl_fd), err, sizeof(err));
	if (rc != 0)
		fail_msg("segment_attach: %d: %s", rc, err);
	assert_false(att.writable);
	assert_int_equal(att.data_size, seg.data_size);
	assert_int_equal(att.page_size, seg.page_size);
	assert_int_equal(segment_alloc(&att, SEGMENT_CTL, "x", 8, &off2), -EROFS);
	assert_int_equal(segment_find(&att, GREETING, NULL, &off2, NULL), 0);
	assert_int_equal(off2, off);

	seg.data[off] = 77;
	assert_int_equal(att.data[off], 77);
	segment_set_clock(&seg, 12345);
	assert_int_equal(segment_clock(&att), 12345);
	att.ctl[100] = 5;
	assert_int_equal(seg.ctl[100], 5);

	/* The kernel, not convention, keeps the data part read-only. */
	p = mmap(NULL, att.data_size, PROT_READ | PROT_WRITE, MAP_SHARED, att.data_fd, 0);
	assert_ptr_equal(p, MAP_FAILED);
	assert_int_equal(errno, EACCES);
	assert_int_equal(mprotect(att.data, att.data_size, PROT_READ | PROT_WRITE), -1);
	assert_int_equal(errno, EACCES);
	/* Nobody can change the parts' sizes under the others. */
	assert_int_equal(ftruncate(att.ctl_fd, 0), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(ftruncate(seg.data_fd, 0), -1);

	segment_detach(&att);
	segment_detach(&seg);

	/* A zeroed struct is detached: fd 0 is not its to close. */
	memset(&att, 0, sizeof(att));
	rc = fcntl(0, F_GETFD);
	segment_detach(&att);
	assert_int_equal(fcntl(0, F_GETFD), rc);
}

/* The child's report: a step number as exit code, a sentence on the socket. */
#define CHILD_FAIL(step, ...)                                   \
	do {                                                    \
		dprintf(sock, __VA_ARGS__);                     \
		return (step);                                  \
	} while (0)

/*
 * store_faults - fork a process that stores into addr with SIGSEGV at its
 * default action; true if it died of SIGSEGV.  The action is set by the raw
 * system call so that ASan's interception of sigaction cannot keep its own
 * handler in place (an all-zero kernel sigaction is SIG_DFL everywhere).
 */
static bool store_faults(unsigned char *addr)
{
	int status;
	pid_t pid = fork();

	if (pid == 0) {
		unsigned char ksa[64] = { 0 };
		struct rlimit no_core = { 0, 0 };

		setrlimit(RLIMIT_CORE, &no_core);
		prctl(PR_SET_DUMPABLE, 0, 0, 0, 0); /* no core dump helper either */
		syscall(SYS_rt_sigaction, SIGSEGV, ksa, NULL, (size_t)8);
		*(volatile unsigned char *)addr = 1;
		_exit(0);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return false;
	return WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV;
}

/* attach_child - the other process: receive the fds, attach, check, report. */
static int attach_child(int sock)
{
	struct segment seg;
	char err[512] = "", byte;
	char cbuf[CMSG_SPACE(2 * sizeof(int))];
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *cm;
	enum segment_part part;
	uint64_t off, size;
	unsigned char *p;
	int fds[2], rc;
	void *w;

	alarm(30);
	if (recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) != 1)
		CHILD_FAIL(10, "recvmsg: %s", strerror(errno));
	cm = CMSG_FIRSTHDR(&msg);
	if (cm == NULL || cm->cmsg_type != SCM_RIGHTS ||
	    cm->cmsg_len != CMSG_LEN(2 * sizeof(int)))
		CHILD_FAIL(11, "no two fds received");
	memcpy(fds, CMSG_DATA(cm), sizeof(fds));
	if ((fcntl(fds[0], F_GETFL) & O_ACCMODE) != O_RDONLY)
		CHILD_FAIL(12, "the data fd received is not read-only");

	rc = segment_attach(&seg, fds[0], fds[1], err, sizeof(err));
	if (rc != 0)
		CHILD_FAIL(13, "segment_attach: %d: %s", rc, err);
	if (seg.writable)
		CHILD_FAIL(14, "attached segment claims to be writable");
	if (segment_find(&seg, GREETING, &part, &off, &size) != 0 ||
	    part != SEGMENT_DATA || size != GREETING_LEN)
		CHILD_FAIL(15, "region " GREETING " not found as created");
	p = segment_ptr(&seg, part, off, size);
	for (size_t i = 0; p != NULL && i < size; i++)
		if (p[i] != pattern_byte(i))
			CHILD_FAIL(16, "byte %zu is %u, not %u", i, p[i], pattern_byte(i));
	if (segment_find(&seg, MAILBOX, &part, &off, &size) != 0 || part != SEGMENT_CTL ||
	    size < sizeof(uint64_t))
		CHILD_FAIL(17, "region " MAILBOX " not found as created");
	memcpy(segment_ptr(&seg, part, off, sizeof(uint64_t)), &(uint64_t){ CHILD_WROTE },
	       sizeof(uint64_t));

	w = mmap(NULL, seg.data_size, PROT_READ | PROT_WRITE, MAP_SHARED, seg.data_fd, 0);
	if (w != MAP_FAILED || errno != EACCES)
		CHILD_FAIL(18, "writable mmap of the data fd: %s", strerror(errno));
	if (mprotect(seg.data, seg.data_size, PROT_READ | PROT_WRITE) != -1 || errno != EACCES)
		CHILD_FAIL(19, "mprotect to writable: %s", strerror(errno));
	if (!store_faults(seg.data + seg.data_size - 1))
		CHILD_FAIL(20, "a store into the read-only data part did not fault");
	if (seg.data[seg.data_size - 1] != 0)
		CHILD_FAIL(21, "the faulting store reached the data part");

	segment_detach(&seg);
	dprintf(sock, "ok");
	return 0;
}

/* Attach from a process that shares nothing with the creator but the fds. */
static void test_attach_other_process(void **state)
{
	struct segment seg;
	uint64_t doff, coff;
	unsigned char *p;
	int sv[2], ro, status;
	char arg[16], report[512] = "";
	char cbuf[CMSG_SPACE(2 * sizeof(int))];
	char byte = 'x';
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *cm;
	ssize_t n;
	pid_t pid;
	(void)state;

	create_ok(&seg, MB, 4096, SEGMENT_HUGE_OFF, false);
	assert_int_equal(segment_alloc(&seg, SEGMENT_DATA, GREETING, GREETING_LEN, &doff), 0);
	assert_int_equal(segment_alloc(&seg, SEGMENT_CTL, MAILBOX, 64, &coff), 0);
	p = segment_ptr(&seg, SEGMENT_DATA, doff, GREETING_LEN);
	for (size_t i = 0; i < GREETING_LEN; i++)
		p[i] = pattern_byte(i);
	ro = segment_readonly_fd(&seg);
	assert_true(ro >= 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* Only the socket crosses exec: every segment fd is CLOEXEC. */
		char *argv[] = { (char *)"test_segment", (char *)"--attach-child", arg, NULL };

		fcntl(sv[1], F_SETFD, 0);
		snprintf(arg, sizeof(arg), "%d", sv[1]);
		execv("/proc/self/exe", argv);
		_exit(127);
	}
	close(sv[1]);

	cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(2 * sizeof(int));
	memcpy(CMSG_DATA(cm), (int[2]){ ro, seg.ctl_fd }, 2 * sizeof(int));
	n = sendmsg(sv[0], &msg, MSG_NOSIGNAL);
	close(ro);
	n = n == 1 ? read(sv[0], report, sizeof(report) - 1) : -1;
	close(sv[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("child failed (status 0x%x): %s", status, report);
	assert_true(n > 0);
	assert_string_equal(report, "ok");
	/* The child's write into the control part is ours to see. */
	assert_int_equal(*(uint64_t *)segment_ptr(&seg, SEGMENT_CTL, coff, 8), CHILD_WROTE);
	segment_detach(&seg);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_alloc_find),
		cmocka_unit_test(test_overhead_promise),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_huge_off),
		cmocka_unit_test(test_huge_try_falls_back),
		cmocka_unit_test(test_huge_on_fails),
		cmocka_unit_test(test_huge_size_not_offered),
		cmocka_unit_test_setup_teardown(test_huge_on_reserved, huge_setup,
						huge_teardown),
		cmocka_unit_test_setup_teardown(test_huge_try_reserved, huge_setup,
						huge_teardown),
		cmocka_unit_test(test_prefault),
		cmocka_unit_test(test_attach_refuses),
		cmocka_unit_test(test_attach_readonly),
		cmocka_unit_test(test_attach_other_process),
	};

	if (argc == 3 && strcmp(argv[1], "--attach-child") == 0)
		return attach_child(atoi(argv[2]));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
