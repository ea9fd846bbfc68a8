/*
 * config.c - parse and check the server's command line
 *
 * getopt_long over memcached's letters (-p -l -s -m -t -c -I -v) plus our
 * own long options for what memcached has no word for (--run-dir,
 * --partitions, --huge-pages, --huge-page-size, --prefault), or where
 * memcached's spelling is cryptic (--idle-timeout for -o idle_timeout,
 * --socket-mode for -a).  Every value
 * is checked here, before anything is created, so that a mistake costs the
 * operator one line on stderr rather than a half-started server:
 * "--memory: 'abc' is not a number of MiB".
 *
 * Values derived from others are settled last: the run directory defaults
 * to /tmp/shmkv-<port> (so two servers on two ports never share one), the
 * Unix socket to <run-dir>/shmkv.sock, and the partition count is halved
 * from 128 until each partition holds at least CONFIG_ITEMS_PER_PARTITION
 * items of the largest size.  NOTE: a partition is also the unit of
 * eviction; with -m 64 and 128 partitions each would have 512 KiB and could
 * not hold one 1 MiB item at all.  An explicit --partitions is never
 * changed, only refused if a partition could not hold one largest item.
 *
 * Interface routines:
 * memcached's own flags (-u -d -P -U -o ...) and --conf are applied in
 * config_memcached.c.
 *
 *   config_defaults, config_parse, config_usage, config_huge_pages_name,
 *   config_listen_is_loopback, config_run_dir_mode, server_log_line
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <getopt.h>
#include <inttypes.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "errbuf.h"
#include "interlock.h"

enum {
	OPT_RUN_DIR = 256,
	OPT_PARTITIONS,
	OPT_HUGE_PAGES,
	OPT_HUGE_PAGE_SIZE,
	OPT_PREFAULT,
	OPT_ATTACH_GROUP,
	OPT_IDLE_TIMEOUT,
	OPT_SOCKET_MODE,
	OPT_MEMORY_FILE,
	OPT_MEMORY_FILE_RESET,
	OPT_UPGRADE,
};

static const struct option long_options[] = {
	{ "port", required_argument, NULL, 'p' },
	{ "listen", required_argument, NULL, 'l' },
	{ "unix-socket", required_argument, NULL, 's' },
	{ "run-dir", required_argument, NULL, OPT_RUN_DIR },
	{ "memory", required_argument, NULL, 'm' },
	{ "workers", required_argument, NULL, 't' },
	{ "max-connections", required_argument, NULL, 'c' },
	{ "max-item-size", required_argument, NULL, 'I' },
	{ "partitions", required_argument, NULL, OPT_PARTITIONS },
	{ "huge-pages", required_argument, NULL, OPT_HUGE_PAGES },
	{ "huge-page-size", required_argument, NULL, OPT_HUGE_PAGE_SIZE },
	{ "prefault", no_argument, NULL, OPT_PREFAULT },
	{ "attach-group", required_argument, NULL, OPT_ATTACH_GROUP },
	{ "idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT },
	{ "socket-mode", required_argument, NULL, OPT_SOCKET_MODE },
	{ "memory-file", required_argument, NULL, 'e' },
	{ "memory-file-reset", no_argument, NULL, OPT_MEMORY_FILE_RESET },
	{ "upgrade", no_argument, NULL, OPT_UPGRADE },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

/* memcached's letters we share, then its letters config_memcached.c
 * applies (-a is memcached's spelling of --socket-mode). */
static const char short_options[] = ":p:l:s:m:t:c:I:e:vhVa:u:dP:U:R:o:AFMC";

/* config_seterr - format the one-line message config_parse returns;
 * returns -EINVAL. */
int config_seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	errbuf_vset(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

int config_parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!isdigit((unsigned char)s[0]))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end != '\0')
		return -EINVAL;
	*out = v;
	return 0;
}

/*
 * parse_size - bytes, with an optional k, m or g suffix (powers of 1024,
 * either case), as memcached's -I takes "512k" or "1m".
 */
