/*
 * hugepages.c - the kernel's account of huge pages, and hints from it
 *
 * segment.c asks for hugetlb pages the way PostgreSQL's huge_pages setting
 * does, and reports what it got.  Everything it needs to know about the
 * kernel's huge pages lives here, read from the kernel's own files:
 *
 *   /proc/meminfo             Hugepagesize, the size vm.nr_hugepages sets
 *   /proc/self/smaps          the KernelPageSize a mapping really got
 *   /sys/kernel/mm/hugepages  one directory per size offered, each with
 *                             nr_hugepages, free_hugepages, resv_hugepages
 *
 * The page size a segment reports is always what smaps says, never what was
 * asked for: operators read it to learn whether their vm.nr_hugepages
 * setting took effect, and a transparent huge page or a fallback to 4k
 * pages is only visible there.
 *
 * When huge pages cannot be had, the message names the numbers (pages
 * needed, reserved, available) and the command that would fix it, as
 * PostgreSQL's hints do.  A size that is not the default one is set through
 * its sysfs file, since vm.nr_hugepages sets only the default size.
 *
 * Nothing here is shared memory or state: each routine reads the files
 * afresh, so it sees what the operator changed a moment ago.  Nothing here
 * prints; messages go into the caller's buffer.
 *
 * Interface routines (see hugepages.h): hugepages_default_size,
 * hugepages_mapping_page_size, hugepages_offered, hugepages_list_offered,
 * hugepages_read_pool, hugepages_check_size, hugepages_shortage_hint,
 * hugepages_format_size.
 */
#include "hugepages.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "errbuf.h"

#define MB ((size_t)1 << 20)
#define GB ((size_t)1 << 30)
#define HUGEPAGES_SYSFS "/sys/kernel/mm/hugepages"

/* hugepages_format_size - "2 MB", "1 GB", "12 kB": how operators write page sizes. */
const char *hugepages_format_size(size_t bytes, char *buf, size_t buflen)
{
	if (bytes >= GB && bytes % GB == 0)
		snprintf(buf, buflen, "%zu GB", bytes / GB);
	else if (bytes >= MB && bytes % MB == 0)
		snprintf(buf, buflen, "%zu MB", bytes / MB);
	else if (bytes % 1024 == 0)
		snprintf(buf, buflen, "%zu kB", bytes / 1024);
	else
		snprintf(buf, buflen, "%zu bytes", bytes);
	return buf;
}

/*
 * hugepages_default_size - Hugepagesize from /proc/meminfo, or 0 if the
 * kernel has no hugetlb support (or /proc is not there).
 */
size_t hugepages_default_size(void)
{
	FILE *f = fopen("/proc/meminfo", "re");
	char line[256];
	size_t size = 0;

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		unsigned long long kb;

		if (sscanf(line, "Hugepagesize: %llu kB", &kb) == 1) {
			if (kb <= SIZE_MAX / 1024)
				size = (size_t)kb * 1024;
			break;
		}
	}
	fclose(f);
	return size;
}

/* parse_range - "lo-hi ..." (an smaps mapping line) into lo and hi. */
static bool parse_range(const char *line, uintptr_t *lo, uintptr_t *hi)
{
	char *end;

	/* Field lines start with a capitalised name; mapping lines with a
	 * lowercase hex address. */
	if (!isxdigit((unsigned char)line[0]) || isupper((unsigned char)line[0]))
		return false;
	errno = 0;
	*lo = (uintptr_t)strtoull(line, &end, 16);
	if (errno != 0 || *end != '-')
		return false;
	*hi = (uintptr_t)strtoull(end + 1, &end, 16);
	return errno == 0 && *end == ' ';
}

/*
 * hugepages_mapping_page_size - the KernelPageSize /proc/self/smaps reports
 * for the mapping containing addr.  0 and *page_size, -ENOENT if no mapping
 * contains addr, or -errno if smaps cannot be read.
 */
int hugepages_mapping_page_size(const void *addr, size_t *page_size)
{
	uintptr_t a = (uintptr_t)addr;
	char *line = NULL;
	size_t cap = 0;
	bool inside = false;
	int rc = -ENOENT;
	FILE *f;

	f = fopen("/proc/self/smaps", "re");
	if (f == NULL)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		uintptr_t lo, hi;
		unsigned long long kb;

		if (parse_range(line, &lo, &hi)) {
			if (inside)
				break; /* our mapping had no KernelPageSize line */
			inside = a >= lo && a < hi;
			continue;
		}
		if (inside &&
		    sscanf(line, "KernelPageSize: %llu kB", &kb) == 1) {
			if (kb == 0 || kb > SIZE_MAX / 1024) {
				rc = -ERANGE;
			} else {
				*page_size = (size_t)kb * 1024;
				rc = 0;
			}
			break;
		}
	}
	free(line);
	fclose(f);
	return rc;
}

