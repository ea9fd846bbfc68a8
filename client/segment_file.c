/*
 * segment_file.c - a segment whose two parts are files: the memory file
 *
 * A memfd disappears with the last process that maps it, so a server that
 * stops or dies takes its items with it.  With a memory file the data part
 * and the control part are files instead, on tmpfs (/dev/shm) or on a
 * hugetlbfs mount, which keep their pages when no process maps them: the
 * next server adopts them (segment_map.c) with every item in place.  The
 * server opens the files (server/memory_file.c decides whether to adopt
 * or to start cold, and holds the lock that keeps a second server out);
 * this file only makes a new segment in them, as segment_create does in
 * memfds.
 *
 * What differs from memfds:
 *   - The page size is the file system's: a hugetlbfs file has only huge
 *     pages (of the mount's size), a tmpfs file has normal pages, with
 *     MADV_HUGEPAGE for huge_pages=try.  huge_pages=on refuses a tmpfs
 *     file, and off a hugetlbfs one, rather than quietly doing the other.
 *   - Files cannot be sealed (tmpfs seals only memfds): see segment_map.c.
 *   - The files may hold an old segment: they are truncated to nothing
 *     first, which also hands their pages back, then sized, so the new
 *     segment is all zeros as a memfd is.  The magic is written as soon as
 *     the data part is mapped, so that a server killed while creating it
 *     leaves a file that is recognisably ours (and refused as incomplete,
 *     not as a stranger's), and an error truncates the files back to
 *     nothing, which the next start takes as free to use.
 *
 * Interface routines: segment_create_files (segment_internal.h), called by
 * segment_create when opt->in_files is set.
 */
#include "segment.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "errbuf.h"
#include "hugepages.h"
#include "segment_internal.h"

#ifndef HUGETLBFS_MAGIC
#define HUGETLBFS_MAGIC 0x958458f6
#endif

/* file_page - the page size a file's mappings get, and whether it is huge. */
static int file_page(int fd, size_t base_page, size_t *page, bool *huge)
{
	struct statfs sf;

	if (fstatfs(fd, &sf) < 0)
		return -errno;
	*huge = sf.f_type == HUGETLBFS_MAGIC;
	*page = *huge ? (size_t)sf.f_bsize : base_page;
	return 0;
}

/*
 * check_huge_pages - does the data file's file system give what huge_pages
 * asks?  0, or -EINVAL with the reason in err.  try on tmpfs is not an
 * error: it falls back, and says so through huge_fell_back.
 */
static int check_huge_pages(struct segment *seg, enum segment_huge_pages hp,
			    bool huge, char *err, size_t errlen)
{
	if (hp == SEGMENT_HUGE_ON && !huge) {
		errbuf_set(err, errlen,
			   "huge_pages=on: the memory file is not "
			   "on a hugetlbfs mount; put it on one (mount -t "
			   "hugetlbfs none /dev/hugepages) or use --huge-pages try");
		return -EINVAL;
	}
	if (hp == SEGMENT_HUGE_OFF && huge) {
		errbuf_set(err, errlen,
			   "huge_pages=off: the memory file is on "
			   "a hugetlbfs mount, which has only huge pages; put it "
			   "on tmpfs (/dev/shm) or use --huge-pages try");
		return -EINVAL;
	}
	if (hp == SEGMENT_HUGE_TRY && !huge) {
		seg->huge_fell_back = true;
		errbuf_set(err, errlen,
			   "huge_pages=try: the memory file is not "
			   "on a hugetlbfs mount; using normal pages");
	}
	return 0;
}

/*
 * map_file - empty fd, size it to size bytes and map it read-write.  A
 * hugetlbfs mapping reserves its pages here (ENOMEM when too few are), so
 * the shortage gets the usual hint.
 */
static int map_file(int fd, const char *what, size_t size, size_t page,
		    bool huge, unsigned char **addr, char *err, size_t errlen)
{
	char ss[32];
	void *p;
	int rc;

	hugepages_format_size(size, ss, sizeof(ss));
	if (ftruncate(fd, 0) < 0 || ftruncate(fd, (off_t)size) < 0) {
		rc = -errno;
		errbuf_set(err, errlen,
			   "could not size the memory file's %s "
			   "to %s: %s",
			   what, ss, strerror(-rc));
		return rc;
	}
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		rc = -errno;
		if (rc == -ENOMEM && huge)
			hugepages_shortage_hint(size, page, true, err, errlen);
		else
			errbuf_set(err, errlen,
				   "could not map the memory file's "
				   "%s of %s: %s",
				   what, ss, strerror(-rc));
		return rc;
	}
	*addr = p;
	return 0;
}

