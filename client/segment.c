/*
 * segment.c - the shared segment: two memfds, a header and a directory
 *
 * The segment is built as PostgreSQL builds its main shared memory
 * (src/backend/port/sysv_shmem.c, src/backend/storage/ipc/shmem.c): one
 * mapping with a header at offset 0, a directory of named regions (our
 * ShmemIndex) and a bump allocator that never frees.  Two things differ.
 *
 * First, the memory is two memfds instead of one System V segment.  A memfd
 * has no name in any filesystem, disappears with its last user, and can be
 * handed to processes that are not our children by SCM_RIGHTS.  The data
 * part (header, directory, table) is handed to client programs read-only:
 * segment_readonly_fd reopens it through /proc/self/fd with O_RDONLY, so a
 * writable mmap or mprotect of it fails with EACCES in the kernel.  The
 * control part (locks, proc slots) must be writable by everyone and holds
 * nothing whose corruption could damage the data.
 *
 * Second, huge pages follow PostgreSQL's huge_pages = on | off | try, with
 * memfd's way of failing.  With MFD_HUGETLB, memfd_create and ftruncate
 * succeed however few huge pages are reserved; a MAP_SHARED mmap of the file
 * reserves them and fails with ENOMEM.  After that reservation a fault can
 * still fail (hugetlb cgroup limits, mempolicy), and a fault that fails on a
 * hugetlb mapping is a SIGBUS at whatever later moment first touches the
 * page.  So for on and try we also fault every page in at creation with
 * MADV_POPULATE_WRITE, which reports such a failure as an error instead.
 *
 * Both parts are sealed against shrinking and growing: the control part's fd
 * is writable in every client program, and an ftruncate by any of them would
 * otherwise turn every other process's next access into a SIGBUS.
 *
 * The page size we report is what /proc/self/smaps says the mapping got,
 * never the one we asked for: operators read it to find out whether their
 * vm.nr_hugepages setting took effect.  Reading the kernel's account of huge
 * pages (smaps, meminfo, the sysfs pools) and turning a shortage into a hint
 * is hugepages.c's job; this file decides what to ask for and maps it.
 *
 * Every offset and length read from shared memory is checked, with
 * arithmetic that cannot overflow, against the size this process mapped.
 *
 * Mapping a segment that exists (a client's attach, a server's adoption of
 * a memory file) is segment_map.c's; creating one in files instead of
 * memfds is segment_file.c's.  The helpers the three share are declared in
 * segment_internal.h.
 *
 * Interface routines (see segment.h): segment_create, segment_detach,
 * segment_alloc, segment_find, segment_ptr, segment_readonly_fd.  What
 * the kernel offers and gave in huge pages is hugepages.c's.
 */
#include "segment.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "errbuf.h"
#include "hugepages.h"
#include "segment_internal.h"

/* glibc's <sys/mman.h> has MFD_HUGETLB but not the size encoding; including
 * <linux/memfd.h> too would redefine MFD_CLOEXEC with other tokens. */
#ifndef MFD_HUGE_SHIFT
#define MFD_HUGE_SHIFT 26
#endif
#ifndef MFD_HUGE_MASK
#define MFD_HUGE_MASK 0x3fu
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

_Static_assert(SEGMENT_HEADER_SPACE + SEGMENT_DIR_SPACE <= SEGMENT_OVERHEAD,
	       "the data part's fixed area must fit in the overhead");
_Static_assert(SEGMENT_CTL_HEADER_SPACE <= SEGMENT_OVERHEAD,
	       "the control header must fit in the overhead");
_Static_assert((SEGMENT_ALIGN & (SEGMENT_ALIGN - 1)) == 0,
	       "SEGMENT_ALIGN must be a power of two");

/* align_up - x rounded up to a multiple of a (a > 0); false on overflow. */
static bool align_up(uint64_t x, uint64_t a, uint64_t *out)
{
	uint64_t rem = x % a;

	if (rem == 0) {
		*out = x;
		return true;
	}
	if (x > UINT64_MAX - (a - rem))
		return false;
	*out = x + (a - rem);
	return true;
}

