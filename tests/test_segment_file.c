/*
 * test_segment_file.c - a segment in files: create, mark clean, adopt
 *
 * Tests client/segment_file.c and the adoption half of client/segment_map.c
 * on real files in a fresh directory under /dev/shm (tmpfs): what a server
 * writes is still there for the next one to adopt, the clean mark says how
 * the last one stopped, a file that is not a whole segment is refused, and
 * a client program can attach to a file-backed segment read-only.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "segment_fixture.h"

struct files {
	char dir[64];
	char data[96];
	char ctl[96];
};

static int setup(void **state)
{
	static struct files f;

	snprintf(f.dir, sizeof(f.dir), "/dev/shm/shmkv-test-XXXXXX");
	if (mkdtemp(f.dir) == NULL)
		return -1;
	snprintf(f.data, sizeof(f.data), "%s/cache", f.dir);
	snprintf(f.ctl, sizeof(f.ctl), "%s/cache.ctl", f.dir);
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct files *f = *state;

	unlink(f->data);
	unlink(f->ctl);
	rmdir(f->dir);
	return 0;
}

static int open_rw(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

	assert_true(fd >= 0);
	return fd;
}

/* create_in - a segment of data_size + 64 KiB of control in f's files. */
static void create_in(const struct files *f, struct segment *seg,
		      enum segment_huge_pages hp, int expect)
{
	struct segment_options opt = {
		.data_size = 4 * MB,
		.ctl_size = 64 * 1024,
		.huge_pages = hp,
		.in_files = true,
		.file_data_fd = open_rw(f->data),
		.file_ctl_fd = open_rw(f->ctl),
		.settings = { .memory = 4 * MB, .partitions = 8, .port = 4242 },
	};
	char err[512];
	int rc = segment_create(seg, &opt, err, sizeof(err));

	if (rc != expect)
		fail_msg("segment_create: %d, wanted %d: %s", rc, expect, err);
	if (rc < 0)
		assert_has(err, "hugetlbfs");
}

static int adopt(const struct files *f, struct segment *seg, char *err,
		 size_t errlen)
{
	return segment_adopt(seg, open_rw(f->data), open_rw(f->ctl), err, errlen);
}

static void test_what_one_server_writes_the_next_adopts(void **state)
{
	const struct files *f = *state;
	struct segment seg;
	uint64_t off = 0, off2 = 0;
	char err[512];

	create_in(f, &seg, SEGMENT_HUGE_OFF, 0);
	assert_int_equal(segment_header(&seg)->backing, SEGMENT_BACKING_FILE);
	assert_int_equal(segment_alloc(&seg, SEGMENT_DATA, GREETING, 100, &off),
			 0);
	memcpy(segment_ptr(&seg, SEGMENT_DATA, off, 6), "hello", 6);
	segment_mark_clean(&seg);
	segment_detach(&seg);

	assert_int_equal(adopt(f, &seg, err, sizeof(err)), 0);
	assert_true(seg.adopted);
	assert_true(seg.was_clean);
	assert_true(seg.writable);
	assert_int_equal(segment_header(&seg)->settings.port, 4242);
	assert_int_equal(segment_header(&seg)->state, SEGMENT_STATE_SHUTDOWN);
	assert_int_equal(segment_find(&seg, GREETING, NULL, &off2, NULL), 0);
	assert_int_equal(off2, off);
	assert_string_equal((char *)segment_ptr(&seg, SEGMENT_DATA, off, 6),
			    "hello");
	assert_int_equal(segment_take_over(&seg, true, err, sizeof(err)), 0);
	assert_int_equal(segment_header(&seg)->state, SEGMENT_STATE_RUNNING);
	assert_int_equal(segment_header(&seg)->creator_pid, getpid());
	/* The new server dies without a clean stop: the next one sees it. */
	segment_detach(&seg);
	assert_int_equal(adopt(f, &seg, err, sizeof(err)), 0);
	assert_false(seg.was_clean);
	assert_string_equal((char *)segment_ptr(&seg, SEGMENT_DATA, off, 6),
			    "hello");
	segment_detach(&seg);
}

static void test_a_client_attaches_to_a_file_backed_segment_read_only(void **state)
{
	const struct files *f = *state;
	struct segment seg, client;
	char err[512];
	int ro;

	create_in(f, &seg, SEGMENT_HUGE_OFF, 0);
	ro = segment_readonly_fd(&seg);
	assert_true(ro >= 0);
	assert_int_equal(segment_attach(&client, ro, dup(seg.ctl_fd), err,
					sizeof(err)),
			 0);
	assert_false(client.writable);
	assert_true(mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED,
			 client.data_fd, 0) == MAP_FAILED);
	assert_int_equal(errno, EACCES);
	segment_detach(&client);
	segment_detach(&seg);
}

static void test_a_truncated_file_is_refused(void **state)
{
	const struct files *f = *state;
	struct segment seg;
	char err[512];

	create_in(f, &seg, SEGMENT_HUGE_OFF, 0);
	segment_mark_clean(&seg);
	segment_detach(&seg);
	assert_int_equal(truncate(f->data, 2 * MB), 0);
	assert_true(adopt(f, &seg, err, sizeof(err)) < 0);
	assert_has(err, "bytes but the parts are");
	assert_null(seg.data);
}

/* A live upgrade hands a memfd segment over: adopted, backing reported. */
static void test_a_memfd_segment_is_adopted_as_memfds(void **state)
{
	struct segment seg, other;
	char err[512];

	(void)state;
	create_ok(&seg, MB, 64 * 1024, SEGMENT_HUGE_OFF, false);
	assert_int_equal(segment_adopt(&other, dup(seg.data_fd),
				       dup(seg.ctl_fd), err, sizeof(err)),
			 0);
	assert_int_equal(segment_header(&other)->backing, SEGMENT_BACKING_MEMFD);
	assert_true(other.adopted);
	segment_detach(&other);
	segment_detach(&seg);
}

static void test_huge_pages_on_needs_hugetlbfs(void **state)
{
	const struct files *f = *state;
	struct segment seg;
	struct stat st;

	create_in(f, &seg, SEGMENT_HUGE_ON, -EINVAL);
	/* A failed creation leaves empty files, which the next start may use. */
	assert_int_equal(stat(f->data, &st), 0);
	assert_int_equal(st.st_size, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_what_one_server_writes_the_next_adopts),
		cmocka_unit_test(
			test_a_client_attaches_to_a_file_backed_segment_read_only),
		cmocka_unit_test(test_a_truncated_file_is_refused),
		cmocka_unit_test(test_a_memfd_segment_is_adopted_as_memfds),
		cmocka_unit_test(test_huge_pages_on_needs_hugetlbfs),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
