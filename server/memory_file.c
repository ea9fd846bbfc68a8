/*
 * memory_file.c - the segment in files that outlive the server (-e PATH)
 *
 * memcached's -e keeps its items across a restart only after a clean stop
 * with the same settings, and rebuilds its hash table by walking every
 * item.  Our whole table already lives in the segment and is reached by
 * offsets, so a server that finds the segment's files can serve from them
 * at once: adoption maps the files and checks their headers, and walks no
 * item.  What this file decides is whether it may.
 *
 * The files.  PATH holds the data part and PATH.ctl the control part (two
 * files because client programs get the data part read-only and the
 * control part writable, as with memfds).  They are created mode 0600 with
 * O_EXCL and O_NOFOLLOW; an existing one must be a regular file of this
 * user that group and others cannot open.
 *
 * The lock.  The interlock (interlock.c) keeps a second server off our port
 * and run directory; it does not cover a memory file, which a server on
 * another port may name too.  So the data file gets a lock of its own:
 * flock(LOCK_EX) on its descriptor, which the workers inherit by fork.  A
 * flock belongs to the open file description, so it lasts until the last
 * process of this server has exited, like the shim's attach count, and the
 * kernel drops it however they die.  Client programs never hold it: they get
 * a descriptor reopened read-only, a description of its own.  NOTE: the
 * lock rather than the creator PID in the header, which can be reused, and
 * which says nothing about orphaned workers.
 *
 * What a start finds, and does:
 *   - no file, or an empty one (created, or truncated by a failed start):
 *     a new segment in it;
 *   - a file that is not ours (no shmkv magic): refused, --memory-file-reset
 *     or not; we never overwrite what we did not make;
 *   - a segment of ours a live server holds (the lock): refused, always;
 *   - a segment of another layout version, made with other settings (-m,
 *     -I, --partitions, ...) or by another server (port, run directory), or
 *     one that is incomplete: refused with what differs, unless
 *     --memory-file-reset, which starts cold in the same files;
 *   - otherwise adopted.  If its last server stopped cleanly (the header's
 *     clean_stop), it is used as it is.  If not, that server died with its
 *     processes maybe inside locks: recovery_adopted runs for every proc
 *     slot the same recovery a dead worker gets, which empties a partition
 *     a dead process held exclusive and keeps the rest.
 * A refused segment is never written: the checks run on what
 * segment_adopt mapped before segment_take_over changes anything.
 *
 * Interface routines: see memory_file.h.
 */
#include "memory_file.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "table.h"

enum file_kind {
	FILE_EMPTY,   /* no bytes: free to use */
	FILE_OURS,    /* starts with our magic */
	FILE_FOREIGN, /* anything else */
};

/*
 * open_part - open (creating if missing, mode 0600) the file of one part,
 * and check that it is a regular file of ours that only we may open.
 */
static int open_part(const char *path, int *fdp, char *err, size_t errlen)
{
	struct stat st;
	int fd, rc;

	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd >= 0 && fchmod(fd, 0600) < 0) /* past the umask, never wider */
		goto fail_errno;
	if (fd < 0 && errno == EEXIST)
		fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		goto fail_errno;
	if (fstat(fd, &st) < 0)
		goto fail_errno;
	if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & 077) != 0) {
		snprintf(err, errlen,
			 "memory file %s is %s; it is not ours to use: "
			 "remove it yourself or choose another --memory-file",
			 path,
			 !S_ISREG(st.st_mode) ? "not a regular file"
			 : st.st_uid != geteuid()
				 ? "owned by another user"
				 : "open to group or others (it must be mode 0600)");
		close(fd);
		return -EPERM;
	}
	*fdp = fd;
	return 0;

fail_errno:
	rc = -errno;
	snprintf(err, errlen, "cannot open memory file %s: %s%s", path,
		 strerror(-rc), rc == -ELOOP ? " (it is a symbolic link)" : "");
	if (fd >= 0)
		close(fd);
	return rc;
}

/* kind_of - empty, ours (magic at offset 0) or somebody else's. */
static int kind_of(int fd, uint64_t magic, enum file_kind *kind)
{
	struct stat st;
	uint64_t have = 0;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (st.st_size == 0) {
		*kind = FILE_EMPTY;
		return 0;
	}
	if (pread(fd, &have, sizeof(have), 0) != (ssize_t)sizeof(have))
		have = 0;
	*kind = have == magic ? FILE_OURS : FILE_FOREIGN;
	return 0;
}

/*
 * lock_data - take the memory file's lock (see the top), or say who holds
 * it: the PID and port the header names, since only a server of ours takes
 * it.
 */
