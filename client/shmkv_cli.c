/*
 * shmkv_cli.c - `shmkv`, a command-line client that uses libshmkv
 *
 *   shmkv get KEY                 print the value (read from shared memory)
 *   shmkv set KEY VALUE|-         store VALUE, or standard input for -
 *   shmkv del KEY | --prefix P    delete a key, or every key starting with P
 *   shmkv keys [PREFIX]           list keys (read from shared memory)
 *   shmkv stats                   the server's stats
 *
 * Options (-s SOCKET, --ttl, --flags, --long, --prefix, --verbose) may come
 * before or after the command's words; `--` ends them, for a value that
 * starts with a dash.  It is a user of the public API like any other
 * program.  Exit codes follow grep: 0 found or done, 1 not found, 2 error
 * (including bad usage).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shmkv.h"

#define DEFAULT_SOCKET "/tmp/shmkv-11211/shmkv.sock"
#ifndef SHMKV_VERSION
#define SHMKV_VERSION "unknown"
#endif

static const char *prog = "shmkv";

/* What the command line asked for. */
struct cli {
	const char *path;
	int64_t ttl;
	uint32_t flags;
	const char *prefix; /* del --prefix */
	bool long_list;	    /* keys --long */
	bool verbose;	    /* stats: this process's counters on stderr */
	int nargs;
	char **args; /* the command and its words */
};

static void usage(FILE *to)
{
	fprintf(to,
		"usage: %1$s [options] get KEY\n"
		"       %1$s [options] set KEY VALUE|- [--ttl SECONDS] [--flags N]\n"
		"       %1$s [options] del KEY\n"
		"       %1$s [options] del --prefix PREFIX\n"
		"       %1$s [options] keys [PREFIX] [--long]\n"
		"       %1$s [options] stats [--verbose]\n"
		"Options may come anywhere; -- ends them.\n"
		"  -s, --socket=PATH  the server's Unix socket (default $SHMKV_SOCKET,\n"
		"                     else " DEFAULT_SOCKET ")\n"
		"  --ttl=SECONDS      set: expire after this long (0 = never)\n"
		"  --flags=N          set: the client flags, 0..4294967295\n"
		"  -l, --long         keys: also size, flags and seconds left (-1 = never)\n"
		"  -v, --verbose      stats: this process's direct hits/misses on stderr\n"
		"  -V, --version      print the version and exit\n"
		"  -h, --help         print this help and exit\n"
		"A VALUE of - reads the value from standard input.\n"
		"Exit status: 0 found/done, 1 not found, 2 error.\n",
		prog);
}

static int fail_usage(const char *fmt, const char *arg)
{
	fprintf(stderr, "%s: ", prog);
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "; see %s --help\n", prog);
	return 2;
}

static int parse_i64(const char *flag, const char *s, int64_t *out)
{
	char *end;

	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0') {
		fprintf(stderr, "%s: %s: '%s' is not a whole number\n", prog,
			flag, s);
		return -1;
	}
	*out = v;
	return 0;
}

/* 0, 1 (exit now with status 0: --help, --version) or 2 (bad usage). */
static int parse_options(int argc, char **argv, struct cli *c)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "ttl", required_argument, NULL, 't' },
		{ "flags", required_argument, NULL, 'f' },
		{ "prefix", required_argument, NULL, 'p' },
		{ "long", no_argument, NULL, 'l' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int64_t n;
	int opt;

	/* Leading ':' so that this reports errors in its own words. */
	while ((opt = getopt_long(argc, argv, ":s:lvVh", longopts, NULL)) != -1) {
		switch (opt) {
		case 's': c->path = optarg; break;
		case 't':
			if (parse_i64("--ttl", optarg, &c->ttl) < 0)
				return 2;
			break;
		case 'f':
			if (parse_i64("--flags", optarg, &n) < 0)
				return 2;
			if (n < 0 || n > UINT32_MAX)
				return fail_usage("--flags: %s is not in 0..4294967295",
						  optarg);
			c->flags = (uint32_t)n;
			break;
		case 'p': c->prefix = optarg; break;
		case 'l': c->long_list = true; break;
		case 'v': c->verbose = true; break;
		case 'V':
			printf("%s (shmkv) %s\n", prog, SHMKV_VERSION);
			return 1;
		case 'h': usage(stdout); return 1;
		case ':':
			return fail_usage("%s needs a value", argv[optind - 1]);
		default:
			return fail_usage("unknown option '%s'",
					  argv[optind - 1]);
		}
	}
	c->nargs = argc - optind;
	c->args = argv + optind;
	return 0;
}

/* Does the command have the words it needs?  0, or 2 after saying why. */
static int check_words(const struct cli *c)
{
	static const struct {
		const char *name;
		int min, max; /* words after the command */
	} cmds[] = {
		{ "get", 1, 1 },  { "set", 2, 2 },   { "del", 0, 1 },
		{ "keys", 0, 1 }, { "stats", 0, 0 },
	};

	if (c->nargs < 1)
		return fail_usage("%s", "missing command: get, set, del, keys or "
					"stats");
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (strcmp(c->args[0], cmds[i].name) != 0)
			continue;
		int words = c->nargs - 1;
		bool del = strcmp(cmds[i].name, "del") == 0;

		if (del && (words == 1) == (c->prefix != NULL))
			return fail_usage("%s", "del takes a KEY or --prefix "
						"PREFIX");
		if (words < cmds[i].min)
			return fail_usage("%s needs more arguments", c->args[0]);
		if (words > cmds[i].max)
			return fail_usage("too many arguments for %s",
					  c->args[0]);
		return 0;
	}
	return fail_usage("unknown command '%s': use get, set, del, keys or "
			  "stats",
			  c->args[0]);
}