static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	uint64_t mult = 1;

	if (!isdigit((unsigned char)s[0]))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	switch (tolower((unsigned char)*end)) {
	case '\0': break;
	case 'k': mult = 1024; break;
	case 'm': mult = 1024 * 1024; break;
	case 'g': mult = 1024 * 1024 * 1024; break;
	default: return -EINVAL;
	}
	if (*end != '\0') {
		end++;
		if (tolower((unsigned char)*end) == 'b') /* "2MB" as well as "2M" */
			end++;
		if (*end != '\0')
			return -EINVAL;
	}
	if (v > UINT64_MAX / mult)
		return -EINVAL;
	*out = v * mult;
	return 0;
}

static uint32_t online_cores(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		return 1;
	if ((unsigned long)n > CONFIG_MAX_WORKERS)
		return CONFIG_MAX_WORKERS;
	return (uint32_t)n;
}

void config_defaults(struct server_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->action = CONFIG_RUN;
	cfg->port = CONFIG_DEFAULT_PORT;
	snprintf(cfg->listen, sizeof(cfg->listen), "%s", CONFIG_DEFAULT_LISTEN);
	cfg->memory_mib = CONFIG_DEFAULT_MEMORY_MIB;
	cfg->workers = online_cores();
	cfg->max_connections = CONFIG_DEFAULT_MAX_CONNECTIONS;
	cfg->max_item_size = CONFIG_DEFAULT_MAX_ITEM;
	cfg->partitions = CONFIG_DEFAULT_PARTITIONS;
	cfg->huge_pages = SEGMENT_HUGE_TRY;
	cfg->idle_timeout = CONFIG_DEFAULT_IDLE_TIMEOUT;
	cfg->socket_mode = CONFIG_DEFAULT_SOCKET_MODE;
}

const char *config_huge_pages_name(enum segment_huge_pages hp)
{
	switch (hp) {
	case SEGMENT_HUGE_OFF: return "off";
	case SEGMENT_HUGE_ON: return "on";
	case SEGMENT_HUGE_TRY: break;
	}
	return "try";
}

/* option_name - how the operator spelled the flag, for messages. */
static const char *option_name(int c)
{
	switch (c) {
	case 'a': return "-a";
	case 'p': return "--port";
	case 'l': return "--listen";
	case 's': return "--unix-socket";
	case 'm': return "--memory";
	case 't': return "--workers";
	case 'c': return "--max-connections";
	case 'I': return "--max-item-size";
	case 'e': return "--memory-file";
	default: return "?";
	}
}

int config_listen_addr(const char *listen, unsigned i, char *buf, size_t len)
{
	const char *p = listen, *comma;
	size_t n;

	for (; i > 0; i--) {
		p = strchr(p, ',');
		if (p == NULL)
			return -ENOENT;
		p++;
	}
	comma = strchr(p, ',');
	n = comma != NULL ? (size_t)(comma - p) : strlen(p);
	if (n >= len)
		return -ENOENT;
	memcpy(buf, p, n);
	buf[n] = '\0';
	return 0;
}

unsigned config_listen_count(const char *listen)
{
	unsigned n = 1;

	for (const char *p = listen; (p = strchr(p, ',')) != NULL; p++)
		n++;
	return n;
}

/* apply_listen - memcached's -l: one address, or several with commas. */
static int apply_listen(struct server_config *cfg, const char *flag,
			const char *arg, char *err, size_t errlen)
{
	char one[256];
	unsigned i, n = config_listen_count(arg);

	if (arg[0] == '\0' || strlen(arg) >= sizeof(cfg->listen))
		return config_seterr(err, errlen,
				     "%s: '%s' is not an address to listen on",
				     flag, arg);
	if (n > CONFIG_MAX_LISTEN)
		return config_seterr(err, errlen,
				     "%s: '%s' names %u addresses; at most %u",
				     flag, arg, n, CONFIG_MAX_LISTEN);
	for (i = 0; i < n; i++)
		if (config_listen_addr(arg, i, one, sizeof(one)) < 0 ||
		    one[0] == '\0')
			return config_seterr(err, errlen,
					     "%s: '%s' has an empty address",
					     flag, arg);
	snprintf(cfg->listen, sizeof(cfg->listen), "%s", arg);
	return 0;
}

