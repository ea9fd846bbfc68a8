/*
 * main.c - shmkv-server's entry point
 *
 * Parses the flags and hands over to the supervisor.  Exit statuses: 0 after
 * a clean stop (or --help, --version, a done --upgrade), 1 when start-up
 * or an --upgrade fails, 2 for a bad flag or value, which gets exactly one
 * line on stderr naming it.  Before the supervisor starts, memcached's
 * process habits (config_memcached.c): root only with -u, then -d and -P;
 * the pid file goes at the end.
 *
 * Interface routines: main
 */
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "supervisor.h"
#include "upgrade.h"

int main(int argc, char **argv)
{
	static struct server_config cfg; /* large: a --conf file's words */
	char err[512];
	const char *w, *nl;
	int rc;

	upgrade_save_argv(argc, argv);
	if (config_parse(argc, argv, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, SERVER_NAME ": %s\n", err);
		return 2;
	}
	switch (cfg.action) {
	case CONFIG_HELP: config_usage(stdout); return 0;
	case CONFIG_VERSION:
		printf(SERVER_NAME " " SERVER_VERSION "\n");
		return 0;
	case CONFIG_RUN: break;
	}
	for (w = cfg.warnings; (nl = strchr(w, '\n')) != NULL; w = nl + 1)
		fprintf(stderr, SERVER_NAME ": warning: %.*s\n", (int)(nl - w),
			w);
	if (cfg.upgrade)
		return upgrade_request(&cfg);
	if (config_prepare_process(&cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, SERVER_NAME ": %s\n", err);
		return 2;
	}
	rc = supervisor_run(&cfg);
	config_finish_process(&cfg);
	return rc;
}
