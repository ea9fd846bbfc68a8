/*
 * test_segment.c - tests for client/segment.c and client/hugepages.c
 *
 * Every test creates a real segment: regions round-trip in both parts, the
 * overhead SEGMENT_OVERHEAD promises is enough, every offset is checked,
 * huge_pages off / try / on behave as documented (with and without pages
 * reserved) and their failures carry the hint an operator needs, and
 * prefault makes every page resident.  The page sizes are checked against
 * /proc/self/smaps by a parser of the test's own, so a bug in the library's
 * parser cannot hide itself.  The huge page tests with pages reserved
 * change vm.nr_hugepages (root only) and always put it back in teardown.
 * Attaching to a segment is test_segment_attach.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "hugepages.h"
#include "segment_fixture.h"
#include "segment_internal.h" /* SEGMENT_OVERHEAD, the promise tested */

static size_t base_page(void)
{
	return (size_t)sysconf(_SC_PAGESIZE);
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

		if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR "%c", &lo, &hi, &sp) ==
			    3 &&
		    sp == ' ') {
			if (inside)
				break;
			inside = (uintptr_t)addr >= lo && (uintptr_t)addr < hi;
		} else if (inside &&
			   sscanf(line, "KernelPageSize: %lu kB", &kb) == 1) {
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

/* Creation writes a complete header and regions round-trip in both parts. */
/* assert_fresh_header - a new segment's header says what was asked for. */
static void assert_fresh_header(struct segment *seg, time_t now)
{
	struct segment_header *h = segment_header(seg);

	assert_true(seg->writable);
	assert_int_equal(h->magic, SEGMENT_MAGIC);
	assert_int_equal(h->layout_version, SEGMENT_LAYOUT_VERSION);
	assert_int_equal(h->header_size, sizeof(struct segment_header));
	assert_int_equal(h->creator_pid, getpid());
	assert_int_equal(h->data_size, seg->data_size);
	assert_int_equal(h->ctl_size, seg->ctl_size);
	assert_int_equal(h->rundir_dev, 42);
	assert_int_equal(h->rundir_ino, 4242);
	assert_int_equal(h->dir_count, 0);
	assert_int_equal(h->dir_capacity, SEGMENT_DIR_CAPACITY);
	assert_int_equal(atomic_load(&h->state), SEGMENT_STATE_RUNNING);
	assert_in_range(segment_clock(seg), (uint64_t)now - 1, (uint64_t)now + 2);
	assert_true(seg->data_size >= MB + SEGMENT_OVERHEAD);
	assert_int_equal(seg->data_size % base_page(), 0);
	assert_true(seg->ctl_size >= 64 * 1024 + SEGMENT_OVERHEAD);
	assert_int_equal(seg->ctl_size % base_page(), 0);
}

/* alloc_two_regions - one region in each part, both aligned and zeroed. */
static void alloc_two_regions(struct segment *seg, uint64_t *doff_out,
			      uint64_t *coff_out)
{
	uint64_t doff, coff, off;

	assert_int_equal(segment_alloc(seg, SEGMENT_DATA, GREETING, 1000, &doff),
			 0);
	assert_int_equal(segment_alloc(seg, SEGMENT_CTL, MAILBOX, 300, &coff), 0);
	assert_int_equal(doff % SEGMENT_ALIGN, 0);
	assert_int_equal(coff % SEGMENT_ALIGN, 0);
	assert_true(doff >= sizeof(struct segment_header));
	assert_true(coff >= sizeof(struct segment_ctl_header));
	/* A second region starts aligned, past the first's end. */
	assert_int_equal(segment_alloc(seg, SEGMENT_DATA, "second", 1, &off), 0);
	assert_int_equal(off % SEGMENT_ALIGN, 0);
	assert_true(off >= doff + 1000);
	*doff_out = doff;
	*coff_out = coff;
}

/* fill_and_find - what is written in a region is found again by name. */
static void fill_and_find(struct segment *seg, uint64_t doff, uint64_t coff)
{
	enum segment_part part;
	uint64_t off, size;
	unsigned char *p;

	p = segment_ptr(seg, SEGMENT_DATA, doff, 1000);
	assert_non_null(p);
	for (size_t i = 0; i < 1000; i++)
		assert_int_equal(p[i], 0); /* fresh regions are zero */
	memset(p, 0xab, 1000);
	p = segment_ptr(seg, SEGMENT_CTL, coff, 300);
	assert_non_null(p);
	assert_ptr_equal(p, seg->ctl + coff);
	memset(p, 0xcd, 300);

	assert_int_equal(segment_find(seg, GREETING, &part, &off, &size), 0);
	assert_int_equal(part, SEGMENT_DATA);
	assert_int_equal(off, doff);
	assert_int_equal(size, 1000);
	assert_int_equal(((unsigned char *)segment_ptr(seg, part, off, size))[999],
			 0xab);
	assert_int_equal(segment_find(seg, MAILBOX, &part, &off, &size), 0);
	assert_int_equal(part, SEGMENT_CTL);
	assert_int_equal(off, coff);
	assert_int_equal(size, 300);
	assert_int_equal(segment_find(seg, "nope", &part, &off, &size), -ENOENT);
}

/* assert_name_rules - names, sizes and space of new regions are checked. */
static void assert_name_rules(struct segment *seg)
{
	uint64_t off;

	/* Names are one namespace over both parts. */
	assert_int_equal(segment_alloc(seg, SEGMENT_CTL, GREETING, 8, &off),
			 -EEXIST);
	assert_int_equal(segment_alloc(seg, SEGMENT_DATA,
				       "abcdefghijklmnopqrstuvwx", 8, &off),
			 -ENAMETOOLONG);
	assert_int_equal(segment_alloc(seg, SEGMENT_DATA,
				       "abcdefghijklmnopqrstuvw", 8, &off),
			 0);
	assert_int_equal(segment_find(seg, "abcdefghijklmnopqrstuvw", NULL,
				      NULL, NULL),
			 0);
	assert_int_equal(segment_alloc(seg, SEGMENT_DATA, "huge",
				       seg->data_size, &off),
			 -ENOSPC);
	assert_int_equal(segment_alloc(seg, SEGMENT_CTL, "huge", seg->ctl_size,
				       &off),
			 -ENOSPC);
	assert_int_equal(segment_alloc(seg, SEGMENT_DATA, "", 8, &off), -EINVAL);
	assert_int_equal(segment_alloc(seg, SEGMENT_DATA, "zero", 0, &off),
			 -EINVAL);
}

static void test_create_alloc_find(void **state)
{
	struct segment seg;
	uint64_t doff, coff;
	time_t now = time(NULL);
	(void)state;

	create_ok(&seg, MB, 64 * 1024, SEGMENT_HUGE_OFF, false);
	assert_fresh_header(&seg, now);
	alloc_two_regions(&seg, &doff, &coff);
	fill_and_find(&seg, doff, coff);
	assert_name_rules(&seg);

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
	size_t data = 4 * base_page() - SEGMENT_OVERHEAD;
	size_t ctl = 2 * base_page() - SEGMENT_OVERHEAD;
	uint64_t off, free_left;
	char name[16];
	(void)state;

	/* Sizes chosen so no page rounding hides a shortfall. */
	create_ok(&seg, data, ctl, SEGMENT_HUGE_OFF, false);
	assert_int_equal(seg.data_size, 4 * base_page());
	for (unsigned i = 0; i < SEGMENT_DIR_CAPACITY - 1; i++) {
		snprintf(name, sizeof(name), "d%u", i);
		assert_int_equal(segment_alloc(&seg, SEGMENT_DATA, name, 1, &off),
				 0);
	}
	assert_int_equal(segment_alloc(&seg, SEGMENT_DATA, "last",
				       data - (SEGMENT_DIR_CAPACITY - 1), &off),
			 0);
	/* The directory is full now. */
	assert_int_equal(segment_alloc(&seg, SEGMENT_CTL, "more", 1, &off),
			 -ENOSPC);
	segment_detach(&seg);

	create_ok(&seg, data, ctl, SEGMENT_HUGE_OFF, false);
	assert_int_equal(seg.ctl_size, 2 * base_page());
	for (unsigned i = 0; i < SEGMENT_DIR_CAPACITY - 1; i++) {
		snprintf(name, sizeof(name), "c%u", i);
		assert_int_equal(segment_alloc(&seg, SEGMENT_CTL, name, 1, &off),
				 0);
	}
	assert_int_equal(segment_alloc(&seg, SEGMENT_CTL, "last",
				       ctl - (SEGMENT_DIR_CAPACITY - 1), &off),
			 0);
	segment_detach(&seg);

	/* Filling a part exactly, then one byte more. */
	create_ok(&seg, data, ctl, SEGMENT_HUGE_OFF, false);
	free_left = seg.data_size - segment_header(&seg)->free_offset;
	assert_int_equal(segment_alloc(&seg, SEGMENT_DATA, "too big",
				       free_left + 1, &off),
			 -ENOSPC);
	assert_int_equal(segment_alloc(&seg, SEGMENT_DATA, "all", free_left, &off),
			 0);
	assert_int_equal(off + free_left, seg.data_size);
	assert_int_equal(segment_alloc(&seg, SEGMENT_DATA, "one more", 1, &off),
			 -ENOSPC);
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
	assert_null(segment_ptr(&seg, SEGMENT_DATA, 64,
				UINT64_MAX - 63)); /* wraps to 0 */
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
	assert_int_equal(hugepages_mapping_page_size(seg.data + seg.data_size - 1,
						     &ps),
			 0);
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

	*hps = hugepages_default_size();
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
	return ((size_t)avail + 2) * *hps - SEGMENT_OVERHEAD;
}

/* try: without enough huge pages, falls back to normal pages and says so. */
static void test_huge_try_falls_back(void **state)
{
	struct segment seg;
	struct segment_options opt = { .ctl_size = 4096,
				       .huge_pages = SEGMENT_HUGE_TRY };
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
	struct segment_options opt = { .ctl_size = 4096,
				       .huge_pages = SEGMENT_HUGE_ON };
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
		 (opt.data_size + SEGMENT_OVERHEAD) / hps, hps / MB);
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
		.data_size = MB,
		.ctl_size = 4096,
		.huge_pages = SEGMENT_HUGE_ON,
		.huge_page_size = 4 * MB,
	};
	char err[512] = "";
	size_t hps = hugepages_default_size();
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
	assert_int_equal(segment_create(&seg, &opt, err, sizeof(err)),
			 -EOVERFLOW);
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
		fx->skip_why =
			"not root: cannot reserve huge pages in vm.nr_hugepages";
		return 0;
	}
	if (hugepages_default_size() != 2 * MB) {
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
	if (meminfo("HugePages_Free") - meminfo("HugePages_Rsvd") <
	    HUGE_TEST_PAGES)
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
			print_error("could not restore vm.nr_hugepages to %ld\n",
				    fx->old_nr);
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
		.data_size = HUGE_TEST_PAGES * 2 * MB - SEGMENT_OVERHEAD,
		.ctl_size = 4096,
		.huge_pages = SEGMENT_HUGE_ON,
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
	assert_int_equal(free_before - meminfo("HugePages_Free"),
			 HUGE_TEST_PAGES);

	assert_int_equal(segment_alloc(&fx->seg, SEGMENT_DATA, "big",
				       opt.data_size, &off),
			 0);
	memset(segment_ptr(&fx->seg, SEGMENT_DATA, off, opt.data_size), 0x5a,
	       opt.data_size);

	/* A reader of a read-only fd sees the same huge pages. */
	rc = segment_attach(&fx->seg2, segment_readonly_fd(&fx->seg),
			    dup(fx->seg.ctl_fd), err, sizeof(err));
	if (rc != 0)
		fail_msg("segment_attach: %d: %s", rc, err);
	assert_true(fx->seg2.huge);
	assert_int_equal(fx->seg2.page_size, 2 * MB);
	assert_int_equal(((unsigned char *)fx->seg2.data)[off + opt.data_size - 1],
			 0x5a);
}

/* try, with pages reserved: takes them. */
static void test_huge_try_reserved(void **state)
{
	struct huge_fixture *fx = *state;
	struct segment_options opt = {
		.data_size = HUGE_TEST_PAGES * 2 * MB - SEGMENT_OVERHEAD,
		.ctl_size = 4096,
		.huge_pages = SEGMENT_HUGE_TRY,
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_alloc_find),
		cmocka_unit_test(test_overhead_promise),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_huge_off),
		cmocka_unit_test(test_huge_try_falls_back),
		cmocka_unit_test(test_huge_on_fails),
		cmocka_unit_test(test_huge_size_not_offered),
		cmocka_unit_test_setup_teardown(test_huge_on_reserved,
						huge_setup, huge_teardown),
		cmocka_unit_test_setup_teardown(test_huge_try_reserved,
						huge_setup, huge_teardown),
		cmocka_unit_test(test_prefault),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