/* apply_socket_mode - -a: the Unix socket's mode, in octal. */
static int apply_socket_mode(struct server_config *cfg, const char *flag,
			     const char *arg, char *err, size_t errlen)
{
	char *end;
	unsigned long m;

	errno = 0;
	m = strtoul(arg, &end, 8);
	if (arg[0] < '0' || arg[0] > '7' || errno || *end != '\0' || m > 0777)
		return config_seterr(err, errlen,
				     "%s: '%s' is not an octal mode from 0600 "
				     "to 0777",
				     flag, arg);
	/* The server's own clients (and client programs of its user)
	 * must always be able to connect. */
	if ((m & 0600) != 0600)
		return config_seterr(err, errlen,
				     "%s: %s leaves the owner without read "
				     "and write on the socket; use 0600 or more",
				     flag, arg);
	cfg->socket_mode = (unsigned)m;
	return 0;
}

/* apply_place_option - where the server listens, keeps its files and
 * lets client programs in. */
static int apply_place_option(struct server_config *cfg, int c, const char *flag,
			      const char *arg, char *err, size_t errlen)
{
	uint64_t v;

	switch (c) {
	case 'p':
		if (config_parse_u64(arg, &v) || v > 65535)
			return config_seterr(err, errlen,
					     "%s: '%s' is not a TCP port (0 to 65535; 0 = no TCP)",
					     flag, arg);
		cfg->port = (int)v;
		return 0;
	case 'l': return apply_listen(cfg, flag, arg, err, errlen);
	case 's':
		if (arg[0] == '\0' || strlen(arg) >= sizeof(cfg->unix_socket))
			return config_seterr(err, errlen,
					     "%s: '%s' must be a path of 1 to %u bytes",
					     flag, arg, CONFIG_UNIX_PATH_MAX - 1);
		snprintf(cfg->unix_socket, sizeof(cfg->unix_socket), "%s", arg);
		return 0;
	case OPT_RUN_DIR:
		if (arg[0] == '\0' || strlen(arg) >= sizeof(cfg->run_dir))
			return config_seterr(err, errlen,
					     "%s: '%s' is not a directory path",
					     flag, arg);
		snprintf(cfg->run_dir, sizeof(cfg->run_dir), "%s", arg);
		return 0;
	case 'e': /* memcached's -e spelling of --memory-file */
		if (arg[0] == '\0' ||
		    strlen(arg) + sizeof(".ctl") > sizeof(cfg->memory_file))
			return config_seterr(err, errlen,
					     "%s: '%s' is not a file path",
					     flag, arg);
		snprintf(cfg->memory_file, sizeof(cfg->memory_file), "%s", arg);
		return 0;
	case OPT_MEMORY_FILE_RESET: cfg->memory_file_reset = true; return 0;
	case OPT_UPGRADE: cfg->upgrade = true; return 0;
	case OPT_ATTACH_GROUP: {
		const struct group *gr = getgrnam(arg);

		if (gr == NULL || strlen(arg) >= sizeof(cfg->attach_group))
			return config_seterr(err, errlen,
					     "%s: no group named '%s'", flag,
					     arg);
		strcpy(cfg->attach_group, arg);
		cfg->attach_gid = gr->gr_gid;
		cfg->attach_group_set = true;
		return 0;
	}
	case 'a':
	case OPT_SOCKET_MODE:
		return apply_socket_mode(cfg, flag, arg, err, errlen);
	default:
		return config_seterr(err, errlen, "internal error: option %d", c);
	}
}

/* parse_count - a number of what, from 1 to max. */
static int parse_count(const char *flag, const char *arg, const char *what,
		       uint64_t max, uint64_t *v, char *err, size_t errlen)
{
	if (config_parse_u64(arg, v))
		return config_seterr(err, errlen,
				     "%s: '%s' is not a number of %s", flag,
				     arg, what);
	if (*v < 1 || *v > max)
		return config_seterr(err, errlen,
				     "%s: %s %s is out of range (1 to %" PRIu64
				     ")",
				     flag, arg, what, max);
	return 0;
}

/* apply_size_option - how much memory, how many workers and
 * connections, and which pages. */
