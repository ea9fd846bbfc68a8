/*
 * cache.h - the whole shared cache: segment, proc slots and table together
 *
 * What the server creates at start and what a client program attaches to.
 * It sizes the segment from the table's needs, allocates the proc array
 * ("procs", control part) and the table, and gives each process its proc
 * slot so that it can take LWLocks.
 *
 * A process forked from the creator inherits the mappings at the same
 * addresses but must claim a slot of its own (cache_claim_proc) before it
 * touches the table.
 *
 * Interface routines:
 *   cache_create        create segment, procs and table (supervisor)
 *   cache_attach        map a segment received as fds (client program)
 *   cache_adopt_proc    make a slot claimed for this process its lock owner
 *   cache_claim_proc    take a proc slot for this process and adopt it
 *   cache_adopt         map a memory file a previous server left (server)
 *   cache_settings      the settings cache_create records in the header
 *   cache_release_proc  give it back
 *   cache_destroy       release the slot, unmap, close
 */
#ifndef SHMKV_CACHE_H
#define SHMKV_CACHE_H

#include <stdint.h>

#include "proc.h"
#include "segment.h"
#include "table.h"

#define CACHE_DEFAULT_PROCS 256u

struct cache_config {
	struct table_config table;
	struct segment_options seg; /* data_size and ctl_size are computed */
	uint32_t max_procs;	    /* 0 = CACHE_DEFAULT_PROCS */
	uint64_t extra_ctl_bytes;   /* room for the server's own regions */
};

struct cache {
	struct segment seg;
	struct proc_array *procs;
	uint32_t nprocs;
	uint32_t self; /* PROC_NONE until a slot is claimed */
	/* proc_get of self, resolved once by cache_adopt_proc (a lookup
	 * counts into it); NULL without a slot. */
	struct proc *self_proc;
	struct table table;
};

int cache_create(struct cache *c, const struct cache_config *cfg, char *err,
		 size_t errlen);
int cache_attach(struct cache *c, int data_fd, int ctl_fd, char *err,
		 size_t errlen);

/* cache_adopt_proc - 0, or -ERANGE for a slot beyond the array. */
int cache_adopt_proc(struct cache *c, uint32_t slot);
/*
 * cache_adopt - map a memory file's parts read-write (segment_adopt) and
 * find the proc array and the table in them, validated as cache_attach
 * does.  Writes nothing: the caller compares the header's settings with
 * cache_settings of its own config before segment_take_over.  Owns the fds.
 */
int cache_adopt(struct cache *c, int data_fd, int ctl_fd, char *err,
		size_t errlen);

/*
 * cache_settings - what cache_create records in the header for cfg: the
 * table's settings with defaults filled in, the proc count and the extra
 * control bytes, plus cfg->seg.settings' port and run directory.
 */
void cache_settings(const struct cache_config *cfg, struct segment_settings *out);

/* cache_claim_proc - 0, or -EAGAIN when every proc slot is taken. */
int cache_claim_proc(struct cache *c);
void cache_release_proc(struct cache *c);
void cache_destroy(struct cache *c);

#endif
