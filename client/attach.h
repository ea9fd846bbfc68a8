/*
 * attach.h - the client side of attaching to a server's segment
 *
 * The exchange, on the server's Unix socket, before anything else is sent:
 *
 *   client:  shmkv_attach <layout-version>\r\n
 *   server:  ATTACHED <layout-version> <proc-slot>\r\n   + SCM_RIGHTS: data fd
 *            (read-only), control fd
 *      or:   SERVER_ERROR attach refused: <reason>\r\n
 *
 * The server checks the peer's credentials (SO_PEERCRED), claims a proc
 * slot in the peer's name and releases it when the connection closes, so
 * the connection must stay open for as long as the segment is used.
 *
 * Interface routines:
 *   attach_connect   connect, ask, receive the fds and the slot
 */
#ifndef SHMKV_ATTACH_H
#define SHMKV_ATTACH_H

#include <stddef.h>
#include <stdint.h>

#include "shmkv.h"

#define ATTACH_COMMAND "shmkv_attach"
#define ATTACH_REPLY "ATTACHED"

struct attach_result {
	int sock;      /* the connection, kept open for writes */
	int data_fd;   /* read-only data part */
	int ctl_fd;    /* control part */
	uint32_t slot; /* the proc slot the server claimed for us */
};

/*
 * attach_connect - connect to path and ask to attach as layout_version.
 * On SHMKV_OK every fd in res is open and owned by the caller; on failure
 * none is, and err says why.
 */
enum shmkv_status attach_connect(const char *path, uint32_t layout_version,
				 struct attach_result *res, char *err,
				 size_t errlen);

#endif
