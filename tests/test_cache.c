/*
 * test_cache.c - the cache as a whole: segment + proc slots + table
 * (client/cache.c)
 *
 * cache.c only assembles the pieces, so what can go wrong is at the seams: a
 * config the table cannot honour must be refused with a message an operator
 * can act on and nothing left behind; proc slots must run out cleanly, come
 * back when released, and go through their life (claim, identity, take,
 * retire) clean and with their counters kept; and a process that was handed
 * the two descriptors (the way a client program is) must find the same
 * table, see what the server stored, and take a proc slot the server can
 * see.  test_owner_gone is the process-identity check recovery and attach
 * share.
 */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cache.h"
#include "proc.h"
#include "segment.h"
#include "table.h"

#define T0 1700000000u
#define MIB (1024u * 1024u)

static void config_init(struct cache_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->table.memory = 16 * MIB;
	cfg->table.partitions = 8;
	cfg->seg.huge_pages = SEGMENT_HUGE_OFF;
}

static int count_open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static bool fd_is_open(int fd)
{
	return fcntl(fd, F_GETFD) != -1;
}

/* The slot holding pid, or PROC_NONE. */
static uint32_t slot_of_pid(struct cache *c, pid_t pid)
{
	for (uint32_t i = 0; i < c->nprocs; i++) {
		struct proc *p = proc_get(c->procs, c->nprocs, i);

		if (p != NULL && atomic_load(&p->pid) == (int32_t)pid)
			return i;
	}
	return PROC_NONE;
}

static void test_create_and_use(void **state)
{
	(void)state;
	struct cache_config cfg;
	struct cache c;
	char err[256] = "";
	char buf[16];
	struct table_item_info info;

	config_init(&cfg);
	assert_int_equal(cache_create(&c, &cfg, err, sizeof(err)), 0);
	assert_int_equal(c.self, PROC_NONE);
	assert_int_equal(c.nprocs, CACHE_DEFAULT_PROCS);
	assert_int_equal(cache_claim_proc(&c), 0);
	assert_int_equal(slot_of_pid(&c, getpid()), c.self);

	segment_set_clock(&c.seg, T0);
	assert_int_equal(table_store(&c.table,
				     &(struct table_store_req){ .mode = TABLE_SET,
								.key = "k",
								.key_len = 1,
								.value = "v",
								.value_len = 1 },
				     NULL),
			 TABLE_OK);
	assert_int_equal(table_get(&c.table, "k", 1, NULL, buf, sizeof(buf),
				   &info),
			 TABLE_OK);
	assert_int_equal(info.value_len, 1);

	/* The configured memory is what the table may use, not less than
	 * most of it and never more. */
	struct table_stats s;
	table_stats_total(&c.table, &s);
	assert_true(s.mem_limit + s.bucket_bytes <= cfg.table.memory);
	assert_true(s.mem_limit >= cfg.table.memory / 2);

	/* Destroying gives back both descriptors. */
	int data_fd = c.seg.data_fd;
	int ctl_fd = c.seg.ctl_fd;
	assert_true(fd_is_open(data_fd) && fd_is_open(ctl_fd));
	cache_destroy(&c);
	assert_false(fd_is_open(data_fd));
	assert_false(fd_is_open(ctl_fd));
}

/* Try to create the cache; it must fail with a message and leave nothing
 * open.  The message is left in err. */
static void expect_refusal(const struct cache_config *cfg, char *err,
			   size_t errlen)
{
	struct cache c;
	int fds = count_open_fds();
	int rc;

	memset(err, 0, errlen);
	rc = cache_create(&c, cfg, err, errlen);
	if (rc == 0) {
		cache_destroy(&c);
		fail_msg("cache_create accepted %llu bytes in %u partitions "
			 "with items up to %u bytes",
			 (unsigned long long)cfg->table.memory,
			 cfg->table.partitions, cfg->table.max_item_size);
	}
	printf("refused (%d): %s\n", rc, err);
	assert_true(strlen(err) > 0);
	assert_int_equal(count_open_fds(), fds);
	/* A NULL err is allowed too. */
	assert_true(cache_create(&c, cfg, NULL, 0) < 0);
	assert_int_equal(count_open_fds(), fds);
}