static int apply_size_option(struct server_config *cfg, int c, const char *flag,
			     const char *arg, char *err, size_t errlen)
{
	uint64_t v;
	int rc;

	switch (c) {
	case 'm':
		rc = parse_count(flag, arg, "MiB", UINT64_C(1) << 30, &v, err,
				 errlen);
		cfg->memory_mib = rc == 0 ? v : cfg->memory_mib;
		return rc;
	case 't':
		rc = parse_count(flag, arg, "workers", CONFIG_MAX_WORKERS, &v,
				 err, errlen);
		cfg->workers = rc == 0 ? (uint32_t)v : cfg->workers;
		return rc;
	case 'c':
		rc = parse_count(flag, arg, "connections", 1000000, &v, err,
				 errlen);
		cfg->max_connections = rc == 0 ? (uint32_t)v
					       : cfg->max_connections;
		return rc;
	case 'I':
		if (parse_size(arg, &v))
			return config_seterr(err, errlen,
					     "%s: '%s' is not a size (bytes, or with a k or m suffix)",
					     flag, arg);
		if (v < CONFIG_MIN_ITEM)
			return config_seterr(err, errlen,
					     "%s: %s is below the minimum item size of 1k",
					     flag, arg);
		if (v > CONFIG_MAX_ITEM)
			return config_seterr(err, errlen,
					     "%s: %s is above the maximum item size of 1g",
					     flag, arg);
		cfg->max_item_size = (uint32_t)v;
		return 0;
	case OPT_PARTITIONS:
		if (config_parse_u64(arg, &v))
			return config_seterr(err, errlen,
					     "%s: '%s' is not a number of partitions",
					     flag, arg);
		if (v < 1 || v > CONFIG_MAX_PARTITIONS || (v & (v - 1)) != 0)
			return config_seterr(err, errlen,
					     "%s: %s is not a power of two from 1 to %u",
					     flag, arg, CONFIG_MAX_PARTITIONS);
		cfg->partitions = (uint32_t)v;
		cfg->partitions_given = true;
		return 0;
	case OPT_HUGE_PAGES:
		if (strcmp(arg, "on") == 0)
			cfg->huge_pages = SEGMENT_HUGE_ON;
		else if (strcmp(arg, "off") == 0)
			cfg->huge_pages = SEGMENT_HUGE_OFF;
		else if (strcmp(arg, "try") == 0)
			cfg->huge_pages = SEGMENT_HUGE_TRY;
		else
			return config_seterr(err, errlen,
					     "%s: '%s' is not one of on, off, try",
					     flag, arg);
		return 0;
	case OPT_HUGE_PAGE_SIZE:
		if (parse_size(arg, &v) ||
		    (v != UINT64_C(2) << 20 && v != UINT64_C(1) << 30))
			return config_seterr(err, errlen,
					     "%s: '%s' is not a huge page size (2M or 1G)",
					     flag, arg);
		cfg->huge_page_size = (size_t)v;
		return 0;
	case OPT_PREFAULT: cfg->prefault = true; return 0;
	default:
		return config_seterr(err, errlen, "internal error: option %d", c);
	}
}

/* apply_option - one flag and its value into cfg; -EINVAL with err set. */
static int apply_option(struct server_config *cfg, int c, const char *flag,
			const char *arg, char *err, size_t errlen)
{
	switch (c) {
	case 'p':
	case 'l':
	case 's':
	case 'e':
	case 'a':
	case OPT_RUN_DIR:
	case OPT_MEMORY_FILE_RESET:
	case OPT_UPGRADE:
	case OPT_ATTACH_GROUP:
	case OPT_SOCKET_MODE:
		return apply_place_option(cfg, c, flag, arg, err, errlen);
	case 'm':
	case 't':
	case 'c':
	case 'I':
	case OPT_PARTITIONS:
	case OPT_HUGE_PAGES:
	case OPT_HUGE_PAGE_SIZE:
	case OPT_PREFAULT:
		return apply_size_option(cfg, c, flag, arg, err, errlen);
	case OPT_IDLE_TIMEOUT:
		return config_idle_timeout(cfg, flag, arg, err, errlen);
	case 'u':
	case 'd':
	case 'P':
	case 'U':
	case 'R':
	case 'o':
	case 'A':
	case 'F':
	case 'M':
	case 'C': return config_memcached_option(cfg, c, arg, err, errlen);
	case 'v': cfg->verbosity++; return 0;
	case 'h': cfg->action = CONFIG_HELP; return 0;
	case 'V': cfg->action = CONFIG_VERSION; return 0;
	default:
		return config_seterr(err, errlen, "internal error: option %d", c);
	}
}

