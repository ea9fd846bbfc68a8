/*
 * cache.c - the whole shared cache: segment, proc slots and table together
 *
 * The supervisor creates the cache once; workers inherit it by fork and
 * claim proc slots of their own; client programs attach to it from the fds
 * the server hands them.  This file only assembles: the sizing rules live
 * with the table, the mapping rules with the segment.
 *
 * Interface routines: cache_create, cache_attach, cache_adopt,
 * cache_settings, cache_adopt_proc, cache_claim_proc, cache_release_proc,
 * cache_destroy (see cache.h).
 */
#include "cache.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "errbuf.h"

#define CACHE_PROCS_REGION "procs"

void cache_settings(const struct cache_config *cfg, struct segment_settings *out)
{
	*out = cfg->seg.settings;
	out->memory = cfg->table.memory;
	out->partitions = cfg->table.partitions ? cfg->table.partitions
						: TABLE_DEFAULT_PARTITIONS;
	out->max_item_size = cfg->table.max_item_size ? cfg->table.max_item_size
						      : TABLE_DEFAULT_MAX_ITEM;
	out->item_size_hint = cfg->table.item_size_hint;
	out->max_procs = cfg->max_procs ? cfg->max_procs : CACHE_DEFAULT_PROCS;
	out->extra_ctl_bytes = cfg->extra_ctl_bytes;
}

/*
 * cache_create - create the segment sized for cfg, then the proc array and
 * the table in it.  On failure nothing is left mapped and err says why.
 */
int cache_create(struct cache *c, const struct cache_config *cfg, char *err,
		 size_t errlen)
{
	uint64_t table_data = 0;
	uint64_t table_ctl = 0;
	uint64_t off = 0;
	int rc;

	memset(c, 0, sizeof(*c));
	c->self = PROC_NONE;
	c->seg.data_fd = -1;
	c->seg.ctl_fd = -1;
	c->nprocs = cfg->max_procs ? cfg->max_procs : CACHE_DEFAULT_PROCS;

	rc = table_layout_size(&cfg->table, &table_data, &table_ctl);
	if (rc < 0) {
		uint32_t parts = cfg->table.partitions
					 ? cfg->table.partitions
					 : TABLE_DEFAULT_PARTITIONS;
		uint32_t max_item = cfg->table.max_item_size
					    ? cfg->table.max_item_size
					    : TABLE_DEFAULT_MAX_ITEM;

		if ((parts & (parts - 1)) != 0)
			errbuf_set(err, errlen,
				   "%u partitions: the count must be "
				   "a power of two",
				   parts);
		else
			errbuf_set(err, errlen,
				   "%llu bytes in %u partitions leave each too "
				   "small for an item of %u bytes; give it more "
				   "memory, fewer partitions or a smaller item "
				   "size limit",
				   (unsigned long long)cfg->table.memory, parts,
				   max_item);
		return rc;
	}

	/* Each region is rounded up to SEGMENT_ALIGN, hence the slack. */
	struct segment_options opts = cfg->seg;
	opts.data_size = table_data + 4 * SEGMENT_ALIGN;
	opts.ctl_size = proc_array_size(c->nprocs) + table_ctl +
			cfg->extra_ctl_bytes + 8 * SEGMENT_ALIGN;
	cache_settings(cfg, &opts.settings);

	rc = segment_create(&c->seg, &opts, err, errlen);
	if (rc < 0)
		return rc;

	rc = segment_alloc(&c->seg, SEGMENT_CTL, CACHE_PROCS_REGION,
			   proc_array_size(c->nprocs), &off);
	if (rc < 0) {
		errbuf_set(err, errlen, "cannot allocate the proc slots: %s",
			   strerror(-rc));
		goto fail;
	}
	c->procs = segment_ptr(&c->seg, SEGMENT_CTL, off,
			       proc_array_size(c->nprocs));
	proc_array_init(c->procs, c->nprocs);

	rc = table_create(&c->table, &c->seg, &cfg->table);
	if (rc < 0) {
		errbuf_set(err, errlen, "cannot create the table: %s",
			   strerror(-rc));
		goto fail;
	}
	return 0;

fail:
	segment_detach(&c->seg);
	return rc;
}

