/*
 * segment.h - the shared segment: two memfds, reached only by offset
 *
 * The data part holds the header, the directory of named regions, the
 * table's buckets and item memory.  It is backed by huge pages where the
 * operator asks for them, mapped read-write by the server's processes and
 * read-only by client programs.  The control part holds what every attached
 * process must be able to write: LWLocks, proc slots, per-process counters.
 *
 * Nothing in either part is a pointer: client programs map the parts at other
 * addresses than the server.  segment_ptr() turns an offset into an address
 * after checking that the whole range lies inside the part.
 *
 * With a memory file (segment_file.c) the two parts are files on tmpfs or
 * hugetlbfs instead, so that the segment outlives the server's processes:
 * a later server adopts it (segment_adopt) with every item in place.
 *
 * Interface routines:
 *   segment_create      create both parts (memfds, or the given files), map
 *                       them, write the header
 *   segment_attach      map parts received from the creator (read-only data)
 *   segment_adopt       map a memory file's parts read-write (a new server)
 *   segment_take_over   make an adopted segment this server's
 *   segment_mark_clean  record that the server stopped with the segment whole
 *   segment_detach      unmap and close
 *   segment_alloc       carve a named, cache-line aligned region (creator only)
 *   segment_find        look a named region up in the directory
 *   segment_ptr         bounds-checked offset -> address
 *   segment_readonly_fd a new O_RDONLY descriptor of the data part, to hand out
 */
#ifndef SHMKV_SEGMENT_H
#define SHMKV_SEGMENT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SEGMENT_MAGIC UINT64_C(0x766b6d6873a1b2c3) /* "shmkv" + tag */
#define SEGMENT_CTL_MAGIC UINT64_C(0x6c74636b6d68a1b2)
/* tests/test_layout.c holds the version to the shared structs. */
#define SEGMENT_LAYOUT_VERSION 7u
#define SEGMENT_ALIGN 64u    /* every region starts on a cache line */
#define SEGMENT_NAME_MAX 24u /* including the terminating NUL */
#define SEGMENT_DIR_CAPACITY 32u

enum segment_huge_pages {
	SEGMENT_HUGE_OFF, /* never ask for huge pages */
	SEGMENT_HUGE_TRY, /* hugetlb if the kernel has them, else 4k + MADV_HUGEPAGE */
	SEGMENT_HUGE_ON, /* hugetlb or fail with a hint about vm.nr_hugepages */
};

enum segment_part {
	SEGMENT_DATA = 0,
	SEGMENT_CTL = 1,
};

enum segment_backing {
	SEGMENT_BACKING_MEMFD = 0,
	SEGMENT_BACKING_FILE = 1, /* --memory-file: outlives the processes */
};

enum segment_state {
	SEGMENT_STATE_RUNNING = 1,
	SEGMENT_STATE_SHUTDOWN = 2, /* the server is gone: clients must reattach */
};

/*
 * What the creator made the segment with, kept in the header so that a
 * server adopting a memory file can tell whether it was made for the same
 * start (and say what differs).  The segment only stores it.
 */
struct segment_settings {
	uint64_t memory; /* table bytes (-m) */
	uint32_t partitions;
	uint32_t max_item_size; /* -I */
	uint32_t item_size_hint;
	uint32_t max_procs;
	uint64_t extra_ctl_bytes; /* the server's own control regions */
	int32_t port;		  /* of the server that made it */
	uint32_t reserved;
	uint64_t run_dir_hash; /* XXH3 of its run directory's path */
	char run_dir[128];     /* the path, for messages (may be cut short) */
};

struct segment_options {
	size_t data_size; /* bytes the data part needs, header included */
	size_t ctl_size;  /* bytes the control part needs, header included */
	enum segment_huge_pages huge_pages;
	size_t huge_page_size; /* 0 = the kernel's default huge page size */
	bool prefault;	       /* fault every page in at creation */
	uint64_t rundir_dev;   /* device and inode of the run directory */
	uint64_t rundir_ino;
	struct segment_settings settings; /* copied into the header */
	/* Memory file: with in_files, the parts are these open files, which
	 * segment_create sizes and takes over (also on failure); else memfds. */
	bool in_files;
	int file_data_fd;
	int file_ctl_fd;
};

/* One named region; part says which memfd its offset is relative to. */
struct segment_dir_entry {
	char name[SEGMENT_NAME_MAX];
	uint32_t part;
	uint32_t reserved;
	uint64_t offset;
	uint64_t size;
};

/*
 * At offset 0 of the data part, as PostgreSQL's PGShmemHeader.  Written by
 * the creator before anyone else can see the segment; afterwards only clock,
 * state and the allocation fields change, and only in the creator's tree
 * (a server adopting a memory file also rewrites creator_pid, page_size and
 * clean_stop, before its workers start).
 */
