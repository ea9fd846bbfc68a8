/*
 * options.c - shmkv-bench's command line
 *
 * Every flag is checked here, before anything connects or forks, so a
 * typo costs one line on stderr and exit status 2 rather than a half-run
 * benchmark.  Values are parsed strictly (no trailing junk, no silent
 * wrap-around), with the range in the message.
 *
 * Interface routines:
 *   options_parse - fill struct bench_options from argv, or exit
 */
#include "options.h"

#include <errno.h>
#include <stdarg.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shmkv.h"

static const char usage[] =
	"Usage: shmkv-bench [options]\n"
	"Load generator for memcached-protocol servers (memcached, shmkv-server),\n"
	"and for shmkv's direct shared-memory lookups.  Every reply is checked:\n"
	"values are derived from their key, so a wrong value is always noticed.\n"
	"\n"
	"Network mode (memcached text protocol, libuv):\n"
	"  -H, --host=HOST          server host (default 127.0.0.1)\n"
	"  -p, --port=PORT          server TCP port (default 11211)\n"
	"  -u, --unix=PATH          connect to a Unix socket instead of TCP\n"
	"  -c, --connections=N      connections in all, spread over threads (default 4)\n"
	"  -d, --pipeline=D         requests in flight per connection (default 1)\n"
	"  -t, --threads=T          threads, each with its own libuv loop (default 1)\n"
	"  -g, --multiget=K         gets ask for K keys at once: get k1 ... kK\n"
	"                           (default 1; latency is then per request)\n"
	"\n"
	"Direct mode (shmkv client library, lookups straight from shared memory):\n"
	"      --direct=SOCKET      shmkv-server's Unix socket; fork --procs processes\n"
	"                           that each attach and call shmkv_get; with\n"
	"                           --host/--port or --unix as well, the preload goes\n"
	"                           there over the network (pipelined, fast) instead\n"
	"                           of through shmkv_set, one round trip a key\n"
	"  -P, --procs=N            processes (default 1)\n"
	"  -b, --batch=K            look keys up K at a time with shmkv_get_many\n"
	"                           (default 1: single shmkv_get; latency per key)\n"
	"                           sets go through shmkv_set (over the socket)\n"
	"\n"
	"Workload (both modes):\n"
	"  -D, --duration=SECONDS   run this long (default 5)\n"
	"  -n, --requests=N         or stop after N requests in all\n"
	"  -r, --ratio=GET:SET      mix of gets and sets (default 9:1; 1:0 = gets only)\n"
	"  -k, --keys=N             key space (default 100000)\n"
	"      --key-size=B         key length, \"k\" and zero-padded index (default 32)\n"
	"      --value-size=B       value length (default 100)\n"
	"      --distribution=uniform|zipf:S\n"
	"                           key popularity (default uniform; zipf:0.99 is\n"
	"                           the usual skewed load; S > 0)\n"
	"      --seed=N             random seed; same flags and seed, same keys (default 1)\n"
	"      --no-preload         do not set every key before the timed run\n"
	"                           (preload pipelines at least 64 sets a connection)\n"
	"\n"
	"Output:\n"
	"      --json               one JSON object on stdout instead of the table\n"
	"      --progress           a progress line on stderr each second (default:\n"
	"                           only when stderr is a terminal)\n"
	"      --no-progress        never\n"
	"  -h, --help               print this help and exit\n"
	"      --version            print the version and exit\n"
	"\n"
	"Exit status: 0 when every reply was right, 1 when there were errors,\n"
	"wrong values or lost connections (the report says which), 2 for a bad flag.\n";

enum {
	OPT_DIRECT = 256,
	OPT_DISTRIBUTION,
	OPT_SEED,
	OPT_NO_PRELOAD,
	OPT_JSON,
	OPT_PROGRESS,
	OPT_NO_PROGRESS,
	OPT_VERSION,
	OPT_KEY_SIZE,
	OPT_VALUE_SIZE,
};