/*
 * segment_part_size - need bytes rounded up to whole pages of page, if that fits
 * in size_t and off_t (ftruncate's argument); else false.
 */
bool segment_part_size(uint64_t need, size_t page, size_t *size)
{
	uint64_t s;

	if (!align_up(need, page, &s) || s > SIZE_MAX || s > (uint64_t)INT64_MAX)
		return false;
	*size = (size_t)s;
	return true;
}

/* segment_now_seconds - a monotonic clock, for create_seconds. */
double segment_now_seconds(void)
{
	return (double)monotonic_ns() / 1e9;
}

/* segment_reset - the empty state: nothing mapped, no fds (-1, not 0). */
void segment_reset(struct segment *seg)
{
	memset(seg, 0, sizeof(*seg));
	seg->data_fd = -1;
	seg->ctl_fd = -1;
}

/*
 * segment_release - unmap whatever is mapped and close whatever fds are
 * open, then leave seg empty.  Unlike segment_detach it trusts the fds even
 * when nothing is mapped: it is for our own half-built segments.
 */
void segment_release(struct segment *seg)
{
	if (seg->data != NULL)
		munmap(seg->data, seg->data_size);
	if (seg->ctl != NULL)
		munmap(seg->ctl, seg->ctl_size);
	if (seg->data_fd >= 0)
		close(seg->data_fd);
	if (seg->ctl_fd >= 0)
		close(seg->ctl_fd);
	segment_reset(seg);
}

/*
 * segment_detach - unmap both parts and close their fds; idempotent.
 * A segment with nothing mapped is left alone, fds included: a zeroed
 * struct segment has fd 0, which is not ours to close.
 */
void segment_detach(struct segment *seg)
{
	if (seg == NULL || (seg->data == NULL && seg->ctl == NULL))
		return;
	segment_release(seg);
}

/* seal_size - forbid every later change of the memfd's size. */
static int seal_size(int fd)
{
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
		return -errno;
	return 0;
}

/*
 * segment_populate - fault every page of a mapping in, writable, so that the
 * first requests pay no page faults and a hugetlb page that cannot be had is
 * an error now rather than a SIGBUS later.
 *
 * NOTE: MAP_POPULATE would do the first half but ignores failures, which is
 * exactly what we must not do for hugetlb.  Kernels before 5.14 lack
 * MADV_POPULATE_WRITE; there we write one byte per page (by then the hugetlb
 * pages are reserved by mmap, so only the rare cgroup limit could SIGBUS).
 */
int segment_populate(unsigned char *addr, size_t len, size_t page)
{
	if (madvise(addr, len, MADV_POPULATE_WRITE) == 0)
		return 0;
	if (errno != EINVAL)
		return -errno;
	/* Writing back what is there: an adopted segment is populated too,
	 * before any other process of ours can write it. */
	for (size_t i = 0; i < len; i += page) {
		volatile unsigned char *b = addr + i;
		unsigned char was = *b;

		*b = was;
	}
	return 0;
}

/*
 * map_hugetlb - create, size, seal and map the data part on hugetlb pages of
 * size hps, and fault them all in (on says which hint a failure gets).  0, or -errno with a message in msg and
 * nothing left behind.
 */