int config_idle_timeout(struct server_config *cfg, const char *flag,
			const char *arg, char *err, size_t errlen)
{
	uint64_t v;

	if (config_parse_u64(arg, &v) || v > CONFIG_MAX_IDLE_TIMEOUT)
		return config_seterr(err, errlen,
				     "%s: '%s' is not a number of seconds "
				     "(0 = never, at most %u)",
				     flag, arg, CONFIG_MAX_IDLE_TIMEOUT);
	cfg->idle_timeout = (uint32_t)v;
	return 0;
}

/* derive_and_check - derive the defaults that depend on other values, then
 * check the values against each other. */
static int derive_and_check(struct server_config *cfg, char *err, size_t errlen)
{
	uint64_t memory = cfg->memory_mib << 20;
	int n;

	if (cfg->memory_file_reset && cfg->memory_file[0] == '\0')
		return config_seterr(
			err, errlen,
			"--memory-file-reset: there is no --memory-file to reset");
	if ((uint64_t)cfg->max_item_size > memory / 2)
		return config_seterr(err, errlen,
				     "--max-item-size: %" PRIu32
				     " bytes is more than half of --memory %" PRIu64
				     " MiB; raise -m or lower -I",
				     cfg->max_item_size, cfg->memory_mib);
	if (cfg->partitions_given) {
		if (memory / cfg->partitions < cfg->max_item_size)
			return config_seterr(err, errlen,
					     "--partitions: %" PRIu32
					     " partitions of %" PRIu64
					     " MiB could not hold one item of --max-item-size %" PRIu32
					     " bytes; use fewer partitions",
					     cfg->partitions, cfg->memory_mib,
					     cfg->max_item_size);
	} else {
		while (cfg->partitions > 1 &&
		       memory / cfg->partitions <
			       (uint64_t)CONFIG_ITEMS_PER_PARTITION *
				       cfg->max_item_size)
			cfg->partitions /= 2;
	}
	if (cfg->run_dir[0] == '\0' &&
	    interlock_default_run_dir(cfg->port, cfg->run_dir,
				      sizeof(cfg->run_dir)) < 0)
		return config_seterr(err, errlen,
				     "--run-dir: the default for port %d "
				     "does not fit",
				     cfg->port);
	if (cfg->unix_socket[0] == '\0') {
		n = snprintf(cfg->unix_socket, sizeof(cfg->unix_socket),
			     "%s/shmkv.sock", cfg->run_dir);
		if (n < 0 || (size_t)n >= sizeof(cfg->unix_socket))
			return config_seterr(
				err, errlen,
				"--run-dir: '%s' is too long to hold the Unix socket "
				"(at most %u bytes in all); use --unix-socket",
				cfg->run_dir, CONFIG_UNIX_PATH_MAX - 1);
	}
	return 0;
}