static const struct option longopts[] = {
	{ "host", required_argument, NULL, 'H' },
	{ "port", required_argument, NULL, 'p' },
	{ "unix", required_argument, NULL, 'u' },
	{ "connections", required_argument, NULL, 'c' },
	{ "pipeline", required_argument, NULL, 'd' },
	{ "threads", required_argument, NULL, 't' },
	{ "multiget", required_argument, NULL, 'g' },
	{ "direct", required_argument, NULL, OPT_DIRECT },
	{ "procs", required_argument, NULL, 'P' },
	{ "batch", required_argument, NULL, 'b' },
	{ "duration", required_argument, NULL, 'D' },
	{ "requests", required_argument, NULL, 'n' },
	{ "ratio", required_argument, NULL, 'r' },
	{ "keys", required_argument, NULL, 'k' },
	{ "key-size", required_argument, NULL, OPT_KEY_SIZE },
	{ "value-size", required_argument, NULL, OPT_VALUE_SIZE },
	{ "distribution", required_argument, NULL, OPT_DISTRIBUTION },
	{ "seed", required_argument, NULL, OPT_SEED },
	{ "no-preload", no_argument, NULL, OPT_NO_PRELOAD },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "progress", no_argument, NULL, OPT_PROGRESS },
	{ "no-progress", no_argument, NULL, OPT_NO_PROGRESS },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ NULL, 0, NULL, 0 },
};

static void __attribute__((noreturn, format(printf, 1, 2)))
bad_flag(const char *fmt, ...)
{
	va_list ap;

	fputs("shmkv-bench: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (see --help)\n", stderr);
	exit(2);
}

static uint64_t parse_uint(const char *flag, const char *s, uint64_t min,
			   uint64_t max)
{
	unsigned long long v;
	char *end;

	errno = 0;
	if (*s < '0' || *s > '9')
		bad_flag("--%s: expected a number from %llu to %llu, got '%s'",
			 flag, (unsigned long long)min, (unsigned long long)max,
			 s);
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		bad_flag("--%s: expected a number from %llu to %llu, got '%s'",
			 flag, (unsigned long long)min, (unsigned long long)max,
			 s);
	return v;
}

static double parse_positive(const char *flag, const char *s, double max)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !isfinite(v) || v <= 0 ||
	    v > max)
		bad_flag("--%s: expected a number above 0 and at most %g, got '%s'",
			 flag, max, s);
	return v;
}

static void parse_ratio(struct bench_options *o, const char *s)
{
	unsigned long g, st;
	char *end;

	errno = 0;
	g = strtoul(s, &end, 10);
	if (end == s || *end != ':' || *s == '-')
		bad_flag("--ratio: expected GET:SET like 9:1, got '%s'", s);
	s = end + 1;
	st = strtoul(s, &end, 10);
	if (end == s || *end != '\0' || *s == '-' || errno != 0 ||
	    g > 1000000 || st > 1000000 || g + st == 0)
		bad_flag("--ratio: expected GET:SET like 9:1 (each 0 to 1000000, not both 0), got '%s'",
			 s);
	o->ratio_get = (unsigned)g;
	o->ratio_set = (unsigned)st;
}

static void parse_distribution(struct bench_options *o, const char *s)
{
	if (strcmp(s, "uniform") == 0) {
		o->zipf_s = 0;
		return;
	}
	if (strncmp(s, "zipf:", 5) != 0)
		bad_flag("--distribution: expected uniform or zipf:S (e.g. zipf:0.99), got '%s'",
			 s);
	o->zipf_s = parse_positive("distribution zipf:S", s + 5, 100.0);
}

/* Which flags argv gave, for the checks that span several flags. */
struct flags_seen {
	bool duration, requests;
	bool net, addr, direct_only;
	int progress; /* -1: not given, then stderr being a terminal decides */
};

static void options_set_defaults(struct bench_options *o)
{
	*o = (struct bench_options){
		.host = "127.0.0.1",
		.port = 11211,
		.connections = 4,
		.pipeline = 1,
		.threads = 1,
		.multiget = 1,
		.procs = 1,
		.batch = 1,
		.duration = 5,
		.ratio_get = 9,
		.ratio_set = 1,
		.keys = 100000,
		.key_size = 32,
		.value_size = 100,
		.seed = 1,
		.preload = true,
	};
}

/*
 * parse_target_flag - a flag that says where and how to connect (server
 * address, connections, direct mode); false if c is not one of them.
 */