static void test_create_bad_config(void **state)
{
	(void)state;
	struct cache_config cfg;
	char err[256];

	/* 64 KiB over 16 partitions cannot hold a 1 MiB item. */
	config_init(&cfg);
	cfg.table.memory = 64 * 1024;
	cfg.table.partitions = 16;
	expect_refusal(&cfg, err, sizeof(err));

	/* Partitions must be a power of two. */
	config_init(&cfg);
	cfg.table.partitions = 12;
	expect_refusal(&cfg, err, sizeof(err));

	/* A max item bigger than a partition, with memory to spare overall. */
	config_init(&cfg);
	cfg.table.memory = 8 * MIB;
	cfg.table.partitions = 16;
	cfg.table.max_item_size = 1 * MIB;
	expect_refusal(&cfg, err, sizeof(err));

	/* No memory at all. */
	config_init(&cfg);
	cfg.table.memory = 0;
	expect_refusal(&cfg, err, sizeof(err));
}

/*
 * The operator reads these messages to fix the config, so they must name
 * the values in effect and the hint that helps.
 */
static void test_create_error_messages(void **state)
{
	(void)state;
	struct cache_config cfg;
	char err[256];

	config_init(&cfg);
	cfg.table.memory = 64 * 1024;
	cfg.table.partitions = 16;
	expect_refusal(&cfg, err, sizeof(err));
	assert_non_null(strstr(err, "65536"));
	/* max_item_size 0 means the default 1 MiB, and that is what did not
	 * fit: "items up to 0 bytes" would send the reader astray. */
	assert_null(strstr(err, "up to 0 bytes"));

	config_init(&cfg);
	cfg.table.partitions = 12;
	expect_refusal(&cfg, err, sizeof(err));
	/* More memory would not help here; only a power of two would. */
	assert_non_null(strstr(err, "power of two"));
}

static void test_claim_until_full(void **state)
{
	(void)state;
	struct cache_config cfg;
	struct cache c;
	struct cache h[5];
	char err[256] = "";
	uint32_t seen = 0;

	config_init(&cfg);
	cfg.max_procs = 4;
	assert_int_equal(cache_create(&c, &cfg, err, sizeof(err)), 0);
	assert_int_equal(c.nprocs, 4);

	/* Handles copied from the creator's share its mappings; each one
	 * claims a slot as a separate process would. */
	for (int i = 0; i < 4; i++) {
		h[i] = c;
		assert_int_equal(cache_claim_proc(&h[i]), 0);
		assert_true(h[i].self < 4);
		assert_true((seen & (1u << h[i].self)) == 0);
		seen |= 1u << h[i].self;
	}
	h[4] = c;
	assert_int_equal(cache_claim_proc(&h[4]), -EAGAIN);
	assert_int_equal(h[4].self, PROC_NONE);

	/* A released slot can be claimed again, and it is the only one. */
	uint32_t freed = h[2].self;
	cache_release_proc(&h[2]);
	assert_int_equal(h[2].self, PROC_NONE);
	cache_release_proc(&h[2]); /* twice is harmless */
	assert_int_equal(cache_claim_proc(&h[4]), 0);
	assert_int_equal(h[4].self, freed);
	assert_int_equal(cache_claim_proc(&h[2]), -EAGAIN);

	/* A handle with a slot can use the table. */
	segment_set_clock(&c.seg, T0);
	assert_int_equal(table_store(&h[4].table,
				     &(struct table_store_req){ .mode = TABLE_SET,
								.key = "k",
								.key_len = 1,
								.value = "v",
								.value_len = 1 },
				     NULL),
			 TABLE_OK);

	for (int i = 0; i < 5; i++)
		cache_release_proc(&h[i]);
	assert_int_equal(cache_claim_proc(&c), 0);
	cache_destroy(&c);
}

