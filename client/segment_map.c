/*
 * segment_map.c - map a segment that exists already: attach and adopt
 *
 * Two kinds of process map a segment they did not create.  A client
 * program attaches (segment_attach): it receives the parts' fds from the
 * server and maps the data part read-only.  A server started on a memory
 * file that a previous server left behind adopts it (segment_adopt): it
 * opened the files itself and maps both parts read-write.  Either way the
 * parts could hold anything (a client trusts the server's fds no more than
 * it must, and a file on disk may be another program's or a truncated
 * one), so both go through the same validation of the headers against the
 * sizes of the files before any offset in them is used.
 *
 * Adoption is in two steps so that a refusal writes nothing:
 * segment_adopt maps and validates, the server compares the header's
 * settings with its own, and only then segment_take_over makes the
 * segment its own.  segment_mark_clean is the last thing a server does to
 * a memory file before it exits: the next server adopts it without
 * recovery.
 *
 * Interface routines (see segment.h): segment_attach, segment_adopt,
 * segment_take_over, segment_mark_clean.
 */
#include "segment.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "errbuf.h"
#include "hugepages.h"
#include "segment_internal.h"

/*
 * check_identity - both headers name this library's layout and the sizes
 * the fds have.  0 or -errno with err set.
 */
static int check_identity(const struct segment *seg,
			  const struct segment_header *h,
			  const struct segment_ctl_header *ch, char *err,
			  size_t errlen)
{
	uint32_t version = h->layout_version;

	if (h->magic != SEGMENT_MAGIC) {
		errbuf_set(err, errlen,
			   "the data part is not a shmkv segment (magic 0x%016" PRIx64
			   ")",
			   h->magic);
		return -EINVAL;
	}
	if (version != SEGMENT_LAYOUT_VERSION) {
		errbuf_set(err, errlen,
			   "the segment has layout version %" PRIu32
			   " but this library "
			   "knows layout version %u; use a client built with the server's version",
			   version, SEGMENT_LAYOUT_VERSION);
		return -EPROTO;
	}
	if (h->header_size != sizeof(struct segment_header)) {
		errbuf_set(err, errlen,
			   "the segment header is %" PRIu32
			   " bytes, this library's is %zu",
			   h->header_size, sizeof(struct segment_header));
		return -EPROTO;
	}
	if (h->data_size != seg->data_size || h->ctl_size != seg->ctl_size) {
		errbuf_set(err, errlen,
			   "the segment header says %" PRIu64 " + %" PRIu64
			   " bytes but the parts are %zu + %zu bytes",
			   h->data_size, h->ctl_size, seg->data_size,
			   seg->ctl_size);
		return -EINVAL;
	}
	if (ch->magic != SEGMENT_CTL_MAGIC ||
	    ch->layout_version != SEGMENT_LAYOUT_VERSION ||
	    ch->size != seg->ctl_size) {
		errbuf_set(err, errlen,
			   "the control part is not this segment's (magic 0x%016" PRIx64
			   ", version %" PRIu32 ", %" PRIu64 " bytes)",
			   ch->magic, ch->layout_version, ch->size);
		return -EINVAL;
	}
	return 0;
}

/*
 * check_offsets - the directory and allocation offsets lie inside the
 * parts, and the backing is one we know.  0 or -errno with err set.
 */
static int check_offsets(const struct segment *seg,
			 const struct segment_header *h, char *err, size_t errlen)
{
	/* One read of each: the header is writable by other processes. */
	uint64_t dir_offset = h->dir_offset;
	uint32_t dir_capacity = h->dir_capacity;

	if (dir_offset < sizeof(struct segment_header) ||
	    dir_capacity > seg->data_size / sizeof(struct segment_dir_entry) ||
	    !segment_range_ok(dir_offset,
			      (uint64_t)dir_capacity *
				      sizeof(struct segment_dir_entry),
			      seg->data_size) ||
	    /* Relaxed: only a sanity check; directory() loads it again, with
	     * acquire, before reading entries. */
	    __atomic_load_n(&h->dir_count, __ATOMIC_RELAXED) > dir_capacity ||
	    h->free_offset > seg->data_size ||
	    h->ctl_free_offset > seg->ctl_size) {
		errbuf_set(err, errlen,
			   "the segment's directory or allocation offsets "
			   "lie outside its %zu bytes",
			   seg->data_size);
		return -EINVAL;
	}
	if (h->backing != SEGMENT_BACKING_MEMFD &&
	    h->backing != SEGMENT_BACKING_FILE) {
		errbuf_set(err, errlen,
			   "the segment's backing %" PRIu32 " is unknown",
			   h->backing);
		return -EINVAL;
	}
	return 0;
}

