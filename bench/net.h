/*
 * net.h - network mode: drive a memcached-protocol server over TCP or a
 * Unix socket with libuv, checking every reply
 *
 * Interface routines:
 *   net_run - preload, run the timed phase, fill in the result; returns 0,
 *             or -1 after printing why the run could not start
 */
#ifndef BENCH_NET_H
#define BENCH_NET_H

#include "keyspace.h"
#include "options.h"
#include "report.h"

int net_run(const struct bench_options *o, const struct keyspace *ks,
	    struct bench_result *res);

#endif
