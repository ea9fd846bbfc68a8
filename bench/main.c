/*
 * main.c - shmkv-bench: a load generator for memcached-protocol servers and
 * for shmkv's direct shared-memory lookups
 *
 * Two modes share the workload (keys, values, mix, distribution) and the
 * report: network mode (net.c) speaks memcached's text protocol over TCP or
 * a Unix socket, so it measures memcached and shmkv-server alike; direct
 * mode (direct.c) forks processes that look keys up through libshmkv.
 * Every reply is checked against the value its key must hold (keyspace.c),
 * and errors, misses and wrong values are reported, never dropped.
 *
 * Exit status: 0 when every reply was right, 1 when anything was not (or
 * the run could not start), 2 for a bad flag.
 *
 * Interface routines: main.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "direct.h"
#include "keyspace.h"
#include "net.h"
#include "options.h"
#include "report.h"

int main(int argc, char **argv)
{
	static struct bench_result res; /* two histograms: not on the stack */
	struct bench_options o;
	struct keyspace ks;
	char err[200];
	int rc;

	options_parse(&o, argc, argv);
	if (keyspace_init(&ks, o.keys, o.key_size, o.value_size, o.zipf_s, err,
			  sizeof(err)) != 0) {
		fprintf(stderr, "shmkv-bench: %s (see --help)\n", err);
		return 2;
	}
	/* A server that goes away mid-write must show up as a lost
	 * connection in the report, not kill the benchmark. */
	signal(SIGPIPE, SIG_IGN);
	hist_reset(&res.get_latency);
	hist_reset(&res.set_latency);
	rc = o.direct ? direct_run(&o, &ks, &res) : net_run(&o, &ks, &res);
	if (rc != 0)
		return 1;
	report_print(&o, &res);
	return report_failed(&res) ? 1 : 0;
}