int config_parse(int argc, char **argv, struct server_config *cfg, char *err,
		 size_t errlen)
{
	int c, longindex, rc;
	char flag[64];

	config_defaults(cfg);
	if (err && errlen)
		err[0] = '\0';
	rc = config_expand_conf(argc, argv, cfg, &argc, &argv, err, errlen);
	if (rc < 0)
		return rc;
	/* NOTE: optind = 0 (not 1) makes glibc's getopt forget the state of a
	 * previous scan, which the unit tests need; opterr = 0 because the
	 * message is ours to make. */
	optind = 0;
	opterr = 0;
	for (;;) {
		longindex = -1;
		c = getopt_long(argc, argv, short_options, long_options,
				&longindex);
		if (c == -1)
			break;
		if (c == '?') {
			if (optopt && optopt < 256)
				return config_seterr(err, errlen,
						     "-%c: unknown flag; see --help",
						     optopt);
			return config_seterr(err, errlen,
					     "%s: unknown flag; see --help",
					     argv[optind - 1]);
		}
		if (c == ':') {
			if (optopt && optopt < 256 &&
			    strncmp(argv[optind - 1], "--", 2) != 0)
				return config_seterr(err, errlen,
						     "-%c: needs a value; see --help",
						     optopt);
			return config_seterr(err, errlen,
					     "%s: needs a value; see --help",
					     argv[optind - 1]);
		}
		if (longindex >= 0)
			snprintf(flag, sizeof(flag), "--%s",
				 long_options[longindex].name);
		else
			snprintf(flag, sizeof(flag), "%s", option_name(c));
		rc = apply_option(cfg, c, flag, optarg, err, errlen);
		if (rc)
			return rc;
	}
	if (optind < argc)
		return config_seterr(err, errlen,
				     "'%s': unexpected argument; see --help",
				     argv[optind]);
	if (cfg->action != CONFIG_RUN)
		return 0;
	return derive_and_check(cfg, err, errlen);
}

/* one_is_loopback - config_listen_is_loopback for one address. */
static bool one_is_loopback(const char *listen)
{
	struct addrinfo hints, *res, *ai;
	bool loopback = true;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	if (getaddrinfo(listen, NULL, &hints, &res) != 0)
		return false;
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if (ai->ai_family == AF_INET) {
			const struct sockaddr_in *sin = (const void *)ai->ai_addr;

			if ((ntohl(sin->sin_addr.s_addr) >> 24) != 127)
				loopback = false;
		} else if (ai->ai_family == AF_INET6) {
			const struct sockaddr_in6 *sin6 = (const void *)ai->ai_addr;
			const struct in6_addr *a = &sin6->sin6_addr;

			if (!IN6_IS_ADDR_LOOPBACK(a) &&
			    !(IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127))
				loopback = false;
		} else {
			loopback = false;
		}
	}
	freeaddrinfo(res);
	return loopback;
}

bool config_listen_is_loopback(const char *listen)
{
	char one[256];

	for (unsigned i = 0;
	     config_listen_addr(listen, i, one, sizeof(one)) == 0; i++)
		if (!one_is_loopback(one))
			return false;
	return true;
}

unsigned config_run_dir_mode(unsigned socket_mode)
{
	unsigned mode = 0700;

	/* Search only: reading the directory or writing it would let others
	 * list or replace the lock file and the socket. */
	if (socket_mode & 0070)
		mode |= 0010;
	if (socket_mode & 0007)
		mode |= 0001;
	return mode;
}

/*
 * server_log_line - "shmkv-server[pid]: message" on stderr.  Formatted into
 * one buffer and written with one write(), so lines of the supervisor and
 * the workers, which share the descriptor, never interleave mid-line.
 */
