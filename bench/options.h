/*
 * options.h - shmkv-bench's command line
 *
 * Interface routines:
 *   options_parse - fill struct bench_options from argv, or exit: 0 after
 *                   --help/--version, 2 with one line naming a bad flag
 */
#ifndef BENCH_OPTIONS_H
#define BENCH_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BENCH_VERSION "0.1.0"

struct bench_options {
	/* network mode */
	const char *host;
	unsigned port;
	const char *unix_path;
	unsigned connections;
	unsigned pipeline;
	unsigned threads;
	unsigned multiget;
	/* direct mode */
	const char *direct; /* the server's Unix socket; NULL = network */
	unsigned procs;
	unsigned batch;
	bool preload_net;  /* preload over the network address given */
	bool preload_only; /* internal: net_run preloads and stops */
	/* both */
	double duration; /* seconds; 0 when --requests is given */
	uint64_t requests;
	unsigned ratio_get;
	unsigned ratio_set;
	uint64_t keys;
	unsigned key_size;
	size_t value_size;
	double zipf_s; /* 0 = uniform */
	uint64_t seed;
	bool preload;
	bool json;
	bool progress;
};

void options_parse(struct bench_options *o, int argc, char **argv);

#endif
