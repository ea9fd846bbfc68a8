/*
 * segment_fixture.h - what the segment's tests share
 *
 * test_segment.c (creation, regions, huge pages) and test_segment_attach.c
 * (attaching, in this process and from an exec'd one) both create real
 * segments the same way and check the same kind of message.
 *
 * Interface routines:
 *   create_ok   segment_create with these sizes and huge_pages, or fail
 *   count_fds   how many fds this process has open (to catch leaks)
 *   assert_has  a message contains a phrase, or fail quoting both
 */
#ifndef SHMKV_TESTS_SEGMENT_FIXTURE_H
#define SHMKV_TESTS_SEGMENT_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "segment.h"

#define MB ((size_t)1 << 20)
#define GREETING "greeting"
#define MAILBOX "mailbox"

#define assert_has(haystack, needle) \
	do { \
		if (strstr((haystack), (needle)) == NULL) \
			fail_msg("message \"%s\" lacks \"%s\"", (haystack), \
				 (needle)); \
	} while (0)

/* create_ok - a segment with rundir 42/4242, or fail with segment_create's message. */
void create_ok(struct segment *seg, size_t data_size, size_t ctl_size,
	       enum segment_huge_pages hp, bool prefault);

/* count_fds - the entries of /proc/self/fd, the one opendir uses included. */
int count_fds(void);

#endif