void server_log_line(const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n, m;

	n = snprintf(line, sizeof(line), SERVER_NAME "[%d]: ", (int)getpid());
	if (n < 0)
		return;
	va_start(ap, fmt);
	m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		return;
	n += m;
	if ((size_t)n > sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	(void)!write(STDERR_FILENO, line, (size_t)n);
}

void config_usage(FILE *out)
{
	fprintf(out,
		"Usage: " SERVER_NAME " [options]\n"
		"A memcached-compatible cache server whose items live in one shared\n"
		"memory segment, served by N worker processes.\n"
		"\n"
		"  -p, --port=PORT            TCP port to listen on (default %d; 0 = no TCP)\n"
		"  -l, --listen=ADDR[,ADDR]   address(es) to listen on, IPv4 or IPv6, at most %u\n"
		"                             (default %s)\n"
		"  -s, --unix-socket=PATH     Unix socket path (default RUN-DIR/shmkv.sock)\n"
		"      --run-dir=DIR          directory of the lock file and socket\n"
		"                             (default /tmp/shmkv-PORT, created mode 0700)\n"
		"  -m, --memory=MIB           MiB of item memory (default %u)\n"
		"  -t, --workers=N            worker processes (default: online cores, max %u)\n"
		"  -c, --max-connections=N    open connections for the whole server (default %u);\n"
		"                             beyond it a client gets \"ERROR Too many open\n"
		"                             connections\" and is closed, as with memcached\n"
		"  -I, --max-item-size=SIZE   largest value, bytes or with k/m suffix\n"
		"                             (default 1m; from 1k to 1g, at most half of -m)\n"
		"      --partitions=N         hash table partitions, a power of two (default %u,\n"
		"                             halved automatically while a partition would hold\n"
		"                             fewer than %u items of -I; a given value is kept\n"
		"                             as long as a partition holds one such item)\n"
		"      --huge-pages=on|off|try  back the segment with huge pages: on fails if\n"
		"                             there are none, try falls back (default try)\n"
		"      --huge-page-size=2M|1G huge page size (default: the kernel's default)\n"
		"      --prefault             touch every page of the segment at start-up\n"
		"      --attach-group=GROUP   members of GROUP may attach client programs to the\n"
		"                             segment too (default: only this user and root)\n"
		"      --idle-timeout=SECONDS close a connection that makes no progress for\n"
		"                             this long: sends nothing (also mid data block)\n"
		"                             and, with replies pending, reads none of them\n"
		"                             (default 0 = never, as memcached's idle_timeout;\n"
		"                             a client that stops reading its replies is then\n"
		"                             closed after %u s without progress); attached\n"
		"                             client programs are not idle-closed\n"
		"      --socket-mode=MODE     octal mode of the Unix socket (default 0%o; the\n"
		"                             run directory gets search permission to match)\n"
		"  -e, --memory-file=PATH     keep the segment in PATH and PATH.ctl (on tmpfs such as\n"
		"                             /dev/shm, or hugetlbfs), created mode 0600: the next\n"
		"                             start with the same settings keeps every item\n"
		"      --memory-file-reset    start cold: empty the memory file instead of adopting it\n"
		"      --upgrade              replace the server running with these flags by this\n"
		"                             program, keeping its sockets and items (as kill -USR2)\n"
		"  -v, --verbose              log more (repeat, -vv, for per-connection events)\n"
		"\n"
		"memcached's flags, with memcached's meaning:\n"
		"  -u USER                    as root, run as USER (root needs -u; -u root\n"
		"                             runs as root on purpose)\n"
		"  -d                         run in the background (stdio to /dev/null\n"
		"                             unless -v)\n"
		"  -P FILE                    write the server's PID to FILE; removed at stop\n"
		"  -a MODE                    the same as --socket-mode\n"
		"  -U 0                       UDP off (shmkv has no UDP; other values refused)\n"
		"  -o idle_timeout=N          the same as --idle-timeout; other -o options of\n"
		"                             memcached are ignored with a warning\n"
		"  -R N                       accepted and ignored, with a warning\n"
		"  -A                         enable the shutdown command\n"
		"  -F                         disable flush_all (\"CLIENT_ERROR flush_all not\n"
		"                             allowed\")\n"
		"  -M                         a full cache answers stores \"SERVER_ERROR out of\n"
		"                             memory storing object\" instead of evicting\n"
		"  -C                         no CAS: every CAS reads 0 and a store with a CAS\n"
		"                             to compare is EXISTS, as in memcached\n"
		"      --conf=FILE            read flags from FILE, in the format of Debian's\n"
		"                             /etc/memcached.conf (\"logfile PATH\" included);\n"
		"                             the command line's flags come after FILE's\n"
		"\n"
		"  -h, --help                 print this help and exit\n"
		"  -V, --version              print the version and exit\n"
		"\n"
		"A bad flag or value prints one line naming it and exits with status 2.\n"
		"SIGTERM or SIGINT stops the server cleanly (exit 0).\n",
		CONFIG_DEFAULT_PORT, CONFIG_MAX_LISTEN, CONFIG_DEFAULT_LISTEN,
		CONFIG_DEFAULT_MEMORY_MIB, CONFIG_MAX_WORKERS,
		CONFIG_DEFAULT_MAX_CONNECTIONS, CONFIG_DEFAULT_PARTITIONS,
		CONFIG_ITEMS_PER_PARTITION, CONFIG_STALLED_WRITE_TIMEOUT,
		CONFIG_DEFAULT_SOCKET_MODE);
}