static int map_hugetlb(struct segment *seg, size_t size, size_t hps, bool on,
		       char *msg, size_t msglen)
{
	unsigned int flags = MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_HUGETLB;
	unsigned char *p;
	int fd, rc;
	char hs[32], ss[32];

	hugepages_format_size(hps, hs, sizeof(hs));
	hugepages_format_size(size, ss, sizeof(ss));
	flags |= ((unsigned int)__builtin_ctzll(hps) & MFD_HUGE_MASK)
		 << MFD_HUGE_SHIFT;
	fd = memfd_create("shmkv-data", flags);
	if (fd < 0) {
		rc = -errno;
		errbuf_set(msg, msglen,
			   "could not create a memfd of %s huge pages: %s", hs,
			   strerror(-rc));
		return rc;
	}
	if (ftruncate(fd, (off_t)size) < 0 || seal_size(fd) < 0) {
		rc = -errno;
		errbuf_set(msg, msglen, "could not size the %s hugetlb memfd: %s",
			   ss, strerror(-rc));
		close(fd);
		return rc;
	}
	/* This is where the kernel reserves the huge pages, or fails. */
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		rc = -errno;
		if (rc == -ENOMEM)
			hugepages_shortage_hint(size, hps, on, msg, msglen);
		else
			errbuf_set(msg, msglen,
				   "could not map the %s segment on %s huge pages: %s",
				   ss, hs, strerror(-rc));
		close(fd);
		return rc;
	}
	rc = segment_populate(p, size, hps);
	if (rc < 0) {
		if (rc == -ENOMEM || rc == -EFAULT) {
			hugepages_shortage_hint(size, hps, on, msg, msglen);
			rc = -ENOMEM;
		} else {
			errbuf_set(msg, msglen,
				   "could not fault in the %s segment's huge pages: %s",
				   ss, strerror(-rc));
		}
		munmap(p, size);
		close(fd);
		return rc;
	}
	seg->data = p;
	seg->data_size = size;
	seg->data_fd = fd;
	seg->huge = true;
	return 0;
}

/*
 * map_normal - create, size, seal and map a part on normal pages.  With thp,
 * ask for transparent huge pages (what huge_pages=try falls back to).
 */
static int map_normal(const char *name, size_t size, bool thp,
		      unsigned char **addr, int *fdp, char *err, size_t errlen)
{
	unsigned char *p;
	int fd, rc;
	char ss[32];

	hugepages_format_size(size, ss, sizeof(ss));
	fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0) {
		rc = -errno;
		errbuf_set(err, errlen, "could not create the %s memfd: %s",
			   name, strerror(-rc));
		return rc;
	}
	if (ftruncate(fd, (off_t)size) < 0 || seal_size(fd) < 0) {
		rc = -errno;
		errbuf_set(err, errlen, "could not size the %s memfd to %s: %s",
			   name, ss, strerror(-rc));
		close(fd);
		return rc;
	}
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		rc = -errno;
		errbuf_set(err, errlen, "could not map the %s memfd of %s: %s",
			   name, ss, strerror(-rc));
		close(fd);
		return rc;
	}
	/* Only a wish: shmem THP may be disabled (shmem_enabled=never), and
	 * then we run on 4k pages as off would. */
	if (thp)
		(void)madvise(p, size, MADV_HUGEPAGE);
	*addr = p;
	*fdp = fd;
	return 0;
}

/*
 * create_data_part - the data part, as huge_pages asks.  need is the byte
 * count before rounding to pages.  On success with huge_fell_back set, err
 * holds why, for the caller to log.
 */
static int create_data_part(struct segment *seg,
			    const struct segment_options *opt, uint64_t need,
			    size_t base_page, char *err, size_t errlen)
{
	char msg[512] = "";
	size_t size, hps = 0;
	int rc = 0;

	if (opt->huge_pages != SEGMENT_HUGE_OFF) {
		hps = opt->huge_page_size ? opt->huge_page_size
					  : hugepages_default_size();
		rc = hugepages_check_size(hps, base_page, msg, sizeof(msg));
		if (rc == 0 && !segment_part_size(need, hps, &size)) {
			errbuf_set(err, errlen,
				   "a data part of %" PRIu64
				   " bytes is too large",
				   need);
			return -EOVERFLOW;
		}
		if (rc == 0)
			rc = map_hugetlb(seg, size, hps,
					 opt->huge_pages == SEGMENT_HUGE_ON,
					 msg, sizeof(msg));
		if (rc == 0)
			return 0;
		if (opt->huge_pages == SEGMENT_HUGE_ON) {
			errbuf_set(err, errlen, "huge_pages=on: %s", msg);
			return rc;
		}
	}

	/* Off, or try that could not have them.  A fallback keeps the size in
	 * whole huge pages, which is what transparent huge pages need too. */
	if (hps < base_page || (hps & (hps - 1)) != 0)
		hps = base_page;
	if (!segment_part_size(need, hps, &size)) {
		errbuf_set(err, errlen,
			   "a data part of %" PRIu64 " bytes is too large", need);
		return -EOVERFLOW;
	}
	rc = map_normal("shmkv-data", size, opt->huge_pages == SEGMENT_HUGE_TRY,
			&seg->data, &seg->data_fd, err, errlen);
	if (rc < 0)
		return rc;
	seg->data_size = size;
	if (opt->huge_pages == SEGMENT_HUGE_TRY) {
		seg->huge_fell_back = true;
		errbuf_set(err, errlen,
			   "huge_pages=try: %s; using normal pages", msg);
	}
	return 0;
}