struct segment_header {
	uint64_t magic;
	uint32_t layout_version;
	uint32_t header_size; /* sizeof(struct segment_header) */
	int32_t creator_pid;
	uint32_t dir_capacity;
	uint64_t data_size;	  /* mapped length of the data part */
	uint64_t ctl_size;	  /* mapped length of the control part */
	uint64_t free_offset;	  /* next unallocated byte of the data part */
	uint64_t ctl_free_offset; /* next unallocated byte of the control part */
	uint64_t dir_offset;	  /* array of dir_capacity entries, data part */
	uint32_t dir_count;
	uint32_t huge;	    /* 1 if backed by hugetlb pages */
	uint64_t page_size; /* page size the data part really got */
	uint64_t rundir_dev;
	uint64_t rundir_ino;
	_Atomic uint32_t clock; /* coarse Unix time, seconds; server-written */
	_Atomic uint32_t state; /* enum segment_state */
	uint32_t backing;	/* enum segment_backing */
	/* 1 once a server stopped with every process out of the segment and
	 * nothing half done (segment_mark_clean); 0 from adoption on. */
	_Atomic uint32_t clean_stop;
	struct segment_settings settings;
};

/* At offset 0 of the control part. */
struct segment_ctl_header {
	uint64_t magic;
	uint32_t layout_version;
	uint32_t reserved;
	uint64_t size;
};

/* A process's view of the segment; lives in process memory, never shared. */
struct segment {
	unsigned char *data;
	size_t data_size;
	int data_fd;
	unsigned char *ctl;
	size_t ctl_size;
	int ctl_fd;
	bool writable; /* data part mapped read-write (server processes) */
	bool huge;     /* data part is hugetlb-backed */
	bool huge_fell_back; /* huge_pages=try could not get them */
	size_t page_size;    /* what /proc/self/smaps says the data part got */
	double create_seconds; /* how long segment_create (or _adopt) took */
	bool adopted;	       /* mapped by segment_adopt, not created */
	bool was_clean; /* adopted: the last server had stopped cleanly */
};

/*
 * segment_create - create and map both parts and write the header.
 * Returns 0, or a negative errno with a message in err saying what failed,
 * the sizes involved and what to do.  On failure nothing is left behind.
 */
int segment_create(struct segment *seg, const struct segment_options *opt,
		   char *err, size_t errlen);

/*
 * segment_attach - map parts created by another process.  The data part is
 * mapped read-only (even if the fd would allow more); the control part
 * read-write.  Validates magic, layout version and sizes against the fds.
 * Takes ownership of both fds, also on failure.
 */
int segment_attach(struct segment *seg, int data_fd, int ctl_fd, char *err,
		   size_t errlen);

/*
 * segment_adopt - map a memory file's parts, both read-write, for a server
 * that may take the segment over (or a running server's memfds, handed to
 * the new binary of a live upgrade: the caller checks the backing).  Validates them as segment_attach does
 * (the files could hold anything) and records in seg->was_clean whether the
 * last server stopped cleanly, but writes nothing: the caller compares the
 * header's settings first, and a segment it refuses is left as it was.
 * Takes ownership of both fds, also on failure.
 */
int segment_adopt(struct segment *seg, int data_fd, int ctl_fd, char *err,
		  size_t errlen);

/*
 * segment_take_over - make an adopted segment this process's: creator PID,
 * clean_stop 0 (from now on a death is a crash), clock now, state RUNNING;
 * with prefault, fault every page in.  0 or -errno with err set.
 */
int segment_take_over(struct segment *seg, bool prefault, char *err,
		      size_t errlen);

/*
 * segment_mark_clean - state SHUTDOWN, then clean_stop 1.  The caller
 * guarantees that no server process is inside the segment any more and that
 * nothing is half done (every dead process recovered).
 */
void segment_mark_clean(struct segment *seg);

/* segment_detach - unmap both parts and close their fds; idempotent. */
void segment_detach(struct segment *seg);

/*
 * segment_alloc - allocate a named region of size bytes in part, aligned to
 * SEGMENT_ALIGN and zeroed.  Creator only.  -ENOSPC if the part is full,
 * -EEXIST if the name is taken, -ENAMETOOLONG, -EROFS if read-only.
 */
int segment_alloc(struct segment *seg, enum segment_part part, const char *name,
		  uint64_t size, uint64_t *offset);

/* segment_find - 0 and the region, or -ENOENT; every field bounds-checked. */
int segment_find(const struct segment *seg, const char *name,
		 enum segment_part *part, uint64_t *offset, uint64_t *size);

/* segment_ptr - the address of [offset, offset+len) in part, or NULL. */
void *segment_ptr(const struct segment *seg, enum segment_part part,
		  uint64_t offset, uint64_t len);

/* segment_readonly_fd - a new O_RDONLY fd of the data part, or -errno. */
int segment_readonly_fd(const struct segment *seg);

static inline struct segment_header *segment_header(const struct segment *seg)
{
	return (struct segment_header *)seg->data;
}

/* The coarse clock; relaxed, since a second's staleness is its contract. */
static inline uint32_t segment_clock(const struct segment *seg)
{
	return atomic_load_explicit(&segment_header(seg)->clock,
				    memory_order_relaxed);
}

static inline void segment_set_clock(struct segment *seg, uint32_t now)
{
	atomic_store_explicit(&segment_header(seg)->clock, now,
			      memory_order_relaxed);
}

#endif