/*
 * The child side of the attach test: map the cache from the two fds, read
 * what the parent stored, take a slot, tell the parent, wait for its word,
 * then let go.  Exit status says which step failed.
 */
static int attach_child(int data_fd, int ctl_fd, int to_parent, int from_parent)
{
	struct cache a;
	struct table_item_info info;
	char err[256] = "";
	char buf[64];
	char c = 0;

	alarm(10);
	if (cache_attach(&a, data_fd, ctl_fd, err, sizeof(err)) != 0) {
		fprintf(stderr, "attach: %s\n", err);
		return 10;
	}
	if (cache_claim_proc(&a) != 0)
		return 11;
	if (segment_clock(&a.seg) != T0 + 1)
		return 12;
	/* Read directly from the read-only data part, without a lock. */
	struct table_read rd = { .hash = table_hash("shared", 6),
				 .key = "shared",
				 .key_len = 6,
				 .buf = buf,
				 .cap = sizeof(buf) };

	if (table_get_lockfree(&a.table, &rd) != TABLE_OK)
		return 13;
	if (rd.value_len != 11 || memcmp(buf, "from parent", 11) != 0 ||
	    rd.flags != 5)
		return 14;
	if (table_get(&a.table, "expired", 7, NULL, buf, sizeof(buf), &info) !=
	    TABLE_NOT_FOUND)
		return 15;
	if (table_get(&a.table, "nothing", 7, NULL, buf, sizeof(buf), &info) !=
	    TABLE_NOT_FOUND)
		return 16;
	/* The data part really is read-only here. */
	if (!a.seg.writable &&
	    mprotect(a.seg.data, 4096, PROT_READ | PROT_WRITE) == 0)
		return 17;
	if (write(to_parent, "c", 1) != 1)
		return 18;
	if (read(from_parent, &c, 1) != 1)
		return 19;
	cache_destroy(&a);
	return 0;
}

static int wait_child(pid_t pid, int seconds)
{
	time_t deadline = time(NULL) + seconds;
	int status = 0;

	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status)
						 : 128 + WTERMSIG(status);
		if (r < 0 && errno != EINTR)
			return -1;
		if (time(NULL) > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			return -2;
		}
		usleep(10000);
	}
}

/* Every field of a slot set as a busy owner would leave it. */
static void scribble(struct proc *p)
{
	atomic_store(&p->waiting, 1);
	atomic_store(&p->wait_mode, 2);
	atomic_store(&p->wait_next, 7);
	atomic_store(&p->acquiring, 128);
	atomic_store(&p->nheld, 3);
	memset(p->held, 0x5a, sizeof(p->held));
	atomic_store(&p->hits, 11);
	atomic_store(&p->misses, 13);
	atomic_store(&p->wait_sleep, 129);
	p->spare = 9;
	atomic_store(&p->start_time, 12345);
}

static void assert_clean(struct proc *p)
{
	struct proc_held_lock zero[PROC_MAX_HELD];

	memset(zero, 0, sizeof(zero));
	assert_int_equal(atomic_load(&p->waiting), 0);
	assert_int_equal(atomic_load(&p->wait_mode), 0);
	assert_int_equal(atomic_load(&p->wait_next), PROC_NONE);
	assert_int_equal(atomic_load(&p->acquiring), 0);
	assert_int_equal(atomic_load(&p->nheld), 0);
	assert_memory_equal(p->held, zero, sizeof(zero));
	assert_int_equal(atomic_load(&p->hits), 0);
	assert_int_equal(atomic_load(&p->misses), 0);
	assert_int_equal(atomic_load(&p->wait_sleep), 0);
	assert_int_equal(p->spare, 0);
	assert_int_equal(atomic_load(&p->start_time), 0);
}

