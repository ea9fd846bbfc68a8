/*
 * segment_internal.h - what segment.c, segment_map.c and segment_file.c share
 *
 * The layout constants of the fixed area at the start of each part and the
 * helpers all three need: checked arithmetic, the empty state,
 * faulting pages in and writing a new segment's headers.  Not for anyone
 * outside the segment.
 */
#ifndef SHMKV_SEGMENT_INTERNAL_H
#define SHMKV_SEGMENT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "segment.h"

#define ALIGN_UP_CONST(x, a) (((x) + ((a)-1)) / (a) * (a))

/* Where things are in the data part: header, then the directory, then regions. */
#define SEGMENT_HEADER_SPACE \
	ALIGN_UP_CONST(sizeof(struct segment_header), SEGMENT_ALIGN)
#define SEGMENT_DIR_SPACE \
	ALIGN_UP_CONST(SEGMENT_DIR_CAPACITY * sizeof(struct segment_dir_entry), \
		       SEGMENT_ALIGN)
#define SEGMENT_CTL_HEADER_SPACE \
	ALIGN_UP_CONST(sizeof(struct segment_ctl_header), SEGMENT_ALIGN)

/*
 * SEGMENT_OVERHEAD - what segment_create adds to each part's requested size:
 * the header and directory, and the padding of up to SEGMENT_DIR_CAPACITY
 * regions to SEGMENT_ALIGN.  So a caller that asks for data_size (ctl_size)
 * can allocate regions whose unrounded sizes add up to that many bytes, in
 * as many regions as the directory holds.  The control part needs less (its
 * header is smaller and it has no directory) but gets the same, to keep the
 * rule one number.
 */
#define SEGMENT_OVERHEAD \
	(SEGMENT_HEADER_SPACE + SEGMENT_DIR_SPACE + \
	 SEGMENT_DIR_CAPACITY * (SEGMENT_ALIGN - 1))

/* segment_range_ok - does [offset, offset+len) lie inside [0, size)?
 * Cannot overflow. */
static inline bool segment_range_ok(uint64_t offset, uint64_t len, uint64_t size)
{
	return offset <= size && len <= size - offset;
}

/* segment_part_size - need rounded up to whole pages of page, if that fits
 * in size_t and off_t; else false. */
bool segment_part_size(uint64_t need, size_t page, size_t *size);

double segment_now_seconds(void);

/* segment_reset - the empty state: nothing mapped, no fds (-1, not 0). */
void segment_reset(struct segment *seg);

/* segment_release - unmap and close whatever is there, then reset. */
void segment_release(struct segment *seg);

/* segment_populate - fault [addr, addr+len) in writable, page by page. */
int segment_populate(unsigned char *addr, size_t len, size_t page);

/* segment_write_headers - a new segment's header and control header. */
void segment_write_headers(struct segment *seg,
			   const struct segment_options *opt);

/* segment_create_files - segment_create's memory-file case (segment_file.c). */
int segment_create_files(struct segment *seg, const struct segment_options *opt,
			 char *err, size_t errlen);

#endif