/* segment_write_headers - the creator's header and control header, before anyone sees them. */
void segment_write_headers(struct segment *seg, const struct segment_options *opt)
{
	struct segment_header *h = segment_header(seg);
	struct segment_ctl_header *ch = (struct segment_ctl_header *)seg->ctl;

	h->magic = SEGMENT_MAGIC;
	h->layout_version = SEGMENT_LAYOUT_VERSION;
	h->header_size = (uint32_t)sizeof(*h);
	h->creator_pid = (int32_t)getpid();
	h->dir_capacity = SEGMENT_DIR_CAPACITY;
	h->data_size = seg->data_size;
	h->ctl_size = seg->ctl_size;
	h->dir_offset = SEGMENT_HEADER_SPACE;
	h->dir_count = 0;
	h->free_offset = SEGMENT_HEADER_SPACE + SEGMENT_DIR_SPACE;
	h->ctl_free_offset = SEGMENT_CTL_HEADER_SPACE;
	h->huge = seg->huge ? 1 : 0;
	h->page_size = seg->page_size;
	h->rundir_dev = opt->rundir_dev;
	h->rundir_ino = opt->rundir_ino;
	h->backing = opt->in_files ? SEGMENT_BACKING_FILE : SEGMENT_BACKING_MEMFD;
	h->settings = opt->settings;
	atomic_store_explicit(&h->clean_stop, 0, memory_order_relaxed);
	/* Relaxed: no other process can see the segment yet.  The fork or the
	 * SCM_RIGHTS send that first shows it to one is a full barrier. */
	atomic_store_explicit(&h->clock, (uint32_t)time(NULL),
			      memory_order_relaxed);
	atomic_store_explicit(&h->state, SEGMENT_STATE_RUNNING,
			      memory_order_relaxed);

	ch->magic = SEGMENT_CTL_MAGIC;
	ch->layout_version = SEGMENT_LAYOUT_VERSION;
	ch->reserved = 0;
	ch->size = seg->ctl_size;
}

/*
 * segment_create - create and map both parts and write the header.  Each part
 * gets opt's size plus SEGMENT_OVERHEAD, rounded up to whole pages (whole
 * huge pages for the data part when huge pages are asked for).  0, or -errno
 * with err saying what failed and what to do; nothing is left behind.  With
 * huge_pages=try and no huge pages, succeeds with huge_fell_back set and err
 * saying why.
 */