static bool parse_target_flag(struct bench_options *o, int c,
			      struct flags_seen *seen)
{
	switch (c) {
	case 'H':
		o->host = optarg;
		seen->addr = true;
		return true;
	case 'p':
		o->port = (unsigned)parse_uint("port", optarg, 1, 65535);
		seen->addr = true;
		return true;
	case 'u':
		o->unix_path = optarg;
		seen->addr = true;
		return true;
	case 'c':
		o->connections = (unsigned)parse_uint("connections", optarg, 1,
						      100000);
		seen->net = true;
		return true;
	case 'd':
		o->pipeline = (unsigned)parse_uint("pipeline", optarg, 1, 4096);
		seen->net = true;
		return true;
	case 't':
		o->threads = (unsigned)parse_uint("threads", optarg, 1, 256);
		seen->net = true;
		return true;
	case 'g':
		o->multiget = (unsigned)parse_uint("multiget", optarg, 1, 1024);
		seen->net = true;
		return true;
	case OPT_DIRECT: o->direct = optarg; return true;
	case 'P':
		o->procs = (unsigned)parse_uint("procs", optarg, 1, 1024);
		seen->direct_only = true;
		return true;
	case 'b':
		o->batch = (unsigned)parse_uint("batch", optarg, 1, 4096);
		seen->direct_only = true;
		return true;
	default: return false;
	}
}

/*
 * parse_workload_flag - any other flag: the workload, the output, or help;
 * an unknown flag or a missing value ends the program with exit 2.
 */
static void parse_workload_flag(struct bench_options *o, int c, char **argv,
				struct flags_seen *seen)
{
	switch (c) {
	case 'D':
		o->duration = parse_positive("duration", optarg, 86400);
		seen->duration = true;
		break;
	case 'n':
		o->requests = parse_uint("requests", optarg, 1, UINT64_MAX / 2);
		seen->requests = true;
		break;
	case 'r': parse_ratio(o, optarg); break;
	case 'k':
		o->keys = parse_uint("keys", optarg, 1, 1000000000000ull);
		break;
	case OPT_KEY_SIZE:
		o->key_size = (unsigned)parse_uint("key-size", optarg, 2,
						   SHMKV_KEY_MAX);
		break;
	case OPT_VALUE_SIZE:
		o->value_size = (size_t)parse_uint("value-size", optarg, 0,
						   64ull << 20);
		break;
	case OPT_DISTRIBUTION: parse_distribution(o, optarg); break;
	case OPT_SEED:
		o->seed = parse_uint("seed", optarg, 0, UINT64_MAX);
		break;
	case OPT_NO_PRELOAD: o->preload = false; break;
	case OPT_JSON: o->json = true; break;
	case OPT_PROGRESS: seen->progress = 1; break;
	case OPT_NO_PROGRESS: seen->progress = 0; break;
	case 'h': fputs(usage, stdout); exit(0);
	case OPT_VERSION: printf("shmkv-bench %s\n", BENCH_VERSION); exit(0);
	case ':': bad_flag("%s needs a value", argv[optind - 1]);
	default: bad_flag("unknown flag %s", argv[optind - 1]);
	}
}

/* options_check - the rules that span several flags; exit 2 on a conflict. */
static void options_check(struct bench_options *o, const struct flags_seen *seen)
{
	if (seen->duration && seen->requests)
		bad_flag("--duration and --requests: give one, not both");
	if (seen->requests)
		o->duration = 0;
	if (o->direct != NULL && seen->net)
		bad_flag("--direct: --connections, --pipeline, --threads and --multiget do not apply to direct mode");
	o->preload_net = o->direct != NULL && seen->addr;
	if (o->preload_net)
		o->connections = 4;
	if (o->direct == NULL && seen->direct_only)
		bad_flag("--procs and --batch need --direct SOCKET");
	if (o->direct == NULL && o->threads > o->connections)
		bad_flag("--threads %u: more threads than --connections %u",
			 o->threads, o->connections);
	o->progress = seen->progress >= 0 ? seen->progress == 1
					  : isatty(STDERR_FILENO);
}

void options_parse(struct bench_options *o, int argc, char **argv)
{
	struct flags_seen seen = { .progress = -1 };
	int c;

	options_set_defaults(o);
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":H:p:u:c:d:t:g:P:b:D:n:r:k:h",
				longopts, NULL)) != -1) {
		if (!parse_target_flag(o, c, &seen))
			parse_workload_flag(o, c, argv, &seen);
	}
	if (optind < argc)
		bad_flag("unexpected argument '%s'", argv[optind]);
	options_check(o, &seen);
}
