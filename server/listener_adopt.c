/*
 * listener_adopt.c - a listening Unix socket handed over by a live upgrade
 *
 * A successor does not bind: it inherits the running server's Unix socket
 * (upgrade.c) and must close and unlink it at its own stop exactly as if it
 * had bound it.  listener_close_unix unlinks the path only while the file
 * there is the socket we bound, known by device and inode; for a socket we
 * did not bind, that is the file found at the path when it was handed over.
 * Kept apart from listener.c, which binds: this one only records.
 *
 * Interface routines:
 *   listener_adopt_unix  a struct listener_unix for an inherited socket
 */
#include "listener.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/*
 * listener_adopt_unix - fill *l for the listening socket fd, inherited and
 * already bound at path
 *
 * Records the socket file at path, if it is one, as ours to unlink at
 * close; if none is there (someone removed it), close unlinks nothing.
 */
void listener_adopt_unix(struct listener_unix *l, int fd, const char *path)
{
	struct stat st;

	memset(l, 0, sizeof(*l));
	l->fd = fd;
	snprintf(l->path, sizeof(l->path), "%s", path);
	if (lstat(l->path, &st) == 0 && S_ISSOCK(st.st_mode)) {
		l->dev = st.st_dev;
		l->ino = st.st_ino;
	}
}