int segment_create(struct segment *seg, const struct segment_options *opt,
		   char *err, size_t errlen)
{
	double start = segment_now_seconds();
	long pagesz = sysconf(_SC_PAGESIZE);
	size_t base_page = pagesz > 0 ? (size_t)pagesz : 4096;
	size_t ctl_size, real_page = 0;
	int rc;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	segment_reset(seg);
	if (opt == NULL || (unsigned int)opt->huge_pages > SEGMENT_HUGE_ON) {
		errbuf_set(err, errlen, "invalid segment options");
		return -EINVAL;
	}
	if (opt->in_files)
		return segment_create_files(seg, opt, err, errlen);
	if (opt->data_size > SIZE_MAX - SEGMENT_OVERHEAD ||
	    opt->ctl_size > SIZE_MAX - SEGMENT_OVERHEAD ||
	    !segment_part_size(opt->ctl_size + SEGMENT_OVERHEAD, base_page,
			       &ctl_size)) {
		errbuf_set(err, errlen,
			   "segment sizes %zu + %zu bytes are too large",
			   opt->data_size, opt->ctl_size);
		return -EOVERFLOW;
	}

	rc = map_normal("shmkv-ctl", ctl_size, false, &seg->ctl, &seg->ctl_fd,
			err, errlen);
	if (rc < 0)
		goto fail;
	seg->ctl_size = ctl_size;

	rc = create_data_part(seg, opt, opt->data_size + SEGMENT_OVERHEAD,
			      base_page, err, errlen);
	if (rc < 0)
		goto fail;

	if (opt->prefault) {
		/* hugetlb pages are in already: map_hugetlb must populate. */
		if (!seg->huge)
			rc = segment_populate(seg->data, seg->data_size,
					      base_page);
		if (rc == 0)
			rc = segment_populate(seg->ctl, seg->ctl_size, base_page);
		if (rc < 0) {
			errbuf_set(err, errlen,
				   "could not fault in the segment: %s",
				   strerror(-rc));
			goto fail;
		}
	}

	rc = hugepages_mapping_page_size(seg->data, &real_page);
	if (rc < 0) {
		errbuf_set(err, errlen,
			   "could not read the segment's page size from /proc/self/smaps: %s",
			   strerror(-rc));
		goto fail;
	}
	seg->page_size = real_page;
	seg->writable = true;
	segment_write_headers(seg, opt);
	seg->create_seconds = segment_now_seconds() - start;
	return 0;

fail:
	segment_release(seg);
	return rc;
}

/* part_bounds - base and mapped size of a part; false for an unknown part. */
static bool part_bounds(const struct segment *seg, enum segment_part part,
			unsigned char **base, uint64_t *size)
{
	switch (part) {
	case SEGMENT_DATA:
		*base = seg->data;
		*size = seg->data_size;
		break;
	case SEGMENT_CTL:
		*base = seg->ctl;
		*size = seg->ctl_size;
		break;
	default: return false;
	}
	return *base != NULL;
}

/*
 * segment_ptr - the address of [offset, offset+len) in part, or NULL if any
 * byte of it lies outside what this process mapped, or the part is unknown.
 */
void *segment_ptr(const struct segment *seg, enum segment_part part,
		  uint64_t offset, uint64_t len)
{
	unsigned char *base;
	uint64_t size;

	if (seg == NULL || !part_bounds(seg, part, &base, &size) ||
	    !segment_range_ok(offset, len, size))
		return NULL;
	return base + offset;
}

/*
 * directory - the directory array and how many entries are published, both
 * bounds-checked against the mapped data part; NULL if they are corrupt.
 */
static struct segment_dir_entry *directory(const struct segment *seg,
					   uint32_t *count)
{
	struct segment_header *h = segment_header(seg);
	uint64_t off = h->dir_offset;
	uint32_t cap = h->dir_capacity;
	/* Acquire: pairs with the release store in segment_alloc, so every
	 * entry below the count we read is completely written. */
	uint32_t n = __atomic_load_n(&h->dir_count, __ATOMIC_ACQUIRE);

	if (n > cap || cap > seg->data_size / sizeof(struct segment_dir_entry) ||
	    !segment_range_ok(off,
			      (uint64_t)cap * sizeof(struct segment_dir_entry),
			      seg->data_size) ||
	    off % _Alignof(struct segment_dir_entry) != 0)
		return NULL;
	*count = n;
	return (struct segment_dir_entry *)(seg->data + off);
}

/*
 * name_matches - is e named name (len < SEGMENT_NAME_MAX)?  The stored name
 * may lack its NUL in a corrupt segment, so compare within the field only.
 */
static bool name_matches(const struct segment_dir_entry *e, const char *name,
			 size_t len)
{
	return memcmp(e->name, name, len) == 0 && e->name[len] == '\0';
}

/*
 * segment_find - 0 and the region named name, -ENOENT if there is none,
 * -EIO if its entry points outside its part, -EINVAL for a bad argument.
 */
int segment_find(const struct segment *seg, const char *name,
		 enum segment_part *part, uint64_t *offset, uint64_t *size)
{
	struct segment_dir_entry *dir;
	uint32_t n;
	size_t len;

