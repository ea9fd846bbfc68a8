/*
 * attach.c - the client side of attaching to a server's segment
 *
 * One blocking exchange on a fresh connection (see attach.h).  The reply
 * line and the descriptors arrive in one sendmsg from the server, but a
 * stream socket may still split the line, so this reads until the line is
 * whole, collecting descriptors from whichever message carried them.
 *
 * Interface routines: attach_connect.
 */
#include "attach.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "errbuf.h"

#define ATTACH_LINE_MAX 512

static void close_fds(int *fds, int n)
{
	for (int i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

static enum shmkv_status connect_unix(const char *path, int *out, char *err,
				      size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		errbuf_set(err, errlen, "socket path too long: %s", path);
		return SHMKV_NO_SERVER;
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		errbuf_set(err, errlen, "socket: %s", strerror(errno));
		return SHMKV_SYSTEM;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;

		close(fd);
		if (e == EACCES || e == EPERM) {
			errbuf_set(err, errlen,
				   "permission denied reaching %s: the "
				   "server's run directory is private to its user "
				   "(start it with --attach-group to share it)",
				   path);
			return SHMKV_PERMISSION;
		}
		errbuf_set(err, errlen, "no shmkv-server at %s: %s", path,
			   strerror(e));
		return SHMKV_NO_SERVER;
	}
	*out = fd;
	return SHMKV_OK;
}

/* Read the reply line, keeping up to two descriptors that come with it. */
static enum shmkv_status read_reply(int fd, char *line, size_t cap, int *fds,
				    char *err, size_t errlen)
{
	size_t len = 0;
	int nfds = 0;

	while (len + 1 < cap) {
		union {
			struct cmsghdr h;
			char buf[CMSG_SPACE(2 * sizeof(int))];
		} ctl;
		struct iovec iov = { line + len, cap - 1 - len };
		struct msghdr msg = {
			.msg_iov = &iov,
			.msg_iovlen = 1,
			.msg_control = ctl.buf,
			.msg_controllen = sizeof(ctl.buf),
		};
		ssize_t n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			errbuf_set(err, errlen,
				   "the server closed the connection "
				   "while attaching%s%s",
				   n < 0 ? ": " : "",
				   n < 0 ? strerror(errno) : "");
			close_fds(fds, nfds);
			return SHMKV_SERVER_GONE;
		}
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL;
		     c = CMSG_NXTHDR(&msg, c)) {
			if (c->cmsg_level != SOL_SOCKET ||
			    c->cmsg_type != SCM_RIGHTS)
				continue;
			size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (size_t i = 0; i < k; i++) {
				int got;

				memcpy(&got, CMSG_DATA(c) + i * sizeof(int),
				       sizeof(int));
				if (nfds < 2)
					fds[nfds++] = got;
				else
					close(got);
			}
		}
		len += (size_t)n;
		line[len] = '\0';
		if (len >= 2 && memcmp(line + len - 2, "\r\n", 2) == 0) {
			line[len - 2] = '\0';
			return SHMKV_OK;
		}
	}
	close_fds(fds, nfds);
	errbuf_set(err, errlen, "the server's attach reply is too long");
	return SHMKV_PROTOCOL;
}

/* Map a refusal's reason to the status a caller can act on. */
static enum shmkv_status refusal_status(const char *line)
{
	if (strstr(line, "permission") != NULL)
		return SHMKV_PERMISSION;
	if (strstr(line, "layout version") != NULL)
		return SHMKV_VERSION_MISMATCH;
	if (strstr(line, "proc slots") != NULL)
		return SHMKV_NO_PROC_SLOTS;
	return SHMKV_PROTOCOL;
}

enum shmkv_status attach_connect(const char *path, uint32_t layout_version,
				 struct attach_result *res, char *err,
				 size_t errlen)
{
	char line[ATTACH_LINE_MAX];
	int fds[2] = { -1, -1 };
	unsigned version = 0, slot = 0;
	enum shmkv_status st;
	int n;

	res->sock = res->data_fd = res->ctl_fd = -1;
	st = connect_unix(path, &res->sock, err, errlen);
	if (st != SHMKV_OK)
		return st;
	n = snprintf(line, sizeof(line), ATTACH_COMMAND " %u\r\n",
		     layout_version);
	if (send(res->sock, line, (size_t)n, MSG_NOSIGNAL) != n) {
		errbuf_set(err, errlen, "could not send the attach request: %s",
			   strerror(errno));
		st = SHMKV_SERVER_GONE;
		goto fail;
	}
	st = read_reply(res->sock, line, sizeof(line), fds, err, errlen);
	if (st != SHMKV_OK)
		goto fail;
	if (sscanf(line, ATTACH_REPLY " %u %u", &version, &slot) != 2) {
		close_fds(fds, 2);
		if (strcmp(line, "ERROR") == 0) {
			/* memcached's answer to a command it does not know. */
			errbuf_set(err, errlen,
				   "%s answers like plain memcached "
				   "(\"ERROR\" to the attach request): this is not "
				   "a shmkv server",
				   path);
			st = SHMKV_PROTOCOL;
			goto fail;
		}
		errbuf_set(err, errlen, "%s", line);
		st = refusal_status(line);
		goto fail;
	}
	if (fds[0] < 0 || fds[1] < 0 || version != layout_version) {
		close_fds(fds, 2);
		errbuf_set(err, errlen,
			   "the server attached us without the "
			   "segment's descriptors or with layout version %u "
			   "(ours is %u)",
			   version, layout_version);
		st = SHMKV_PROTOCOL;
		goto fail;
	}
	res->data_fd = fds[0];
	res->ctl_fd = fds[1];
	res->slot = slot;
	return SHMKV_OK;

fail:
	close(res->sock);
	res->sock = -1;
	return st;
}
