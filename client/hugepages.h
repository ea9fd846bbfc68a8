/*
 * hugepages.h - what the kernel says about huge pages (internal to libshmkv)
 *
 * The segment asks the kernel for hugetlb pages and reports the page size a
 * mapping really got.  Both need the kernel's own account: /proc/meminfo for
 * the default huge page size, /proc/self/smaps for a mapping's page size,
 * and /sys/kernel/mm/hugepages for the sizes offered and how many pages of
 * each are reserved and free.  This module reads those files and turns a
 * shortage into a message an operator can act on.  It knows nothing of the
 * segment; segment.c is its only caller.
 *
 * Interface routines:
 *   hugepages_default_size       Hugepagesize from /proc/meminfo, or 0
 *   hugepages_mapping_page_size  KernelPageSize of a mapping, from smaps
 *   hugepages_offered            does the kernel offer this huge page size?
 *   hugepages_list_offered       "2 MB, 1 GB": every size it offers
 *   hugepages_read_pool          reserved, free and promised pages of a size
 *   hugepages_check_size         is a size usable here, else why not
 *   hugepages_shortage_hint      the "could not get N huge pages" message
 *   hugepages_format_size        "2 MB", "1 GB": sizes as operators write them
 */
#ifndef SHMKV_HUGEPAGES_H
#define SHMKV_HUGEPAGES_H

#include <stdbool.h>
#include <stddef.h>

/* One huge page size's pool, as sysfs reports it; -1 for what it did not. */
struct hugepages_pool {
	long total;    /* nr_hugepages: pages reserved for hugetlb */
	long free;     /* free_hugepages: not backing any mapping yet */
	long reserved; /* resv_hugepages: free, but promised to a mapping */
};

/*
 * hugepages_default_size - Hugepagesize from /proc/meminfo, or 0 if the
 * kernel has no hugetlb support (or /proc is not there).
 */
size_t hugepages_default_size(void);

/*
 * hugepages_mapping_page_size - the KernelPageSize /proc/self/smaps reports
 * for the mapping containing addr.  0 and *page_size, -ENOENT if no mapping
 * contains addr, -ERANGE for a size we cannot hold, or -errno if smaps
 * cannot be read.
 */
int hugepages_mapping_page_size(const void *addr, size_t *page_size);

/* hugepages_offered - does sysfs list a hugetlb pool of hps bytes? */
bool hugepages_offered(size_t hps);

/* hugepages_list_offered - "2 MB, 1 GB" (smallest first), or "none". */
void hugepages_list_offered(char *buf, size_t buflen);

/*
 * hugepages_read_pool - the pool of huge pages of size hps.  True if all
 * three counts could be read; otherwise the unread ones are -1.
 */
bool hugepages_read_pool(size_t hps, struct hugepages_pool *pool);

/*
 * hugepages_check_size - is hps a hugetlb page size this kernel offers, and
 * larger than the base page?  0, or -EOPNOTSUPP (no huge pages at all, hps
 * is 0) / -EINVAL (not offered) with a message in msg listing what is.
 */
int hugepages_check_size(size_t hps, size_t base_page, char *msg, size_t msglen);

/*
 * hugepages_shortage_hint - the message for a segment of size bytes that
 * could not get its huge pages of hps: how many it needed, how many are
 * available, and the setting that would make it work.  With on (the
 * operator insisted on huge pages) it also points at --huge-pages=try.
 */
void hugepages_shortage_hint(size_t size, size_t hps, bool on, char *msg,
			     size_t msglen);

/* hugepages_format_size - "2 MB", "1 GB", "12 kB" or "N bytes" into buf. */
const char *hugepages_format_size(size_t bytes, char *buf, size_t buflen);

#endif
