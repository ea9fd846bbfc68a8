/*
 * attach_server.c - the server side of a client program attaching
 *
 * The reply and the descriptors go out in one sendmsg on the raw socket,
 * beside libuv rather than through it: libuv can pass one handle on an IPC
 * pipe, not two plain descriptors on an ordinary stream.  That is safe
 * because attach must be the connection's first command, so no libuv write
 * can be queued ahead of it; the connection layer checks that before
 * calling here.
 *
 * The slot claimed in the client's name records its PID and its start time
 * (proc_record_identity), so that the supervisor can find the slot of a
 * client that died, even after its PID was reused (recovery.c), and repair
 * the locks it died in.  A gone client's slot is freed by whichever of us
 * and the supervisor takes it first (proc_take_dead): we on the
 * connection's close when the slot records no lock, the supervisor
 * otherwise (see proc.c for the slot's whole life).
 *
 * Interface routines: attach_serve, attach_release.
 */
#include "attach_server.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "attach.h"
#include "config.h"
#include "stats.h"

/* Supplementary groups beyond this many are not looked at. */
#define ATTACH_MAX_GROUPS 256

static int send_line(int fd, const char *text, const int *fds, int nfds)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(2 * sizeof(int))];
	} ctl;
	struct iovec iov = { (void *)text, strlen(text) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	if (nfds > 0) {
		memset(&ctl, 0, sizeof(ctl));
		msg.msg_control = ctl.buf;
		msg.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
		struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, (size_t)nfds * sizeof(int));
	}
	do {
		n = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
	} while (n < 0 && errno == EINTR);
	/* A fresh connection's socket buffer takes a short line whole. */
	return n == (ssize_t)iov.iov_len ? 0 : -1;
}

static int attach_refuse(int fd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int attach_refuse(int fd, const char *fmt, ...)
{
	char line[256];
	va_list ap;
	int n = snprintf(line, sizeof(line), "SERVER_ERROR attach refused: ");

	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n - 2, fmt, ap);
	va_end(ap);
	strcat(line, "\r\n");
	send_line(fd, line, NULL, 0);
	return -1;
}

/* Is the peer in the policy's group, as its primary or a supplementary one? */
static bool peer_in_group(int fd, const struct ucred *cred, gid_t group)
{
	gid_t groups[ATTACH_MAX_GROUPS];
	socklen_t len = sizeof(groups);

	if (cred->gid == group)
		return true;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0)
		return false;
	for (size_t i = 0; i < len / sizeof(gid_t); i++)
		if (groups[i] == group)
			return true;
	return false;
}

int attach_serve(const struct attach_server *as, int fd, const char *line,
		 size_t len, uint32_t *slot)
{
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	unsigned long version;
	char buf[64], reply[96], *end;
	size_t n = sizeof(ATTACH_COMMAND) - 1;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0)
		return attach_refuse(fd, "cannot tell who you are (%s)",
				     strerror(errno));
	if (cred.uid != 0 && cred.uid != geteuid() &&
	    !(as->policy.group_set && peer_in_group(fd, &cred, as->policy.group)))
		return attach_refuse(fd,
				     "permission denied for uid %u: only uid %u, "
				     "root%s%s may attach",
				     (unsigned)cred.uid, (unsigned)geteuid(),
				     as->policy.group_set
					     ? " and members of group "
					     : " (see --attach-group)",
				     as->policy.group_set ? as->policy.group_name
							  : "");

	len = len - n < sizeof(buf) - 1 ? len - n : sizeof(buf) - 1;
	memcpy(buf, line + n, len);
	buf[len] = '\0';
	errno = 0;
	version = strtoul(buf, &end, 10);
	if (errno != 0 || end == buf ||
	    (*end != '\r' && *end != '\n' && *end != '\0'))
		return attach_refuse(fd, "bad request: expected '" ATTACH_COMMAND
					 " <layout-version>'");
	if (version != SEGMENT_LAYOUT_VERSION)
		return attach_refuse(fd,
				     "layout version mismatch (server %u, client %lu)",
				     SEGMENT_LAYOUT_VERSION, version);

	if (proc_claim(as->cache->procs, as->cache->nprocs, cred.pid, slot) < 0)
		return attach_refuse(fd, "out of proc slots (all %u are taken)",
				     as->cache->nprocs);
	/* Before the client can lock anything: from now on the supervisor
	 * watches it. */
	proc_record_identity(proc_get(as->cache->procs, as->cache->nprocs, *slot),
			     cred.pid);

	int fds[2] = { as->data_ro_fd, as->cache->seg.ctl_fd };
	snprintf(reply, sizeof(reply), ATTACH_REPLY " %u %u\r\n",
		 SEGMENT_LAYOUT_VERSION, *slot);
	if (send_line(fd, reply, fds, 2) < 0) {
		attach_release(as, *slot);
		return -1;
	}
	return 0;
}

int attach_release(const struct attach_server *as, uint32_t slot)
{
	struct proc *p = proc_get(as->cache->procs, as->cache->nprocs, slot);
	int32_t pid;

	if (p == NULL)
		return 0;
	pid = atomic_load(&p->pid);
	/* The client may have died mid-lookup; its holds must be undone
	 * before anyone else may reuse the slot: the supervisor does both
	 * once it finds the client gone (recovery.c). */
	if (atomic_load(&p->nheld) != 0 || atomic_load(&p->acquiring) != 0) {
		SERVER_LOG("client PID %d closed its connection in a partition "
			   "lock; its proc slot %u is left to crash recovery",
			   (int)pid, slot);
		return 1;
	}
	/* Lost to the supervisor (recovery.c takes it the same way): then the
	 * slot is its to free. */
	if (!proc_take_dead(p, pid))
		return 0;
	proc_retire(as->cache->procs, as->cache->nprocs, slot,
		    &as->stats->direct_get_hits, &as->stats->direct_get_misses);
	return 0;
}
