/*
 * direct.h - direct mode: forked processes look keys up in shmkv's shared
 * segment through libshmkv, checking every value
 *
 * Interface routines:
 *   direct_run - attach, fork --procs processes, preload, run, merge their
 *                results; returns 0, or -1 after printing why it could not
 *                run (e.g. the attach failed: shmkv_strerror and
 *                shmkv_last_error)
 */
#ifndef BENCH_DIRECT_H
#define BENCH_DIRECT_H

#include "keyspace.h"
#include "options.h"
#include "report.h"

int direct_run(const struct bench_options *o, const struct keyspace *ks,
	       struct bench_result *res);

#endif
