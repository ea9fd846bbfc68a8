/*
 * test_segment_attach.c - attaching to a segment (client/segment.c)
 *
 * segment_attach is how client programs see the server's memory, so it must
 * refuse anything that is not a segment of our layout and size (without
 * leaking the fds it was given), map the data part read-only in a way the
 * kernel enforces, and share the control part.  Attaching is tested from a
 * process that was not forked from the creator: the test re-executes its
 * own binary with --attach-child and hands it the fds over a Unix socket,
 * as the server hands them to client programs; main() runs attach_child
 * instead of the tests when given that argument.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "segment_fixture.h"

#define GREETING_LEN 5000u
#define CHILD_WROTE UINT64_C(0x6368696c64212121)

static unsigned char pattern_byte(size_t i)
{
	return (unsigned char)(i * 31u + 7u);
}

/* expect_attach_fails - attach must fail with want, say msg1 and msg2, close the fds. */
static void expect_attach_fails(int data_fd, int ctl_fd, int want,
				const char *msg1, const char *msg2)
{
	struct segment att;
	char err[512] = "";

	assert_int_equal(segment_attach(&att, data_fd, ctl_fd, err, sizeof(err)),
			 want);
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

	char ours[32];

	snprintf(ours, sizeof(ours), "layout version %u", SEGMENT_LAYOUT_VERSION);
	h->layout_version = 99;
	expect_attach_fails(dup(seg.data_fd), dup(seg.ctl_fd), -EPROTO,
			    "layout version 99", ours);
	h->layout_version = SEGMENT_LAYOUT_VERSION;

	h->header_size = 8;
	expect_attach_fails(dup(seg.data_fd), dup(seg.ctl_fd), -EPROTO,
			    "header", NULL);
	h->header_size = sizeof(*h);

	/* The header says one size, the memfd has another. */
	snprintf(sizes, sizeof(sizes), "%zu", seg.data_size + 4096);
	expect_attach_fails(memfd_copy(seg.data_size + 4096, seg.data, 4096),
			    dup(seg.ctl_fd), -EINVAL, sizes, NULL);
	expect_attach_fails(dup(seg.data_fd),
			    memfd_copy(seg.ctl_size * 2, seg.ctl, 64), -EINVAL,
			    NULL, NULL);
	/* The right size, but a control part anyone could shrink under us. */
	expect_attach_fails(dup(seg.data_fd),
			    memfd_copy(seg.ctl_size, seg.ctl, 64), -EPERM,
			    "control part is not sealed", NULL);
	expect_attach_fails(memfd_copy(seg.data_size, seg.data, 4096),
			    dup(seg.ctl_fd), -EPERM, "data part is not sealed",
			    NULL);
	/* Too small to hold a header at all, and no fds at all. */
	expect_attach_fails(memfd_copy(16, seg.data, 16), dup(seg.ctl_fd),
			    -EINVAL, "too small", NULL);
	expect_attach_fails(-1, -1, -EBADF, NULL, NULL);

	/* A directory outside the part. */
	h->dir_offset = seg.data_size - 8;
	expect_attach_fails(dup(seg.data_fd), dup(seg.ctl_fd), -EINVAL,
			    "directory", NULL);
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
	assert_int_equal(segment_alloc(&seg, SEGMENT_DATA, GREETING, 100, &off),
			 0);
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
	p = mmap(NULL, att.data_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		 att.data_fd, 0);
	assert_ptr_equal(p, MAP_FAILED);
	assert_int_equal(errno, EACCES);
	assert_int_equal(mprotect(att.data, att.data_size, PROT_READ | PROT_WRITE),
			 -1);
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
#define CHILD_FAIL(step, ...) \
	do { \
		dprintf(sock, __VA_ARGS__); \
		return (step); \
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
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = cbuf,
		.msg_controllen = sizeof(cbuf),
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
			CHILD_FAIL(16, "byte %zu is %u, not %u", i, p[i],
				   pattern_byte(i));
	if (segment_find(&seg, MAILBOX, &part, &off, &size) != 0 ||
	    part != SEGMENT_CTL || size < sizeof(uint64_t))
		CHILD_FAIL(17, "region " MAILBOX " not found as created");
	memcpy(segment_ptr(&seg, part, off, sizeof(uint64_t)),
	       &(uint64_t){ CHILD_WROTE }, sizeof(uint64_t));

	w = mmap(NULL, seg.data_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		 seg.data_fd, 0);
	if (w != MAP_FAILED || errno != EACCES)
		CHILD_FAIL(18, "writable mmap of the data fd: %s",
			   strerror(errno));
	if (mprotect(seg.data, seg.data_size, PROT_READ | PROT_WRITE) != -1 ||
	    errno != EACCES)
		CHILD_FAIL(19, "mprotect to writable: %s", strerror(errno));
	if (!store_faults(seg.data + seg.data_size - 1))
		CHILD_FAIL(20,
			   "a store into the read-only data part did not fault");
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
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = cbuf,
		.msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *cm;
	ssize_t n;
	pid_t pid;
	(void)state;

	create_ok(&seg, MB, 4096, SEGMENT_HUGE_OFF, false);
	assert_int_equal(segment_alloc(&seg, SEGMENT_DATA, GREETING,
				       GREETING_LEN, &doff),
			 0);
	assert_int_equal(segment_alloc(&seg, SEGMENT_CTL, MAILBOX, 64, &coff), 0);
	p = segment_ptr(&seg, SEGMENT_DATA, doff, GREETING_LEN);
	for (size_t i = 0; i < GREETING_LEN; i++)
		p[i] = pattern_byte(i);
	ro = segment_readonly_fd(&seg);
	assert_true(ro >= 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
			 0);
	/* Our own path, resolved before fork: under valgrind /proc/self/exe
	 * is valgrind's tool, while readlink reports the test's real path. */
	char exe[4096];
	ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	assert_true(len > 0);
	exe[len] = '\0';

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* Only the socket crosses exec: every segment fd is CLOEXEC. */
		char *argv[] = { (char *)"test_segment_attach",
				 (char *)"--attach-child", arg, NULL };

		fcntl(sv[1], F_SETFD, 0);
		snprintf(arg, sizeof(arg), "%d", sv[1]);
		execv(exe, argv);
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
	assert_int_equal(*(uint64_t *)segment_ptr(&seg, SEGMENT_CTL, coff, 8),
			 CHILD_WROTE);
	segment_detach(&seg);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_attach_refuses),
		cmocka_unit_test(test_attach_readonly),
		cmocka_unit_test(test_attach_other_process),
	};

	if (argc == 3 && strcmp(argv[1], "--attach-child") == 0)
		return attach_child(atoi(argv[2]));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