static int report(enum shmkv_status st)
{
	if (st == SHMKV_OK)
		return 0;
	if (st == SHMKV_NOT_FOUND)
		return 1;
	fprintf(stderr, "%s: %s\n", prog, shmkv_last_error());
	return 2;
}

static int cmd_get(shmkv *kv, const char *key)
{
	void *value = NULL;
	size_t len = 0;
	enum shmkv_status st = shmkv_get_alloc(kv, key, strlen(key), &value,
					       &len, NULL);

	if (st == SHMKV_OK) {
		fwrite(value, 1, len, stdout);
		/* A person at a terminal wants the prompt on its own line; a
		 * pipe or a file gets the bytes exactly. */
		if (isatty(STDOUT_FILENO))
			putchar('\n');
		free(value);
	}
	return report(st);
}

/* All of standard input, in memory from malloc. */
static char *read_stdin(size_t *len)
{
	size_t cap = 4096, n = 0, got;
	char *buf = malloc(cap);

	while (buf != NULL && (got = fread(buf + n, 1, cap - n, stdin)) > 0) {
		n += got;
		if (n == cap) {
			char *bigger = realloc(buf, cap * 2);

			if (bigger == NULL)
				free(buf);
			buf = bigger;
			cap *= 2;
		}
	}
	if (buf != NULL && ferror(stdin)) {
		free(buf);
		return NULL;
	}
	*len = n;
	return buf;
}

static int cmd_set(shmkv *kv, const struct cli *c)
{
	const char *key = c->args[1], *arg = c->args[2];
	size_t len = strlen(arg);
	char *in = NULL;
	int rc;

	if (strcmp(arg, "-") == 0) {
		in = read_stdin(&len);
		if (in == NULL) {
			fprintf(stderr,
				"%s: cannot read the value from standard "
				"input: %s\n",
				prog, strerror(errno));
			return 2;
		}
		arg = in;
	}
	rc = report(shmkv_set(kv, key, strlen(key), arg, len, c->flags, c->ttl));
	free(in);
	return rc;
}

static int cmd_del(shmkv *kv, const struct cli *c)
{
	size_t deleted = 0;
	enum shmkv_status st;

	if (c->prefix == NULL)
		return report(shmkv_delete(kv, c->args[1], strlen(c->args[1])));
	st = shmkv_delete_prefix(kv, c->prefix, strlen(c->prefix), &deleted);
	if (st != SHMKV_OK)
		return report(st);
	printf("deleted %zu key%s\n", deleted, deleted == 1 ? "" : "s");
	return deleted > 0 ? 0 : 1;
}

struct listing {
	bool long_list;
	size_t n;
};

static int print_key(const struct shmkv_key_info *k, void *arg)
{
	struct listing *l = arg;

	fwrite(k->key, 1, k->key_len, stdout);
	if (l->long_list)
		printf(" %zu %" PRIu32 " %" PRId64, k->value_len, k->flags,
		       k->ttl);
	putchar('\n');
	l->n++;
	return 0;
}

static int cmd_keys(shmkv *kv, const struct cli *c)
{
	const char *prefix = c->nargs > 1 ? c->args[1] : "";
	struct listing l = { c->long_list, 0 };
	enum shmkv_status st = shmkv_scan(kv, prefix, strlen(prefix), print_key,
					  &l);

	if (st != SHMKV_OK)
		return report(st);
	return l.n > 0 ? 0 : 1;
}

static int cmd_stats(shmkv *kv, const struct cli *c)
{
	char *text = NULL;
	enum shmkv_status st = shmkv_server_stats(kv, &text);
	struct shmkv_counters n;

	if (st != SHMKV_OK)
		return report(st);
	fputs(text, stdout);
	free(text);
	if (c->verbose) {
		shmkv_counters(kv, &n);
		fprintf(stderr,
			"%s: this process: %" PRIu64 " direct hits, %" PRIu64
			" misses\n",
			prog, n.hits, n.misses);
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct cli c = { .path = getenv("SHMKV_SOCKET") };
	const char *slash = argc > 0 ? strrchr(argv[0], '/') : NULL;
	shmkv *kv = NULL;
	int rc;

	if (argc > 0 && argv[0][0] != '\0')
		prog = slash != NULL ? slash + 1 : argv[0];
	if (c.path == NULL || *c.path == '\0')
		c.path = DEFAULT_SOCKET;
	rc = parse_options(argc, argv, &c);
	if (rc != 0)
		return rc == 1 ? 0 : rc;
	if ((rc = check_words(&c)) != 0)
		return rc;

	if (shmkv_open(c.path, &kv) != SHMKV_OK) {
		fprintf(stderr, "%s: cannot attach to %s: %s\n", prog, c.path,
			shmkv_last_error());
		return 2;
	}
	const char *cmd = c.args[0];
	if (strcmp(cmd, "get") == 0)
		rc = cmd_get(kv, c.args[1]);
	else if (strcmp(cmd, "set") == 0)
		rc = cmd_set(kv, &c);
	else if (strcmp(cmd, "del") == 0)
		rc = cmd_del(kv, &c);
	else if (strcmp(cmd, "keys") == 0)
		rc = cmd_keys(kv, &c);
	else
		rc = cmd_stats(kv, &c);
	shmkv_close(kv);
	if (fflush(stdout) != 0 && rc == 0) {
		fprintf(stderr, "%s: cannot write the output: %s\n", prog,
			strerror(errno));
		rc = 2;
	}
	return rc;
}
