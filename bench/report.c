/*
 * report.c - what a run measured, and how it is shown
 *
 * Latency is reported per operation type and for all operations, at the
 * percentiles people compare servers by (p50, p90, p99, p99.9, max).  The
 * human table prints microseconds; JSON keeps nanoseconds and every
 * counter, including the ones that should be zero, because a benchmark
 * that hides its errors measures nothing.
 *
 * Interface routines: see report.h.
 */
#include "report.h"

#include <stdio.h>
#include <string.h>

static const struct {
	const char *name;
	double p;
} percentiles[] = {
	{ "p50", 50.0 },   { "p90", 90.0 },  { "p99", 99.0 },
	{ "p99.9", 99.9 }, { "max", 100.0 },
};
#define NPERCENTILES (sizeof(percentiles) / sizeof(percentiles[0]))

void counters_add(struct bench_counters *into, const struct bench_counters *from)
{
	into->requests += from->requests;
	into->gets += from->gets;
	into->sets += from->sets;
	into->hits += from->hits;
	into->misses += from->misses;
	into->wrong += from->wrong;
	into->errors += from->errors;
}

bool report_failed(const struct bench_result *r)
{
	return r->run.errors || r->run.wrong || r->preload.errors ||
	       r->preload.wrong || r->conns_lost;
}

void report_progress(const struct bench_live *sum, uint64_t prev_ops,
		     double interval, double since_start)
{
	fprintf(stderr,
		"shmkv-bench: %5.0f s  %-8s %10.0f ops/s  errors %llu  wrong %llu\n",
		since_start, sum->phase == 0 ? "preload" : "run",
		interval > 0 ? (double)(sum->ops - prev_ops) / interval : 0.0,
		(unsigned long long)sum->errors, (unsigned long long)sum->wrong);
}

static void print_distribution(FILE *f, const struct bench_options *o)
{
	if (o->zipf_s > 0)
		fprintf(f, "zipf:%g", o->zipf_s);
	else
		fputs("uniform", f);
}

static void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

static void json_latency(FILE *f, const char *name, const struct hist *h)
{
	fprintf(f, "\"%s\":{\"count\":%llu,\"mean\":%.0f", name,
		(unsigned long long)h->count,
		h->count ? (double)h->sum / (double)h->count : 0.0);
	for (size_t i = 0; i < NPERCENTILES; i++)
		fprintf(f, ",\"%s\":%llu", percentiles[i].name,
			(unsigned long long)hist_value_at(h, percentiles[i].p));
	fputc('}', f);
}

static void json_counters(FILE *f, const struct bench_counters *c)
{
	fprintf(f,
		"\"requests\":%llu,\"ops\":%llu,\"gets\":%llu,\"sets\":%llu,"
		"\"hits\":%llu,\"misses\":%llu,\"wrong\":%llu,\"errors\":%llu",
		(unsigned long long)c->requests,
		(unsigned long long)(c->gets + c->sets),
		(unsigned long long)c->gets, (unsigned long long)c->sets,
		(unsigned long long)c->hits, (unsigned long long)c->misses,
		(unsigned long long)c->wrong, (unsigned long long)c->errors);
}

static void print_json(const struct bench_options *o,
		       const struct bench_result *r, const struct hist *all)
{
	FILE *f = stdout;
	double ops = (double)(r->run.gets + r->run.sets);

	fprintf(f, "{\"version\":\"%s\",\"mode\":\"%s\",\"target\":",
		BENCH_VERSION, r->mode);
	json_string(f, r->target);
	if (o->direct)
		fprintf(f, ",\"procs\":%u,\"batch\":%u", o->procs, o->batch);
	else
		fprintf(f,
			",\"threads\":%u,\"connections\":%u,\"pipeline\":%u,"
			"\"multiget\":%u",
			o->threads, o->connections, o->pipeline, o->multiget);
	fprintf(f,
		",\"ratio\":\"%u:%u\",\"keys\":%llu,\"key_size\":%u,"
		"\"value_size\":%zu,\"distribution\":\"",
		o->ratio_get, o->ratio_set, (unsigned long long)o->keys,
		o->key_size, o->value_size);
	print_distribution(f, o);
	fprintf(f, "\",\"seed\":%llu,\"seconds\":%.6f,",
		(unsigned long long)o->seed, r->elapsed);
	json_counters(f, &r->run);
	fprintf(f, ",\"ops_per_sec\":%.1f,\"connections_lost\":%llu",
		r->elapsed > 0 ? ops / r->elapsed : 0.0,
		(unsigned long long)r->conns_lost);
	fprintf(f, ",\"preload\":{\"seconds\":%.6f,", r->preload_elapsed);
	json_counters(f, &r->preload);
	fputs("},\"timing\":", f);
	json_string(f, r->timing);
	fprintf(f, ",\"timer_overhead_ns\":%llu,\"latency_ns\":{",
		(unsigned long long)r->timer_overhead_ns);
	json_latency(f, "all", all);
	fputc(',', f);
	json_latency(f, "get", &r->get_latency);
	fputc(',', f);
	json_latency(f, "set", &r->set_latency);
	fputs("}}\n", f);
}

