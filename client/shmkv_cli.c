/*
 * shmkv_cli.c - `shmkv`, a command-line client that uses libshmkv
 *
 *   shmkv [-s SOCKET] get KEY           print the value (read from shared memory)
 *   shmkv [-s SOCKET] set KEY VALUE [--ttl N] [--flags N]
 *   shmkv [-s SOCKET] del KEY
 *   shmkv [-s SOCKET] stats             the server's stats
 *
 * It is a user of the public API like any other program, which makes it a
 * quick way to see that attaching works.  Exit codes follow grep: 0 found
 * or done, 1 not found, 2 error (including bad usage).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shmkv.h"

#define DEFAULT_SOCKET "/tmp/shmkv-11211/shmkv.sock"

static void usage(FILE *to)
{
	fprintf(to,
		"usage: shmkv [-s SOCKET] get KEY\n"
		"       shmkv [-s SOCKET] set KEY VALUE [--ttl SECONDS] [--flags N]\n"
		"       shmkv [-s SOCKET] del KEY\n"
		"       shmkv [-s SOCKET] stats\n"
		"SOCKET defaults to $SHMKV_SOCKET, else " DEFAULT_SOCKET ".\n"
		"Exit status: 0 found/done, 1 not found, 2 error.\n");
}

static int bad_usage(const char *why)
{
	fprintf(stderr, "shmkv: %s\n", why);
	return 2;
}

static int parse_i64(const char *flag, const char *s, int64_t *out)
{
	char *end;

	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0') {
		fprintf(stderr, "shmkv: %s: '%s' is not a whole number\n", flag, s);
		return -1;
	}
	*out = v;
	return 0;
}

static int report(enum shmkv_status st)
{
	if (st == SHMKV_OK)
		return 0;
	if (st == SHMKV_NOT_FOUND)
		return 1;
	fprintf(stderr, "shmkv: %s: %s\n", shmkv_strerror(st),
		shmkv_last_error());
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
		if (isatty(STDOUT_FILENO))
			putchar('\n');
		free(value);
	}
	return report(st);
}

static int cmd_stats(shmkv *kv)
{
	char *text = NULL;
	enum shmkv_status st = shmkv_server_stats(kv, &text);
	struct shmkv_counters c;

	if (st != SHMKV_OK)
		return report(st);
	fputs(text, stdout);
	free(text);
	shmkv_counters(kv, &c);
	printf("this process: %" PRIu64 " direct hits, %" PRIu64 " misses\n",
	       c.hits, c.misses);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "ttl", required_argument, NULL, 't' },
		{ "flags", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = getenv("SHMKV_SOCKET");
	int64_t ttl = 0, flags = 0;
	shmkv *kv = NULL;
	int opt, rc;

	if (path == NULL || *path == '\0')
		path = DEFAULT_SOCKET;
	while ((opt = getopt_long(argc, argv, "+s:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 's':
			path = optarg;
			break;
		case 't':
			if (parse_i64("--ttl", optarg, &ttl) < 0)
				return 2;
			break;
		case 'f':
			if (parse_i64("--flags", optarg, &flags) < 0 ||
			    flags < 0 || flags > UINT32_MAX)
				return bad_usage("--flags: must be 0..4294967295");
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	/* Options may also follow the command's words (set K V --ttl 5). */
	int nargs = argc - optind;
	char **args = argv + optind;
	if (nargs < 1)
		return bad_usage("missing command: get, set, del or stats");

	const char *cmd = args[0];
	int want = strcmp(cmd, "get") == 0 || strcmp(cmd, "del") == 0 ? 2
		   : strcmp(cmd, "set") == 0 ? 3
		   : strcmp(cmd, "stats") == 0 ? 1 : -1;
	if (want < 0) {
		fprintf(stderr, "shmkv: unknown command '%s': use get, set, del "
			"or stats\n", cmd);
		return 2;
	}
	optind = 1;
	if (nargs > want) {
		int sub_argc = nargs - want + 1;
		char **sub_argv = args + want - 1;

		while ((opt = getopt_long(sub_argc, sub_argv, "s:", longopts,
					  NULL)) != -1) {
			if (opt == 't' && parse_i64("--ttl", optarg, &ttl) == 0)
				continue;
			if (opt == 'f' && parse_i64("--flags", optarg, &flags) == 0 &&
			    flags >= 0 && flags <= UINT32_MAX)
				continue;
			if (opt == 's') {
				path = optarg;
				continue;
			}
			return bad_usage("bad option after the command; see --help");
		}
		if (optind != sub_argc)
			return bad_usage("too many arguments; see --help");
	} else if (nargs < want) {
		fprintf(stderr, "shmkv: %s needs %d argument%s; see --help\n",
			cmd, want - 1, want == 2 ? "" : "s");
		return 2;
	}

	enum shmkv_status st = shmkv_open(path, &kv);
	if (st != SHMKV_OK) {
		fprintf(stderr, "shmkv: cannot attach to %s: %s\n", path,
			shmkv_last_error());
		return 2;
	}
	if (strcmp(cmd, "get") == 0)
		rc = cmd_get(kv, args[1]);
	else if (strcmp(cmd, "set") == 0)
		rc = report(shmkv_set(kv, args[1], strlen(args[1]), args[2],
				      strlen(args[2]), (uint32_t)flags, ttl));
	else if (strcmp(cmd, "del") == 0)
		rc = report(shmkv_delete(kv, args[1], strlen(args[1])));
	else
		rc = cmd_stats(kv);
	shmkv_close(kv);
	return rc;
}