static int lock_data(int fd, const char *path, char *err, size_t errlen)
{
	struct segment_header h;
	int rc;

	if (flock(fd, LOCK_EX | LOCK_NB) == 0)
		return 0;
	rc = -errno;
	if (rc != -EWOULDBLOCK) {
		snprintf(err, errlen, "cannot lock memory file %s: %s", path,
			 strerror(-rc));
		return rc;
	}
	memset(&h, 0, sizeof(h));
	if (pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h))
		memset(&h, 0, sizeof(h));
	snprintf(err, errlen,
		 "memory file %s is in use by another running server "
		 "(pid %d, port %d); stop it first, or give this one another "
		 "--memory-file",
		 path, (int)h.creator_pid, (int)h.settings.port);
	return -EBUSY;
}

/* want_settings - what this start would record in a new segment's header. */
static void want_settings(const struct server_config *cfg,
			  const struct cache_config *cc, struct cache_config *out)
{
	*out = *cc;
	out->seg.settings.port = cfg->port;
	out->seg.settings.run_dir_hash = table_hash(cfg->run_dir,
						    strlen(cfg->run_dir));
	snprintf(out->seg.settings.run_dir, sizeof(out->seg.settings.run_dir),
		 "%s", cfg->run_dir);
}

#define DIFF(cond, ...) \
	do { \
		if ((cond) && n < len) \
			n += snprintf(buf + n, len - n, "%s", n ? "; " : ""); \
		if ((cond) && n < len) \
			n += snprintf(buf + n, len - n, __VA_ARGS__); \
	} while (0)

/* settings_differ - what of have differs from want, for the message;
 * false if nothing does. */
static bool settings_differ(const struct segment_settings *have,
			    const struct segment_settings *want, char *buf,
			    size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	DIFF(have->memory != want->memory,
	     "made with -m %" PRIu64 " (this start: -m %" PRIu64 ")",
	     have->memory >> 20, want->memory >> 20);
	DIFF(have->max_item_size != want->max_item_size,
	     "made with -I %" PRIu32 " (this start: -I %" PRIu32 ")",
	     have->max_item_size, want->max_item_size);
	DIFF(have->partitions != want->partitions,
	     "made with %" PRIu32 " partitions (this start: %" PRIu32 ")",
	     have->partitions, want->partitions);
	DIFF(have->item_size_hint != want->item_size_hint ||
		     have->max_procs != want->max_procs ||
		     have->extra_ctl_bytes != want->extra_ctl_bytes,
	     "made with other internal sizes (item hint %" PRIu32 ", %" PRIu32
	     " proc slots, %" PRIu64 " control bytes)",
	     have->item_size_hint, have->max_procs, have->extra_ctl_bytes);
	DIFF(have->port != want->port || have->run_dir_hash != want->run_dir_hash,
	     "made by the server on port %" PRId32 " with run directory %.128s "
	     "(this one: port %" PRId32 ", %.128s)",
	     have->port, have->run_dir, want->port, want->run_dir);
	return n > 0;
}

/* check_version - refuse another layout version before mapping anything. */
static int check_version(int fd, const char *path, const char *hint, char *err,
			 size_t errlen)
{
	struct {
		uint64_t magic;
		uint32_t layout_version;
	} h;

	if (pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h))
		h.layout_version = 0;
	if (h.layout_version == SEGMENT_LAYOUT_VERSION)
		return 0;
	if (h.layout_version == 0) {
		snprintf(err, errlen,
			 "memory file %s was left incomplete by a "
			 "server that died while making it%s",
			 path, hint);
		return -EPROTO;
	}
	snprintf(err, errlen,
		 "memory file %s has layout version %" PRIu32
		 ", this server knows %u: its items cannot be kept%s",
		 path, h.layout_version, SEGMENT_LAYOUT_VERSION, hint);
	return -EPROTO;
}

/*
 * adopt_checked - map the files, check them against this start, and take them
 * over.  Owns the fds.
 */