static void table_latency(FILE *f, const char *name, const struct hist *h)
{
	if (h->count == 0)
		return;
	fprintf(f, "  %-10s", name);
	for (size_t i = 0; i < NPERCENTILES; i++)
		fprintf(f, " %10.1f",
			(double)hist_value_at(h, percentiles[i].p) / 1000.0);
	fprintf(f, " %10.1f %12llu\n", (double)h->sum / (double)h->count / 1000.0,
		(unsigned long long)h->count);
}

static void print_table(const struct bench_options *o,
			const struct bench_result *r, const struct hist *all)
{
	FILE *f = stdout;
	const struct bench_counters *c = &r->run;
	double ops = (double)(c->gets + c->sets);

	fprintf(f, "shmkv-bench %s  %s mode  %s\n", BENCH_VERSION, r->mode,
		r->target);
	if (o->direct)
		fprintf(f, "  %u process%s, %s", o->procs,
			o->procs == 1 ? "" : "es",
			o->batch > 1 ? "shmkv_get_many batches of "
				     : "single shmkv_get");
	else
		fprintf(f, "  %u thread%s, %u connections, pipeline %u",
			o->threads, o->threads == 1 ? "" : "s", o->connections,
			o->pipeline);
	if (o->direct && o->batch > 1)
		fprintf(f, "%u", o->batch);
	if (!o->direct && o->multiget > 1)
		fprintf(f, ", multiget %u", o->multiget);
	fprintf(f, "\n  get:set %u:%u, %llu keys of %u B, values of %zu B, ",
		o->ratio_get, o->ratio_set, (unsigned long long)o->keys,
		o->key_size, o->value_size);
	print_distribution(f, o);
	fprintf(f, ", seed %llu\n\n", (unsigned long long)o->seed);

	if (o->preload)
		fprintf(f,
			"preload     %llu sets in %.2f s, %llu errors, %llu wrong\n",
			(unsigned long long)r->preload.sets, r->preload_elapsed,
			(unsigned long long)r->preload.errors,
			(unsigned long long)r->preload.wrong);
	fprintf(f, "run         %.2f s, %llu requests\n", r->elapsed,
		(unsigned long long)c->requests);
	fprintf(f, "ops/s       %.0f\n", r->elapsed > 0 ? ops / r->elapsed : 0.0);
	fprintf(f, "gets        %llu  (hits %llu, misses %llu)\n",
		(unsigned long long)c->gets, (unsigned long long)c->hits,
		(unsigned long long)c->misses);
	fprintf(f, "sets        %llu\n", (unsigned long long)c->sets);
	fprintf(f, "errors      %llu  wrong values %llu  %s lost %llu\n",
		(unsigned long long)c->errors, (unsigned long long)c->wrong,
		o->direct ? "processes" : "connections",
		(unsigned long long)r->conns_lost);
	fprintf(f, "\n%-12s %10s %10s %10s %10s %10s %10s %12s\n", "latency (us)",
		"p50", "p90", "p99", "p99.9", "max", "mean", "count");
	table_latency(f, "get", &r->get_latency);
	table_latency(f, "set", &r->set_latency);
	table_latency(f, "all", all);
	fprintf(f, "timing: %s; timer overhead about %llu ns\n", r->timing,
		(unsigned long long)r->timer_overhead_ns);
}

void report_print(const struct bench_options *o, const struct bench_result *r)
{
	static struct hist all; /* 17 KiB: not on the stack */

	hist_reset(&all);
	hist_merge(&all, &r->get_latency);
	hist_merge(&all, &r->set_latency);
	if (o->json)
		print_json(o, r, &all);
	else
		print_table(o, r, &all);
	fflush(stdout);
}
