/*
 * main.c - shmkv-server's entry point
 *
 * Parses the flags and hands over to the supervisor.  Exit statuses: 0 after
 * a clean stop (or --help, --version, a done --upgrade), 1 when start-up
 * or an --upgrade fails, 2 for a bad flag or value, which gets exactly one
 * line on stderr naming it.
 *
 * Interface routines: main
 */
#include <stdio.h>

#include "config.h"
#include "supervisor.h"
#include "upgrade.h"

int main(int argc, char **argv)
{
	struct server_config cfg;
	char err[512];

	upgrade_save_argv(argc, argv);
	if (config_parse(argc, argv, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, SERVER_NAME ": %s\n", err);
		return 2;
	}
	switch (cfg.action) {
	case CONFIG_HELP:
		config_usage(stdout);
		return 0;
	case CONFIG_VERSION:
		printf(SERVER_NAME " " SERVER_VERSION "\n");
		return 0;
	case CONFIG_RUN:
		break;
	}
	if (cfg.upgrade)
		return upgrade_request(&cfg);
	return supervisor_run(&cfg);
}