/* fault_in - every page now, as segment_create does: a hugetlb page that
 * cannot be had is an error here instead of a SIGBUS later. */
static int fault_in(struct segment *seg, const struct segment_options *opt,
		    size_t data_page, size_t ctl_page, char *err, size_t errlen)
{
	int rc = 0;

	if (seg->huge || opt->prefault)
		rc = segment_populate(seg->data, seg->data_size, data_page);
	if (rc == 0 && opt->prefault)
		rc = segment_populate(seg->ctl, seg->ctl_size, ctl_page);
	if (rc == -ENOMEM || rc == -EFAULT)
		hugepages_shortage_hint(seg->data_size, data_page, true, err,
					errlen);
	else if (rc < 0)
		errbuf_set(err, errlen, "could not fault in the memory file: %s",
			   strerror(-rc));
	return rc;
}

/*
 * segment_create_files - segment_create in opt's two files (see the top of
 * this file).  Owns both fds from the call on; on failure they are
 * truncated to nothing and closed.
 */
int segment_create_files(struct segment *seg, const struct segment_options *opt,
			 char *err, size_t errlen)
{
	double start = segment_now_seconds();
	long pagesz = sysconf(_SC_PAGESIZE);
	size_t base_page = pagesz > 0 ? (size_t)pagesz : 4096;
	size_t data_page, ctl_page;
	bool data_huge, ctl_huge;
	int rc;

	seg->data_fd = opt->file_data_fd;
	seg->ctl_fd = opt->file_ctl_fd;
	rc = file_page(seg->data_fd, base_page, &data_page, &data_huge);
	if (rc == 0)
		rc = file_page(seg->ctl_fd, base_page, &ctl_page, &ctl_huge);
	if (rc < 0) {
		errbuf_set(err, errlen,
			   "could not tell the memory file's file "
			   "system: %s",
			   strerror(-rc));
		goto fail;
	}
	rc = check_huge_pages(seg, opt->huge_pages, data_huge, err, errlen);
	if (rc < 0)
		goto fail;
	if (opt->data_size > SIZE_MAX - SEGMENT_OVERHEAD ||
	    opt->ctl_size > SIZE_MAX - SEGMENT_OVERHEAD ||
	    !segment_part_size(opt->data_size + SEGMENT_OVERHEAD, data_page,
			       &seg->data_size) ||
	    !segment_part_size(opt->ctl_size + SEGMENT_OVERHEAD, ctl_page,
			       &seg->ctl_size)) {
		errbuf_set(err, errlen,
			   "segment sizes %zu + %zu bytes are too large",
			   opt->data_size, opt->ctl_size);
		rc = -EOVERFLOW;
		goto fail;
	}
	rc = map_file(seg->data_fd, "data part", seg->data_size, data_page,
		      data_huge, &seg->data, err, errlen);
	if (rc < 0)
		goto fail;
	segment_header(seg)->magic = SEGMENT_MAGIC;
	rc = map_file(seg->ctl_fd, "control part", seg->ctl_size, ctl_page,
		      ctl_huge, &seg->ctl, err, errlen);
	if (rc < 0)
		goto fail;
	seg->huge = data_huge;
	if (seg->huge_fell_back)
		(void)madvise(seg->data, seg->data_size, MADV_HUGEPAGE);
	rc = fault_in(seg, opt, data_page, ctl_page, err, errlen);
	if (rc < 0)
		goto fail;
	rc = hugepages_mapping_page_size(seg->data, &seg->page_size);
	if (rc < 0) {
		errbuf_set(err, errlen,
			   "could not read the segment's page size "
			   "from /proc/self/smaps: %s",
			   strerror(-rc));
		goto fail;
	}
	seg->writable = true;
	segment_write_headers(seg, opt);
	seg->create_seconds = segment_now_seconds() - start;
	return 0;

fail:
	/* Empty files are free for the next start; a half-made one is not. */
	if (seg->data_fd >= 0)
		(void)!ftruncate(seg->data_fd, 0);
	if (seg->ctl_fd >= 0)
		(void)!ftruncate(seg->ctl_fd, 0);
	segment_release(seg);
	return rc;
}