static int adopt_checked(struct memory_file *mf,
			 const struct cache_config *want, struct cache *c,
			 int data_fd, int ctl_fd, char *err, size_t errlen)
{
	const char *path = mf->used ? mf->cfg->memory_file : "(memfd)";
	/* A refused upgrade changes nothing: there is nothing to reset. */
	const char *hint = mf->running
				   ? "; the running server goes on serving"
				   : "; add --memory-file-reset to start cold";
	struct segment_settings ws;
	char why[768];
	int rc;

	rc = check_version(data_fd, path, hint, err, errlen);
	if (rc < 0) {
		close(data_fd);
		close(ctl_fd);
		return rc;
	}
	rc = cache_adopt(c, data_fd, ctl_fd, why, sizeof(why));
	if (rc < 0) {
		snprintf(err, errlen, "memory file %s cannot be adopted: %s%s",
			 path, why, hint);
		return rc;
	}
	if (segment_header(&c->seg)->backing !=
	    (mf->used ? SEGMENT_BACKING_FILE : SEGMENT_BACKING_MEMFD)) {
		snprintf(err, errlen, "the segment is %s, but this start %s",
			 mf->used ? "in memfds" : "a memory file",
			 mf->used ? "names a --memory-file"
				  : "names no --memory-file");
		cache_destroy(c);
		return -EINVAL;
	}
	if ((mf->cfg->huge_pages == SEGMENT_HUGE_ON && !c->seg.huge) ||
	    (mf->cfg->huge_pages == SEGMENT_HUGE_OFF && c->seg.huge)) {
		snprintf(err, errlen,
			 "memory file %s is on %s pages, but this start "
			 "asks for --huge-pages %s; use --huge-pages try, or a memory "
			 "file on %s",
			 path, c->seg.huge ? "huge" : "normal",
			 config_huge_pages_name(mf->cfg->huge_pages),
			 c->seg.huge ? "tmpfs (/dev/shm)" : "a hugetlbfs mount");
		cache_destroy(c);
		return -EINVAL;
	}
	c->seg.huge_fell_back = mf->cfg->huge_pages == SEGMENT_HUGE_TRY &&
				!c->seg.huge;
	cache_settings(want, &ws);
	if (settings_differ(&segment_header(&c->seg)->settings, &ws, why,
			    sizeof(why))) {
		snprintf(err, errlen,
			 "memory file %s does not fit this start: %s; "
			 "start with the same settings to keep its items%s",
			 path, why,
			 mf->running ? ""
				     : ", or add --memory-file-reset to "
				       "start cold");
		cache_destroy(c);
		return -EINVAL;
	}
	rc = segment_take_over(&c->seg, mf->cfg->prefault, why, sizeof(why));
	if (rc < 0) {
		snprintf(err, errlen, "memory file %s: %s", path, why);
		cache_destroy(c);
	}
	return rc;
}

/* open_files - both parts open and the data part locked, or why not. */
static int open_files(struct memory_file *mf, int *data_fd, int *ctl_fd,
		      enum file_kind *data_kind, enum file_kind *ctl_kind,
		      char *err, size_t errlen)
{
	const char *path = mf->cfg->memory_file;
	int rc;

	*ctl_fd = -1;
	rc = open_part(path, data_fd, err, errlen);
	if (rc < 0)
		return rc;
	rc = lock_data(*data_fd, path, err, errlen);
	if (rc == 0)
		rc = open_part(mf->ctl_path, ctl_fd, err, errlen);
	if (rc == 0)
		rc = kind_of(*data_fd, SEGMENT_MAGIC, data_kind);
	if (rc == 0)
		rc = kind_of(*ctl_fd, SEGMENT_CTL_MAGIC, ctl_kind);
	if (rc == 0 && (*data_kind == FILE_FOREIGN || *ctl_kind == FILE_FOREIGN)) {
		snprintf(err, errlen,
			 "memory file %s is not a shmkv segment; it is "
			 "not ours to overwrite: remove it yourself or choose "
			 "another --memory-file",
			 *data_kind == FILE_FOREIGN ? path : mf->ctl_path);
		rc = -EEXIST;
	}
	if (rc == 0 && *data_kind == FILE_OURS && *ctl_kind == FILE_EMPTY &&
	    !mf->cfg->memory_file_reset) {
		snprintf(err, errlen,
			 "memory file %s has no control part (%s is "
			 "missing or empty), so it cannot be adopted; add "
			 "--memory-file-reset to start cold",
			 path, mf->ctl_path);
		rc = -ENOENT;
	}
	if (rc < 0) {
		close(*data_fd);
		if (*ctl_fd >= 0)
			close(*ctl_fd);
	}
	return rc;
}

/*
 * memory_file_init - mf for a start with cfg whose cache is c, nothing
 * opened yet; running: it takes over a running server's segment (a live
 * upgrade).  *want is what this start would record in a new segment's
 * header, and what an adopted one must have been made with.
 */
static void memory_file_init(struct memory_file *mf,
			     const struct server_config *cfg,
			     const struct cache_config *cc, struct cache *c,
			     bool running, struct cache_config *want)
{
	memset(mf, 0, sizeof(*mf));
	mf->cfg = cfg;
	mf->cache = c;
	mf->used = cfg->memory_file[0] != '\0';
	mf->running = running;
	snprintf(mf->ctl_path, sizeof(mf->ctl_path), "%s%s", cfg->memory_file,
		 MEMORY_FILE_CTL_SUFFIX);
	want_settings(cfg, cc, want);
}