/*
 * find_regions - the proc array and the table of a segment mapped by
 * another process's hand.  Every size read from the segment is checked
 * against the region it claims to fit in.  On failure seg is detached.
 */
static int find_regions(struct cache *c, char *err, size_t errlen)
{
	enum segment_part part;
	uint64_t off = 0;
	uint64_t size = 0;
	int rc;

	rc = segment_find(&c->seg, CACHE_PROCS_REGION, &part, &off, &size);
	if (rc < 0 || part != SEGMENT_CTL || size < proc_array_size(0)) {
		rc = rc < 0 ? rc : -EPROTO;
		errbuf_set(err, errlen, "the segment has no valid proc array: %s",
			   strerror(-rc));
		goto fail;
	}
	c->procs = segment_ptr(&c->seg, SEGMENT_CTL, off, size);
	/* The count lives in writable memory: trust it only as far as the
	 * region it sits in allows. */
	c->nprocs = c->procs != NULL ? c->procs->count : 0;
	if (c->procs == NULL || proc_array_size(c->nprocs) > size) {
		rc = -EPROTO;
		errbuf_set(err, errlen,
			   "the proc array's count exceeds its region: %s",
			   strerror(-rc));
		goto fail;
	}

	rc = table_open(&c->table, &c->seg);
	if (rc < 0) {
		errbuf_set(err, errlen, "the segment has no valid table: %s",
			   strerror(-rc));
		goto fail;
	}
	return 0;

fail:
	segment_detach(&c->seg);
	return rc;
}

/*
 * cache_attach - map a cache created by another process and find its proc
 * array and table.  Takes ownership of the fds.
 */
int cache_attach(struct cache *c, int data_fd, int ctl_fd, char *err,
		 size_t errlen)
{
	int rc;

	memset(c, 0, sizeof(*c));
	c->self = PROC_NONE;
	rc = segment_attach(&c->seg, data_fd, ctl_fd, err, errlen);
	if (rc < 0)
		return rc;
	return find_regions(c, err, errlen);
}

int cache_adopt(struct cache *c, int data_fd, int ctl_fd, char *err, size_t errlen)
{
	int rc;

	memset(c, 0, sizeof(*c));
	c->self = PROC_NONE;
	rc = segment_adopt(&c->seg, data_fd, ctl_fd, err, errlen);
	if (rc < 0)
		return rc;
	return find_regions(c, err, errlen);
}

/*
 * cache_adopt_proc - make slot, claimed for this process (by itself or, for
 * a client program, by the server), the table's lock owner.  -ERANGE for a
 * slot number beyond the mapped array: it came from another process.
 */
int cache_adopt_proc(struct cache *c, uint32_t slot)
{
	if (slot >= c->nprocs)
		return -ERANGE;
	c->self = slot;
	c->self_proc = proc_get(c->procs, c->nprocs, slot);
	struct lwlock_owner owner = {
		.ctl_base = c->seg.ctl,
		.ctl_size = c->seg.ctl_size,
		.procs = c->procs,
		.nprocs = c->nprocs,
		.self = slot,
	};
	table_set_owner(&c->table, &owner);
	return 0;
}

/*
 * cache_claim_proc - take a proc slot for the calling process and adopt it.
 * Call once in each server process, after fork.
 */
int cache_claim_proc(struct cache *c)
{
	uint32_t slot = PROC_NONE;
	int rc = proc_claim(c->procs, c->nprocs, getpid(), &slot);

	return rc < 0 ? rc : cache_adopt_proc(c, slot);
}

/* cache_release_proc - give the slot back; the process must hold no lock. */
void cache_release_proc(struct cache *c)
{
	if (c->self == PROC_NONE || c->procs == NULL)
		return;
	proc_release(c->procs, c->nprocs, c->self);
	c->self = PROC_NONE;
	c->self_proc = NULL;
}

/* cache_destroy - release the slot, unmap both parts, close their fds. */
void cache_destroy(struct cache *c)
{
	cache_release_proc(c);
	segment_detach(&c->seg);
	c->procs = NULL;
}