/* check_seals - a memfd-backed segment's parts cannot shrink under us. */
static int check_seals(const struct segment *seg, uint32_t backing, char *err,
		       size_t errlen)
{
	/* Our mappings must not turn into a SIGBUS because some other holder
	 * of a writable fd shrank the memfd under them.  NOTE: files cannot
	 * be sealed (tmpfs seals only memfds); a memory file is the server
	 * user's, mode 0600, and its processes are trusted not to shrink it. */
	for (int i = 0; i < 2 && backing == SEGMENT_BACKING_MEMFD; i++) {
		int seals = fcntl(i == 0 ? seg->data_fd : seg->ctl_fd,
				  F_GET_SEALS);

		if (seals < 0 || !(seals & F_SEAL_SHRINK)) {
			errbuf_set(err, errlen,
				   "the %s part is not sealed against shrinking",
				   i == 0 ? "data" : "control");
			return -EPERM;
		}
	}
	return 0;
}

/*
 * validate_attached - check the header and control header of parts mapped
 * by segment_attach against what the fds say.  0 or -errno with err set.
 */
static int validate_attached(const struct segment *seg, char *err, size_t errlen)
{
	const struct segment_header *h = segment_header(seg);
	const struct segment_ctl_header *ch =
		(const struct segment_ctl_header *)seg->ctl;
	int rc = check_identity(seg, h, ch, err, errlen);

	if (rc == 0)
		rc = check_offsets(seg, h, err, errlen);
	if (rc == 0)
		rc = check_seals(seg, h->backing, err, errlen);
	return rc;
}

/* fd_size - the size of a memfd, checked to be mappable and at least min. */
static int fd_size(int fd, size_t min, const char *what, size_t *size,
		   char *err, size_t errlen)
{
	struct stat st;

	if (fstat(fd, &st) < 0) {
		int rc = -errno;
		errbuf_set(err, errlen, "could not stat the %s fd %d: %s", what,
			   fd, strerror(-rc));
		return rc;
	}
	if (st.st_size < (off_t)min || (uint64_t)st.st_size > SIZE_MAX) {
		errbuf_set(err, errlen,
			   "the %s fd is %lld bytes, too small for a header",
			   what, (long long)st.st_size);
		return -EINVAL;
	}
	*size = (size_t)st.st_size;
	return 0;
}

/*
 * map_existing - map both parts of seg->data_fd/ctl_fd (the data part
 * writable or not), validate them, read back the page size.  0, or -errno
 * with err set and seg released.
 */
static int map_existing(struct segment *seg, bool data_writable, char *err,
			size_t errlen)
{
	int data_prot = PROT_READ | (data_writable ? PROT_WRITE : 0);
	void *p;
	int rc;

	rc = fd_size(seg->data_fd, sizeof(struct segment_header), "data part",
		     &seg->data_size, err, errlen);
	if (rc == 0)
		rc = fd_size(seg->ctl_fd, sizeof(struct segment_ctl_header),
			     "control part", &seg->ctl_size, err, errlen);
	if (rc < 0)
		goto fail;

	p = mmap(NULL, seg->data_size, data_prot, MAP_SHARED, seg->data_fd, 0);
	if (p == MAP_FAILED) {
		rc = -errno;
		errbuf_set(err, errlen,
			   "could not map the %zu-byte data part: %s",
			   seg->data_size, strerror(-rc));
		goto fail;
	}
	seg->data = p;
	p = mmap(NULL, seg->ctl_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		 seg->ctl_fd, 0);
	if (p == MAP_FAILED) {
		rc = -errno;
		errbuf_set(err, errlen,
			   "could not map the %zu-byte control part "
			   "read-write: %s",
			   seg->ctl_size, strerror(-rc));
		goto fail;
	}
	seg->ctl = p;

	rc = validate_attached(seg, err, errlen);
	if (rc < 0)
		goto fail;
	rc = hugepages_mapping_page_size(seg->data, &seg->page_size);
	if (rc < 0) {
		errbuf_set(err, errlen,
			   "could not read the segment's page size from /proc/self/smaps: %s",
			   strerror(-rc));
		goto fail;
	}
	seg->huge = segment_header(seg)->huge != 0;
	seg->writable = data_writable;
	return 0;

fail:
	segment_release(seg);
	return rc;
}

