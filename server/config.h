/*
 * config.h - the server's settings, from its command line
 *
 * Flags follow memcached's letters where the two overlap (-p, -l, -s, -m,
 * -t, -c, -I, -v), so an operator's habits and init scripts carry over.
 * Parsing is a pure function of argv: it prints nothing and exits nowhere,
 * so tests can feed it good and bad values; main() turns its one-line error
 * into memcached-style "shmkv-server: <flag>: <why>" on stderr and exit 2.
 *
 * Interface routines:
 *   config_defaults       the settings with no flags at all
 *   config_parse          apply argv on top of the defaults, then validate
 *   config_usage          the --help text
 *   config_huge_pages_name  "on", "off" or "try"
 *   config_listen_is_loopback  for the start-up warning about -l
 *   config_run_dir_mode   the run directory's mode for --socket-mode
 *   server_log_line       one log line to stderr (the server's only logger)
 */
#ifndef SHMKV_CONFIG_H
#define SHMKV_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "segment.h"

#define SERVER_NAME "shmkv-server"
#define SERVER_VERSION "0.1.0"

#define CONFIG_DEFAULT_PORT 11211
#define CONFIG_DEFAULT_LISTEN "127.0.0.1"
#define CONFIG_DEFAULT_MEMORY_MIB 1024u
#define CONFIG_DEFAULT_MAX_CONNECTIONS 1024u
#define CONFIG_DEFAULT_MAX_ITEM (1024u * 1024u)
#define CONFIG_DEFAULT_PARTITIONS 128u
#define CONFIG_MIN_ITEM 1024u			/* memcached's -I floor */
#define CONFIG_MAX_ITEM (1024u * 1024u * 1024u) /* and its ceiling */
#define CONFIG_MAX_WORKERS 128u
#define CONFIG_MAX_PARTITIONS 65536u
/* -l a,b,...: addresses a server listens on at most (memcached's commas). */
#define CONFIG_MAX_LISTEN 4u
/* --idle-timeout: 0 = never, as memcached's -o idle_timeout. */
#define CONFIG_DEFAULT_IDLE_TIMEOUT 0u
#define CONFIG_MAX_IDLE_TIMEOUT (30u * 24u * 3600u)
/* With --idle-timeout 0, a connection whose replies are held at the
 * back-pressure bound and make no progress is closed after this long. */
#define CONFIG_STALLED_WRITE_TIMEOUT 60u
/* --socket-mode: memcached's -a default; the owner always keeps rw. */
#define CONFIG_DEFAULT_SOCKET_MODE 0700u
/* A partition should hold this many items of the largest size. */
#define CONFIG_ITEMS_PER_PARTITION 8u

/* Words a --conf file may hold. */
#define CONFIG_CONF_MAX_WORDS 256

/* sizeof(sockaddr_un.sun_path) */
#define CONFIG_UNIX_PATH_MAX 108u
#define CONFIG_PATH_MAX 4096u

/*
 * SERVER_LOG - one line to stderr, prefixed with the program and the PID so
 * that lines of the supervisor and of each worker can be told apart.
 * glibc formats a line for unbuffered stderr in one buffer, so lines of
 * different processes do not interleave mid-line.
 */
#define SERVER_LOG(...) server_log_line(__VA_ARGS__)

__attribute__((format(printf, 1, 2))) void server_log_line(const char *fmt, ...);

enum config_action {
	CONFIG_RUN = 0,
	CONFIG_HELP,
	CONFIG_VERSION,
};

