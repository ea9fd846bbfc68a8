/*
 * segment_fixture.c - creating a segment and counting fds, for the segment tests
 *
 * Shared by test_segment.c and test_segment_attach.c: every test there
 * creates a real segment through create_ok (huge pages as the test asks,
 * a fake run directory identity), and the tests of failure paths count
 * this process's fds before and after to prove nothing leaked.
 *
 * Interface routines (see segment_fixture.h): create_ok, count_fds.
 */
#include "segment_fixture.h"

#include <dirent.h>

int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	assert_non_null(d);
	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return n;
}

void create_ok(struct segment *seg, size_t data_size, size_t ctl_size,
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