/*
 * segment_attach - map parts created by another process: the data part
 * read-only, whatever the fd allows, and the control part read-write.
 * Validates magic, layout version, sizes and directory bounds.  Owns the fds,
 * also on failure, when they are closed and seg is left empty.
 */
int segment_attach(struct segment *seg, int data_fd, int ctl_fd, char *err,
		   size_t errlen)
{
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	segment_reset(seg);
	seg->data_fd = data_fd;
	seg->ctl_fd = ctl_fd;
	return map_existing(seg, false, err, errlen);
}

/*
 * segment_adopt - map a memory file's parts read-write and validate them;
 * nothing is written (see the top of this file).  Owns the fds.
 */
int segment_adopt(struct segment *seg, int data_fd, int ctl_fd, char *err,
		  size_t errlen)
{
	double start = segment_now_seconds();
	int rc;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	segment_reset(seg);
	seg->data_fd = data_fd;
	seg->ctl_fd = ctl_fd;
	rc = map_existing(seg, true, err, errlen);
	if (rc < 0)
		return rc;
	seg->adopted = true;
	/* Acquire: pairs with the release store of segment_mark_clean, so a
	 * clean mark is seen with everything the stopping server wrote. */
	seg->was_clean = atomic_load_explicit(&segment_header(seg)->clean_stop,
					      memory_order_acquire) == 1;
	seg->create_seconds = segment_now_seconds() - start;
	return 0;
}

/*
 * segment_take_over - the adopted segment becomes ours.  clean_stop goes
 * to 0 first: should we die from here on, the next server must recover.
 */
int segment_take_over(struct segment *seg, bool prefault, char *err, size_t errlen)
{
	struct segment_header *h = segment_header(seg);
	double start = segment_now_seconds();
	long pagesz = sysconf(_SC_PAGESIZE);
	int rc;

	if (!seg->adopted || !seg->writable)
		return -EINVAL;
	atomic_store_explicit(&h->clean_stop, 0, memory_order_relaxed);
	h->creator_pid = (int32_t)getpid();
	h->page_size = seg->page_size;
	/*
	 * The clock is Unix time and expiry times are absolute, so items
	 * expire at the right moment whatever time passed while no server
	 * ran: setting the clock to now is all the rebasing there is.
	 */
	atomic_store_explicit(&h->clock, (uint32_t)time(NULL),
			      memory_order_relaxed);
	/* Release: a client that sees RUNNING sees the fields above. */
	atomic_store_explicit(&h->state, SEGMENT_STATE_RUNNING,
			      memory_order_release);
	if (!prefault)
		goto done;
	rc = segment_populate(seg->data, seg->data_size,
			      seg->huge ? seg->page_size
					: (pagesz > 0 ? (size_t)pagesz : 4096));
	if (rc == 0)
		rc = segment_populate(seg->ctl, seg->ctl_size,
				      pagesz > 0 ? (size_t)pagesz : 4096);
	if (rc < 0) {
		errbuf_set(err, errlen, "could not fault in the segment: %s",
			   strerror(-rc));
		return rc;
	}
done:
	seg->create_seconds += segment_now_seconds() - start;
	return 0;
}

/*
 * segment_mark_clean - SHUTDOWN for attached clients, then the clean mark.
 * Release: pairs with segment_adopt's acquire load, so a server that sees
 * the mark sees every store made before it.  tmpfs and hugetlbfs files are
 * their page cache: there is nothing to msync.
 */
void segment_mark_clean(struct segment *seg)
{
	struct segment_header *h = segment_header(seg);

	if (seg->data == NULL || !seg->writable ||
	    h->backing != SEGMENT_BACKING_FILE)
		return;
	atomic_store_explicit(&h->state, SEGMENT_STATE_SHUTDOWN,
			      memory_order_release);
	atomic_store_explicit(&h->clean_stop, 1, memory_order_release);
}