struct server_config {
	enum config_action action;
	int port; /* 0 = no TCP */
	char listen[256];
	char unix_socket[CONFIG_UNIX_PATH_MAX];
	char run_dir[CONFIG_PATH_MAX];
	uint64_t memory_mib;
	uint32_t workers;
	uint32_t max_connections;
	uint32_t max_item_size;
	uint32_t partitions;   /* after the automatic reduction */
	bool partitions_given; /* set by --partitions, never reduced */
	enum segment_huge_pages huge_pages;
	size_t huge_page_size; /* 0 = the kernel's default */
	bool prefault;
	int verbosity;
	bool attach_group_set; /* --attach-group given */
	gid_t attach_gid;
	char attach_group[64];
	uint32_t idle_timeout; /* seconds without progress; 0 = never */
	unsigned socket_mode;  /* of the Unix socket (run dir: search) */
	char memory_file[CONFIG_PATH_MAX]; /* -e: "" = memfds */
	bool memory_file_reset; /* start cold even if it could be adopted */
	bool upgrade;		/* --upgrade: have the running server exec us */
	/* memcached's process flags (config_memcached.c). */
	char user[64];	       /* -u: root drops to this user */
	bool daemonize;	       /* -d */
	bool shutdown_command; /* -A: the `shutdown` command stops us */
	bool flush_disabled;   /* -F: flush_all is refused */
	bool evict_disabled;   /* -M: a full cache refuses stores */
	bool cas_disabled;     /* -C: no CAS (every CAS reads 0) */
	char pid_file[CONFIG_PATH_MAX]; /* -P */
	char log_file[CONFIG_PATH_MAX]; /* a --conf file's "logfile" */
	pid_t pid_file_written;		/* who wrote pid_file, or 0 */
	char warnings[1024];		/* one line each, for main to print */
	/* A --conf file's flags, spliced before the command line's. */
	char conf_text[8192];
	char *conf_argv[CONFIG_CONF_MAX_WORDS + 64];
};

/* config_defaults - fill cfg with what the server runs with and no flags. */
void config_defaults(struct server_config *cfg);

/*
 * config_parse - parse argv into cfg (defaults first).  Returns 0, or
 * -EINVAL with one line in err naming the flag, the value and why it is
 * wrong (no program name, no newline).  Re-entrant across calls: it resets
 * getopt's state, so tests can call it many times.
 */
int config_parse(int argc, char **argv, struct server_config *cfg, char *err,
		 size_t errlen);

/* config_seterr - one line into err (no newline); returns -EINVAL. */
__attribute__((format(printf, 3, 4))) int config_seterr(char *err, size_t errlen,
							const char *fmt, ...);

/* config_parse_u64 - a plain decimal number, nothing before or after it;
 * 0 or -EINVAL.  (strtoull alone takes " 12", "-1" and "12abc".) */
int config_parse_u64(const char *s, uint64_t *out);

/* config_idle_timeout - --idle-timeout's value, checked; 0 or -EINVAL
 * with one line in err naming flag. */
int config_idle_timeout(struct server_config *cfg, const char *flag,
			const char *arg, char *err, size_t errlen);

/* config_memcached.c: memcached's flags, its config file, its process
 * habits (see there). */
int config_memcached_option(struct server_config *cfg, int c, const char *arg,
			    char *err, size_t errlen);
int config_expand_conf(int argc, char **argv, struct server_config *cfg,
		       int *out_argc, char ***out_argv, char *err, size_t errlen);
int config_prepare_process(struct server_config *cfg, char *err, size_t errlen);
void config_finish_process(const struct server_config *cfg);

/* config_usage - print the --help text documenting every flag. */
void config_usage(FILE *out);

const char *config_huge_pages_name(enum segment_huge_pages hp);

/*
 * config_listen_is_loopback - whether every address listen resolves to is
 * a loopback one (127.0.0.0/8, ::1), so that only this machine can connect.
 * False for a wildcard ("0.0.0.0", "::"), any other address, or a name that
 * does not resolve.  Resolves names, so it is called at start-up, not by
 * config_parse.
 */
bool config_listen_is_loopback(const char *listen);

/*
 * config_listen_addr - the i-th address of a comma-separated -l into buf:
 * 0, or -ENOENT past the last one (or when it does not fit in len).
 */
int config_listen_addr(const char *listen, unsigned i, char *buf, size_t len);
/* config_listen_count - how many addresses -l names (at least 1). */
unsigned config_listen_count(const char *listen);

/* config_run_dir_mode - the run directory's mode for a --socket-mode: the
 * owner's rwx, plus search (x only) for whoever may use the socket. */
unsigned config_run_dir_mode(unsigned socket_mode);

#endif