int memory_file_open_cache(struct memory_file *mf,
			   const struct server_config *cfg,
			   const struct cache_config *cc, struct cache *c,
			   char *err, size_t errlen)
{
	struct cache_config want;
	enum file_kind data_kind = FILE_EMPTY, ctl_kind = FILE_EMPTY;
	int data_fd, ctl_fd, rc;

	memory_file_init(mf, cfg, cc, c, false, &want);
	if (!mf->used)
		return cache_create(c, &want, err, errlen);
	rc = open_files(mf, &data_fd, &ctl_fd, &data_kind, &ctl_kind, err,
			errlen);
	if (rc < 0)
		return rc;
	if (data_kind == FILE_OURS && !cfg->memory_file_reset)
		return adopt_checked(mf, &want, c, data_fd, ctl_fd, err, errlen);
	want.seg.in_files = true;
	want.seg.file_data_fd = data_fd;
	want.seg.file_ctl_fd = ctl_fd;
	return cache_create(c, &want, err, errlen);
}

int memory_file_adopt_running(struct memory_file *mf,
			      const struct server_config *cfg,
			      const struct cache_config *cc, struct cache *c,
			      int data_fd, int ctl_fd, char *err, size_t errlen)
{
	struct cache_config want;
	struct stat have, named;

	memory_file_init(mf, cfg, cc, c, true, &want);
	/* Another --memory-file than the running server's would be a
	 * second segment, not this one. */
	if (mf->used &&
	    (fstat(data_fd, &have) < 0 || stat(cfg->memory_file, &named) < 0 ||
	     have.st_dev != named.st_dev || have.st_ino != named.st_ino)) {
		snprintf(err, errlen,
			 "--memory-file %s is not the running server's "
			 "memory file",
			 cfg->memory_file);
		close(data_fd);
		close(ctl_fd);
		return -EINVAL;
	}
	return adopt_checked(mf, &want, c, data_fd, ctl_fd, err, errlen);
}

int memory_file_stats_region(struct memory_file *mf, uint64_t size,
			     uint64_t *offset)
{
	struct segment *seg = &mf->cache->seg;
	enum segment_part part;
	uint64_t have = 0;
	void *p;
	int rc;

	if (!seg->adopted)
		return segment_alloc(seg, SEGMENT_CTL, "server.stats", size,
				     offset);
	rc = segment_find(seg, "server.stats", &part, offset, &have);
	if (rc < 0)
		return rc;
	p = segment_ptr(seg, SEGMENT_CTL, *offset, size);
	if (part != SEGMENT_CTL || have < size || p == NULL)
		return -EPROTO;
	/* A running server's workers still count in it, beside ours. */
	if (!mf->running)
		memset(p, 0, size);
	return 0;
}

void memory_file_recover(struct memory_file *mf, struct recovery *r)
{
	struct segment *seg = &mf->cache->seg;
	struct table_stats st;
	uint32_t dropped = 0, busy = 0;
	int rc;

	if (mf->running) {
		table_stats_total(&mf->cache->table, &st);
		SERVER_LOG("took over the running server's segment: %" PRIu64
			   " items kept",
			   st.items);
		return;
	}
	if (seg->adopted && !seg->was_clean) {
		recovery_adopted(r);
		for (uint32_t p = 0; p < mf->cache->table.npartitions; p++) {
			rc = table_partition_drop_if_torn(&mf->cache->table, p);
			dropped += rc == 1;
			busy += rc == -EBUSY;
		}
		if (dropped > 0 || busy > 0)
			SERVER_LOG("dropped %u partition(s) a writer had left half "
				   "changed%s",
				   dropped,
				   busy > 0 ? "; some locks were "
					      "still held, not checked"
					    : "");
	}
	if (!seg->adopted)
		return;
	table_stats_total(&mf->cache->table, &st);
	SERVER_LOG("adopted memory file %s in %.3f s: %s, %" PRIu64
		   " items kept%s",
		   mf->cfg->memory_file, seg->create_seconds,
		   seg->was_clean
			   ? "its last server stopped cleanly"
			   : "its last server died; recovered what its processes left",
		   st.items,
		   r->pending > 0 ? " (some locks still being recovered)" : "");
}

void memory_file_stopped(struct memory_file *mf, bool whole)
{
	mf->stopped_whole = whole;
}

void memory_file_close(void *arg)
{
	struct memory_file *mf = arg;
	struct cache *c = mf->cache;

	/* The supervisor's own slot first: a clean segment has no live slot
	 * of a server process in it. */
	cache_release_proc(c);
	if (mf->used && mf->stopped_whole)
		segment_mark_clean(&c->seg);
	else
		/* Client programs attached to the segment learn that it is gone. */
		atomic_store_explicit(&segment_header(&c->seg)->state,
				      SEGMENT_STATE_SHUTDOWN,
				      memory_order_release);
	cache_destroy(c);
}