/*
 * A slot's life: claimed for a client program, its identity recorded; the
 * client gone, exactly one taker wins it; retiring folds its counters into
 * the server's and leaves it free and clean, whatever the owner scribbled.
 */
static void test_slot_life(void **state)
{
	(void)state;
	struct cache_config cfg;
	struct cache c;
	char err[256] = "";
	_Atomic uint64_t hits = 100, misses = 200;
	uint64_t start = 0;
	uint32_t slot;
	struct proc *p;

	config_init(&cfg);
	cfg.max_procs = 4;
	assert_int_equal(cache_create(&c, &cfg, err, sizeof(err)), 0);
	assert_int_equal(proc_claim(c.procs, c.nprocs, 4242, &slot), 0);
	p = proc_get(c.procs, c.nprocs, slot);
	assert_clean(p);

	proc_record_identity(p, getpid());
	assert_int_equal(proc_read_stat(getpid(), NULL, &start), 0);
	assert_true(atomic_load(&p->start_time) == start);
	proc_record_identity(p, 0x7ffffff0); /* no such process */
	assert_true(atomic_load(&p->start_time) == PROC_START_UNKNOWN);

	scribble(p);
	assert_false(proc_take_dead(p, 4243)); /* not its pid */
	assert_true(proc_take_dead(p, 4242));
	assert_int_equal(atomic_load(&p->pid), -4242);
	assert_false(proc_take_dead(p, 4242)); /* the other taker loses */
	proc_retire(c.procs, c.nprocs, slot, &hits, &misses);
	assert_int_equal(atomic_load(&hits), 111);
	assert_int_equal(atomic_load(&misses), 213);
	assert_int_equal(atomic_load(&p->pid), 0);
	assert_clean(p);

	/* Scribbled while free (a client may write anywhere): a claim still
	 * hands it out clean. */
	scribble(p);
	assert_int_equal(proc_claim(c.procs, c.nprocs, 4244, &slot), 0);
	assert_ptr_equal(proc_get(c.procs, c.nprocs, slot), p);
	assert_clean(p);

	/* Adopting: only a slot of the array. */
	assert_int_equal(cache_adopt_proc(&c, c.nprocs), -ERANGE);
	assert_int_equal(c.self, PROC_NONE);
	assert_int_equal(cache_adopt_proc(&c, slot), 0);
	assert_int_equal(c.self, slot);
	cache_destroy(&c);
}

/* The one "has that process ended" test, as recovery and attach use it. */
static void test_owner_gone(void **state)
{
	(void)state;
	uint64_t start = 0;
	pid_t child, ppid = -1;
	int status;

	assert_int_equal(proc_read_stat(getpid(), &ppid, &start), 0);
	assert_int_equal(ppid, getppid());
	assert_false(proc_owner_gone(getpid(), start, true, NULL));
	assert_false(proc_owner_gone(getpid(), PROC_START_UNKNOWN, true, NULL));
	/* Same PID, another start time: a new process reusing the PID. */
	assert_false(proc_owner_gone(getpid(), start + 1, false, NULL));
	assert_true(proc_owner_gone(getpid(), start + 1, true, &ppid));
	assert_int_equal(ppid, getppid());

	child = fork();
	assert_true(child >= 0);
	if (child == 0)
		_exit(0);
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(proc_owner_gone(child, start, true, &ppid));
	assert_int_equal(ppid, 0);
	assert_true(proc_owner_gone(child, PROC_START_UNKNOWN, false, NULL));
	assert_int_equal(proc_read_stat(child, NULL, &start), -ENOENT);
}

/*
 * store_for_child - what the attached child must find: one live item, and
 * one whose expiry has passed.
 */
static void store_for_child(struct cache *c)
{
	assert_int_equal(table_store(&c->table,
				     &(struct table_store_req){
					     .mode = TABLE_SET,
					     .key = "shared",
					     .key_len = 6,
					     .value = "from parent",
					     .value_len = 11,
					     .flags = 5 },
				     NULL),
			 TABLE_OK);
	assert_int_equal(table_store(&c->table,
				     &(struct table_store_req){ .mode = TABLE_SET,
								.key = "expired",
								.key_len = 7,
								.value = "x",
								.value_len = 1,
								.exptime = 1 },
				     NULL),
			 TABLE_OK);
	table_tick(&c->table, T0 + 1);
}