	if (seg == NULL || seg->data == NULL || name == NULL)
		return -EINVAL;
	len = strnlen(name, SEGMENT_NAME_MAX);
	if (len == 0 || len >= SEGMENT_NAME_MAX)
		return -ENOENT;
	dir = directory(seg, &n);
	if (dir == NULL)
		return -EIO;
	for (uint32_t i = 0; i < n; i++) {
		const struct segment_dir_entry *e = &dir[i];
		uint32_t p;
		uint64_t off, sz;

		if (!name_matches(e, name, len))
			continue;
		/* Read each field once: what we check is what we return. */
		p = e->part;
		off = e->offset;
		sz = e->size;
		if (segment_ptr(seg, (enum segment_part)p, off, sz) == NULL)
			return -EIO;
		if (part != NULL)
			*part = (enum segment_part)p;
		if (offset != NULL)
			*offset = off;
		if (size != NULL)
			*size = sz;
		return 0;
	}
	return -ENOENT;
}

/*
 * segment_alloc - carve a named region of size bytes from part.  It starts on
 * a SEGMENT_ALIGN boundary and is zero: memory is fresh from the memfd and
 * the allocator never reuses it, so we do not touch it (a memset would fault
 * in every page of a segment created without prefault).  Creator only.
 * -EINVAL, -ENAMETOOLONG, -EEXIST, -ENOSPC (part or directory full), -EROFS.
 */
int segment_alloc(struct segment *seg, enum segment_part part, const char *name,
		  uint64_t size, uint64_t *offset)
{
	struct segment_header *h;
	struct segment_dir_entry *dir, *e;
	unsigned char *base;
	uint64_t part_size, *freep, start, rounded;
	uint32_t n;
	size_t len;

	if (seg == NULL || name == NULL || size == 0 ||
	    !part_bounds(seg, part, &base, &part_size))
		return -EINVAL;
	if (!seg->writable || seg->data == NULL)
		return -EROFS;
	len = strnlen(name, SEGMENT_NAME_MAX);
	if (len == 0)
		return -EINVAL;
	if (len >= SEGMENT_NAME_MAX)
		return -ENAMETOOLONG;
	h = segment_header(seg);
	dir = directory(seg, &n);
	if (dir == NULL)
		return -EIO;
	for (uint32_t i = 0; i < n; i++)
		if (name_matches(&dir[i], name, len))
			return -EEXIST;
	if (n >= h->dir_capacity)
		return -ENOSPC;

	freep = part == SEGMENT_DATA ? &h->free_offset : &h->ctl_free_offset;
	start = *freep;
	if (!align_up(start, SEGMENT_ALIGN, &start) ||
	    !align_up(size, SEGMENT_ALIGN, &rounded))
		return -ENOSPC;
	if (!segment_range_ok(start, size, part_size))
		return -ENOSPC;
	/* The last region may end unpadded at the very end of the part. */
	*freep = segment_range_ok(start, rounded, part_size) ? start + rounded
							     : part_size;

	e = &dir[n];
	memset(e, 0, sizeof(*e));
	memcpy(e->name, name, len);
	e->part = (uint32_t)part;
	e->offset = start;
	e->size = size;
	/* Release: pairs with the acquire load in directory(), so a reader that
	 * counts this entry sees all of it. */
	__atomic_store_n(&h->dir_count, n + 1, __ATOMIC_RELEASE);
	if (offset != NULL)
		*offset = start;
	return 0;
}

/*
 * segment_readonly_fd - a new O_RDONLY, close-on-exec fd of the data part,
 * or -errno.  Reopening through /proc gives a new open file description
 * whose mode the kernel enforces: mmap(PROT_WRITE, MAP_SHARED) and
 * mprotect(PROT_WRITE) of a mapping made from it fail with EACCES.
 */
int segment_readonly_fd(const struct segment *seg)
{
	char path[64];
	int fd;

	if (seg == NULL || seg->data_fd < 0)
		return -EBADF;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", seg->data_fd);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}
