/*
 * errbuf.h - the caller's error buffer, filled in one place
 *
 * Internal calls that can fail in ways worth explaining take a buffer and
 * its size (char *err, size_t errlen) besides returning -errno; a caller
 * that wants no message passes NULL.  These fill it, truncating, never
 * printing: libshmkv prints nothing, and the server decides where its own
 * messages go.
 *
 * Interface routines:
 *   errbuf_set   printf into err (nothing if err is NULL or errlen 0)
 *   errbuf_vset  the same with a va_list, for wrappers
 */
#ifndef SHMKV_ERRBUF_H
#define SHMKV_ERRBUF_H

#include <stdarg.h>
#include <stddef.h>

__attribute__((format(printf, 3, 4))) void errbuf_set(char *err, size_t errlen,
						      const char *fmt, ...);

__attribute__((format(printf, 3, 0))) void errbuf_vset(char *err, size_t errlen,
						       const char *fmt,
						       va_list ap);

#endif