/* hugepages_offered - does sysfs have a hugepages-<kB>kB directory for hps? */
bool hugepages_offered(size_t hps)
{
	char path[128];
	struct stat st;

	snprintf(path, sizeof(path), HUGEPAGES_SYSFS "/hugepages-%zukB", hps / 1024);
	return stat(path, &st) == 0;
}

/*
 * hugepages_list_offered - "2 MB, 1 GB": the hugetlb page sizes the kernel
 * offers.  Probing every power of two from 64 kB lists them smallest first,
 * as people read sizes, which readdir of the sysfs directory would not.
 */
void hugepages_list_offered(char *buf, size_t buflen)
{
	size_t used = 0;

	snprintf(buf, buflen, "none");
	for (unsigned shift = 16; shift < 8 * sizeof(size_t) - 1; shift++) {
		char one[32];
		int w;

		if (!hugepages_offered((size_t)1 << shift) || used >= buflen)
			continue;
		w = snprintf(buf + used, buflen - used, "%s%s", used ? ", " : "",
			     hugepages_format_size((size_t)1 << shift, one, sizeof(one)));
		if (w > 0)
			used += (size_t)w;
	}
}

/* read_count - a number from /sys/kernel/mm/hugepages/<size>/<what>, or -1. */
static long read_count(size_t hps, const char *what)
{
	char path[128];
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), HUGEPAGES_SYSFS "/hugepages-%zukB/%s",
		 hps / 1024, what);
	f = fopen(path, "re");
	if (f == NULL)
		return -1;
	if (fscanf(f, "%ld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

/* hugepages_read_pool - the three counts of hps's pool; true if all read. */
bool hugepages_read_pool(size_t hps, struct hugepages_pool *pool)
{
	pool->total = read_count(hps, "nr_hugepages");
	pool->free = read_count(hps, "free_hugepages");
	pool->reserved = read_count(hps, "resv_hugepages");
	return pool->total >= 0 && pool->free >= 0 && pool->reserved >= 0;
}

/*
 * hugepages_check_size - is hps a hugetlb page size this kernel offers?
 * 0, or -EOPNOTSUPP / -EINVAL with a message listing what it does offer.
 */
int hugepages_check_size(size_t hps, size_t base_page, char *msg, size_t msglen)
{
	char offered[256], want[32];

	if (hps == 0) {
		errbuf_set(msg, msglen,
			"this kernel offers no huge pages (no Hugepagesize in /proc/meminfo)");
		return -EOPNOTSUPP;
	}
	if ((hps & (hps - 1)) != 0 || hps <= base_page || !hugepages_offered(hps)) {
		hugepages_list_offered(offered, sizeof(offered));
		errbuf_set(msg, msglen,
			"huge page size %s is not offered by this kernel; it offers: %s",
			hugepages_format_size(hps, want, sizeof(want)), offered);
		return -EINVAL;
	}
	return 0;
}

/*
 * hugepages_shortage_hint - the "could not get N huge pages" message, with
 * the setting that would make it work: enough more pages than are available
 * now.  With on, it also points at try; try is falling back already.
 */
void hugepages_shortage_hint(size_t size, size_t hps, bool on, char *msg,
			     size_t msglen)
{
	size_t pages = size / hps;
	struct hugepages_pool pool;
	bool known = hugepages_read_pool(hps, &pool);
	long avail = pool.free > pool.reserved ? pool.free - pool.reserved : 0;
	long want = pool.total + ((long)pages > avail ? (long)pages - avail : 0);
	char hs[32], ss[32], have[96] = "", how[192];

	if (!known)
		snprintf(how, sizeof(how), "sysctl vm.nr_hugepages");
	else if (hps == hugepages_default_size())
		snprintf(how, sizeof(how), "sysctl vm.nr_hugepages=%ld", want);
	else
		snprintf(how, sizeof(how),
			 "echo %ld > " HUGEPAGES_SYSFS "/hugepages-%zukB/nr_hugepages "
			 "(vm.nr_hugepages sets only the default size)",
			 want, hps / 1024);
	if (known)
		snprintf(have, sizeof(have), " (%ld of the %ld reserved are available)",
			 avail, pool.total);
	errbuf_set(msg, msglen,
		"could not get %zu huge page%s of %s for the %s segment%s; "
		"reserve them with %s%s",
		pages, pages == 1 ? "" : "s",
		hugepages_format_size(hps, hs, sizeof(hs)),
		hugepages_format_size(size, ss, sizeof(ss)), have, how,
		on ? " or use --huge-pages=try" : "");
}