static void test_attach_from_fds(void **state)
{
	(void)state;
	struct cache_config cfg;
	struct cache c;
	char err[256] = "";
	int to_parent[2];
	int from_parent[2];

	config_init(&cfg);
	assert_int_equal(cache_create(&c, &cfg, err, sizeof(err)), 0);
	assert_int_equal(cache_claim_proc(&c), 0);
	segment_set_clock(&c.seg, T0);
	store_for_child(&c);

	int data_fd = segment_readonly_fd(&c.seg);
	int ctl_fd = dup(c.seg.ctl_fd);
	assert_true(data_fd >= 0);
	assert_true(ctl_fd >= 0);
	assert_int_equal(pipe(to_parent), 0);
	assert_int_equal(pipe(from_parent), 0);

	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid == 0) {
		close(to_parent[0]);
		close(from_parent[1]);
		_exit(attach_child(data_fd, ctl_fd, to_parent[1], from_parent[0]));
	}
	close(data_fd);
	close(ctl_fd);
	close(to_parent[1]);
	close(from_parent[0]);

	/* While the child holds its slot, the parent sees it taken. */
	char ch = 0;
	ssize_t n = pid > 0 ? read(to_parent[0], &ch, 1) : -1;
	uint32_t child_slot = pid > 0 ? slot_of_pid(&c, pid) : PROC_NONE;
	if (pid > 0 && write(from_parent[1], "g", 1) != 1)
		n = -1;
	close(from_parent[1]);
	close(to_parent[0]);
	int rc = pid > 0 ? wait_child(pid, 20) : -3;

	assert_true(pid > 0);
	if (rc != 0)
		fail_msg("attached child failed at step %d", rc);
	assert_int_equal(n, 1);
	assert_true(child_slot != PROC_NONE);
	assert_true(child_slot != c.self);
	/* It let go of its slot when it was done. */
	assert_int_equal(slot_of_pid(&c, pid), PROC_NONE);
	/* Its lock-free read counted nothing in the table (the library counts
	 * such reads per process: tests/test_client.c); its two locked reads
	 * of a read-only mapping, misses, did. */
	struct table_stats s;
	table_stats_total(&c.table, &s);
	assert_int_equal(s.hits, 0);
	assert_int_equal(s.misses, 2);
	cache_destroy(&c);
}

static void test_attach_rejects_garbage(void **state)
{
	(void)state;
	struct cache a;
	char err[256] = "";
	int fds = count_open_fds();
	int data_fd = memfd_create("not-shmkv-data", MFD_CLOEXEC);
	int ctl_fd = memfd_create("not-shmkv-ctl", MFD_CLOEXEC);

	assert_true(data_fd >= 0 && ctl_fd >= 0);
	assert_int_equal(ftruncate(data_fd, 4 * MIB), 0);
	assert_int_equal(ftruncate(ctl_fd, 1 * MIB), 0);
	assert_true(cache_attach(&a, data_fd, ctl_fd, err, sizeof(err)) < 0);
	assert_true(strlen(err) > 0);
	printf("garbage: %s\n", err);
	/* It took the fds, also on failure. */
	assert_false(fd_is_open(data_fd));
	assert_false(fd_is_open(ctl_fd));
	assert_int_equal(count_open_fds(), fds);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_and_use),
		cmocka_unit_test(test_create_bad_config),
		cmocka_unit_test(test_create_error_messages),
		cmocka_unit_test(test_claim_until_full),
		cmocka_unit_test(test_slot_life),
		cmocka_unit_test(test_owner_gone),
		cmocka_unit_test(test_attach_from_fds),
		cmocka_unit_test(test_attach_rejects_garbage),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
