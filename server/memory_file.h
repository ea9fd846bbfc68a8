/*
 * memory_file.h - the segment in files that outlive the server (-e PATH)
 *
 * With --memory-file PATH the supervisor keeps the segment's data part in
 * PATH and its control part in PATH.ctl instead of memfds.  A start finds
 * one of: no file (or an empty one): a new segment is made in it; a
 * segment a server stopped cleanly: adopted as it is; one whose server died:
 * adopted, then every proc slot that server's processes left is recovered
 * (a partition a dead writer held exclusive is emptied); one made with
 * other settings, another layout version or by another server: refused,
 * saying what differs (--memory-file-reset starts cold instead); a file that
 * is not a shmkv segment, or one that a live server holds: refused, always.
 * See memory_file.c.
 *
 * Without --memory-file every routine does what the server did before:
 * cache_create, a fresh "server.stats" region, no recovery, cache_destroy.
 *
 * Interface routines:
 *   memory_file_open_cache    create, or adopt, the cache
 *   memory_file_adopt_running take over a running server's (live upgrade)
 *   memory_file_stats_region  the workers' counters: allocated, or found
 *   memory_file_recover       after a crash: recover what the dead left
 *   memory_file_stopped       the server stopped; may the file be marked clean
 *   memory_file_close         mark clean if so, then unmap (files stay)
 */
#ifndef SHMKV_MEMORY_FILE_H
#define SHMKV_MEMORY_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache.h"
#include "config.h"
#include "recovery.h"

#define MEMORY_FILE_CTL_SUFFIX ".ctl"

struct memory_file {
	const struct server_config *cfg;
	struct cache *cache;
	bool used;	    /* --memory-file given */
	bool stopped_whole; /* memory_file_stopped(true) was called */
	bool running;	    /* taken over from a running server (upgrade) */
	char ctl_path[CONFIG_PATH_MAX + sizeof(MEMORY_FILE_CTL_SUFFIX)];
};

/*
 * memory_file_open_cache - the cache for cfg in c: with --memory-file
 * adopted from the files if they fit, else made new in them; without,
 * cache_create.  cc describes the cache this start would create.  0, or
 * -errno with the reason (what differs, what to do) in err and nothing
 * written to a file that was refused.
 */
int memory_file_open_cache(struct memory_file *mf,
			   const struct server_config *cfg,
			   const struct cache_config *cc, struct cache *c,
			   char *err, size_t errlen);

/*
 * memory_file_adopt_running - a live upgrade: the segment of the running
 * server, whose descriptors this process inherited (memfds, or its memory
 * file, already locked), checked as a memory file is (layout version,
 * settings, backing) and taken over.  Its processes go on using it: no
 * recovery, and its counters are kept.  0, or -errno with err set and
 * nothing written.
 */
int memory_file_adopt_running(struct memory_file *mf,
			      const struct server_config *cfg,
			      const struct cache_config *cc, struct cache *c,
			      int data_fd, int ctl_fd, char *err, size_t errlen);

/*
 * memory_file_stats_region - the "server.stats" region of size bytes: a new
 * one in a new segment; in an adopted one the old region, zeroed (counters
 * are per run, as memcached's), if it is at least that large.
 */
int memory_file_stats_region(struct memory_file *mf, uint64_t size,
			     uint64_t *offset);

/*
 * memory_file_recover - for a segment adopted from a server that did not
 * stop cleanly: recover every proc slot it left, then drop any partition a
 * writer stopped inside of.  Call after recovery_init, before any worker
 * runs.  Logs what it did.
 */
void memory_file_recover(struct memory_file *mf, struct recovery *r);

/* memory_file_stopped - every worker is gone; whole: nothing is left half
 * recovered, so the segment may be marked clean at close. */
void memory_file_stopped(struct memory_file *mf, bool whole);

/* memory_file_close - an onexit callback (arg: the memory_file): state
 * SHUTDOWN for clients, the clean mark if stopped whole, then unmap. */
void memory_file_close(void *arg);

#endif
