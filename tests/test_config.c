/*
 * test_config.c - tests of server/config.c
 *
 * config_parse is a pure function of argv, so every flag is checked here
 * with good values, bad values and the defaults, without starting a server.
 * Each bad value must give -EINVAL and a message naming the flag.
 * memcached's own flags and --conf (server/config_memcached.c) too; what
 * they do to the process (-u, -d, -P) is tested end to end in test_tools.py.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

#define MAXARGS 32

/*
 * parse - config_parse over a NULL-terminated list of arguments.  An array
 * rather than a variadic function: a NULL passed through "..." is not
 * portably a null pointer.
 */
static int parse_list(struct server_config *cfg, char *err, size_t errlen,
		      const char *const *args)
{
	char *argv[MAXARGS + 1];
	int argc = 0;

	while (argc < MAXARGS && args[argc] != NULL) {
		argv[argc] = (char *)args[argc];
		argc++;
	}
	argv[argc] = NULL;
	return config_parse(argc, argv, cfg, err, errlen);
}

#define parse(cfg, err, errlen, ...) \
	parse_list((cfg), (err), (errlen), \
		   (const char *const[]){ "shmkv-server", __VA_ARGS__ })

/* expect_bad - the arguments fail, and the message mentions what. */
#define expect_bad(what, ...) \
	do { \
		static struct server_config c_; \
		char e_[256]; \
		assert_int_equal(parse(&c_, e_, sizeof(e_), __VA_ARGS__, NULL), \
				 -EINVAL); \
		assert_non_null(strstr(e_, what)); \
		assert_null(strchr(e_, '\n')); \
	} while (0)

static void test_defaults(void **state)
{
	struct server_config cfg;
	char err[256];

	(void)state;
	assert_int_equal(parse(&cfg, err, sizeof(err), NULL), 0);
	assert_int_equal(cfg.action, CONFIG_RUN);
	assert_int_equal(cfg.port, 11211);
	assert_string_equal(cfg.listen, "127.0.0.1");
	assert_string_equal(cfg.run_dir, "/tmp/shmkv-11211");
	assert_string_equal(cfg.unix_socket, "/tmp/shmkv-11211/shmkv.sock");
	assert_int_equal(cfg.memory_mib, 1024);
	assert_true(cfg.workers >= 1);
	assert_int_equal(cfg.max_connections, 1024);
	assert_int_equal(cfg.max_item_size, 1024 * 1024);
	assert_int_equal(cfg.partitions, 128);
	assert_int_equal(cfg.huge_pages, SEGMENT_HUGE_TRY);
	assert_int_equal(cfg.huge_page_size, 0);
	assert_false(cfg.prefault);
	assert_int_equal(cfg.verbosity, 0);
}

static void test_good_values(void **state)
{
	struct server_config cfg;
	char err[256];

	(void)state;
	assert_int_equal(parse(&cfg, err, sizeof(err), "-p", "12345", "-l", "::1",
			       "-m", "64", "-t", "2", "-c", "10", "-I", "2m",
			       "--huge-pages", "off", "--prefault", "-vv", NULL),
			 0);
	assert_int_equal(cfg.port, 12345);
	assert_string_equal(cfg.listen, "::1");
	assert_string_equal(cfg.run_dir, "/tmp/shmkv-12345");
	assert_int_equal(cfg.memory_mib, 64);
	assert_int_equal(cfg.workers, 2);
	assert_int_equal(cfg.max_connections, 10);
	assert_int_equal(cfg.max_item_size, 2 * 1024 * 1024);
	assert_int_equal(cfg.huge_pages, SEGMENT_HUGE_OFF);
	assert_true(cfg.prefault);
	assert_int_equal(cfg.verbosity, 2);

	assert_int_equal(parse(&cfg, err, sizeof(err), "--port=0",
			       "--run-dir=/tmp/x", "--unix-socket=/tmp/y.sock",
			       "--memory=4096", "--max-item-size=512k",
			       "--partitions=64", "--huge-pages=on",
			       "--huge-page-size=1G", NULL),
			 0);
	assert_int_equal(cfg.port, 0);
	assert_string_equal(cfg.run_dir, "/tmp/x");
	assert_string_equal(cfg.unix_socket, "/tmp/y.sock");
	assert_int_equal(cfg.max_item_size, 512 * 1024);
	assert_int_equal(cfg.partitions, 64);
	assert_true(cfg.partitions_given);
	assert_int_equal(cfg.huge_pages, SEGMENT_HUGE_ON);
	assert_int_equal(cfg.huge_page_size, 1024u * 1024 * 1024);

	/* Socket follows --run-dir when not given. */
	assert_int_equal(parse(&cfg, err, sizeof(err), "--run-dir", "/tmp/rd",
			       NULL),
			 0);
	assert_string_equal(cfg.unix_socket, "/tmp/rd/shmkv.sock");
}

static void test_size_suffixes(void **state)
{
	struct server_config cfg;
	char err[256];

	(void)state;
	assert_int_equal(parse(&cfg, err, sizeof(err), "-I", "1024", NULL), 0);
	assert_int_equal(cfg.max_item_size, 1024);
	assert_int_equal(parse(&cfg, err, sizeof(err), "-I", "4K", NULL), 0);
	assert_int_equal(cfg.max_item_size, 4096);
	assert_int_equal(parse(&cfg, err, sizeof(err), "-I", "1M", NULL), 0);
	assert_int_equal(cfg.max_item_size, 1024 * 1024);
	assert_int_equal(parse(&cfg, err, sizeof(err), "-I", "1mb", NULL), 0);
	assert_int_equal(cfg.max_item_size, 1024 * 1024);
	assert_int_equal(parse(&cfg, err, sizeof(err), "-m", "4096", "-I", "1g",
			       NULL),
			 0);
	assert_int_equal(cfg.max_item_size, 1024u * 1024 * 1024);
	assert_int_equal(parse(&cfg, err, sizeof(err), "--huge-page-size", "2M",
			       NULL),
			 0);
	assert_int_equal(cfg.huge_page_size, 2u * 1024 * 1024);
	assert_int_equal(parse(&cfg, err, sizeof(err), "--huge-page-size",
			       "2048k", NULL),
			 0);
	assert_int_equal(cfg.huge_page_size, 2u * 1024 * 1024);
}

static void test_partitions_auto(void **state)
{
	struct server_config cfg;
	char err[256];

	(void)state;
	/* 64 MiB / 8 partitions = 8 MiB = 8 items of 1 MiB. */
	assert_int_equal(parse(&cfg, err, sizeof(err), "-m", "64", NULL), 0);
	assert_int_equal(cfg.partitions, 8);
	assert_false(cfg.partitions_given);
	assert_int_equal(parse(&cfg, err, sizeof(err), "-m", "2", NULL), 0);
	assert_int_equal(cfg.partitions, 1);
	assert_int_equal(parse(&cfg, err, sizeof(err), "-m", "64", "-I", "64k",
			       NULL),
			 0);
	assert_int_equal(cfg.partitions, 128);
	/* An explicit count is kept while a partition holds one item. */
	assert_int_equal(parse(&cfg, err, sizeof(err), "-m", "64",
			       "--partitions", "64", NULL),
			 0);
	assert_int_equal(cfg.partitions, 64);
	expect_bad("--partitions", "-m", "64", "--partitions", "128");
}

static void test_bad_values(void **state)
{
	(void)state;
	expect_bad("--memory: 'abc' is not a number of MiB", "-m", "abc");
	expect_bad("--memory", "--memory", "0");
	expect_bad("--memory", "-m", "-5");
	expect_bad("--memory", "-m", "12x");
	expect_bad("--memory", "-m", "");
	expect_bad("--port", "-p", "65536");
	expect_bad("--port", "--port", "http");
	expect_bad("--listen", "-l", "");
	expect_bad("--workers", "-t", "0");
	expect_bad("--workers", "-t", "100000");
	expect_bad("--max-connections", "-c", "0");
	expect_bad("--max-connections", "-c", "many");
	expect_bad("--max-item-size", "-I", "1x");
	expect_bad("--max-item-size", "-I", "1023");
	expect_bad("--max-item-size", "-I", "2g");
	expect_bad("--max-item-size", "-m", "1", "-I", "1m");
	expect_bad("--partitions", "--partitions", "3");
	expect_bad("--partitions", "--partitions", "0");
	expect_bad("--huge-pages", "--huge-pages", "maybe");
	expect_bad("--huge-page-size", "--huge-page-size", "4k");
	expect_bad("--unix-socket", "-s",
		   "/tmp/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		   "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock");
	expect_bad("--run-dir", "--run-dir",
		   "/tmp/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		   "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
}

static void test_bad_flags(void **state)
{
	(void)state;
	expect_bad("--bogus", "--bogus");
	expect_bad("-x", "-x");
	expect_bad("-m: needs a value", "-m");
	expect_bad("--memory: needs a value", "--memory");
	expect_bad("unexpected argument", "extra");
}

static void test_help_version(void **state)
{
	struct server_config cfg;
	char err[256];

	(void)state;
	assert_int_equal(parse(&cfg, err, sizeof(err), "-h", NULL), 0);
	assert_int_equal(cfg.action, CONFIG_HELP);
	assert_int_equal(parse(&cfg, err, sizeof(err), "--version", NULL), 0);
	assert_int_equal(cfg.action, CONFIG_VERSION);
	/* A parse after an error starts afresh. */
	expect_bad("--memory", "-m", "x");
	assert_int_equal(parse(&cfg, err, sizeof(err), "-p", "1", NULL), 0);
	assert_int_equal(cfg.port, 1);
	assert_string_equal(config_huge_pages_name(SEGMENT_HUGE_TRY), "try");
}

static void test_memcached_flags(void **state)
{
	static struct server_config cfg;
	char err[256];

	(void)state;
	assert_int_equal(parse(&cfg, err, sizeof(err), "-u", "nobody", "-d",
			       "-P", "/tmp/x.pid", "-U", "0", "-a", "0770",
			       "-o", "idle_timeout=30,hashpower=20", "-R", "20",
			       "-l", "::1", "-A", NULL),
			 0);
	assert_true(cfg.shutdown_command);
	assert_string_equal(cfg.user, "nobody");
	assert_true(cfg.daemonize);
	assert_string_equal(cfg.pid_file, "/tmp/x.pid");
	assert_int_equal(cfg.socket_mode, 0770);
	assert_int_equal(cfg.idle_timeout, 30);
	assert_string_equal(cfg.listen, "::1");
	/* One line per ignored setting, for main to print. */
	assert_non_null(strstr(cfg.warnings, "-o hashpower: "));
	assert_non_null(strstr(cfg.warnings, "-R 20: ignored"));
	assert_int_equal(strchr(strchr(cfg.warnings, '\n') + 1, '\n')[1], '\0');
	/* Nothing memcached-specific by default. */
	assert_int_equal(parse(&cfg, err, sizeof(err), NULL), 0);
	assert_string_equal(cfg.user, "");
	assert_false(cfg.daemonize);
	assert_string_equal(cfg.warnings, "");

	expect_bad("-U: '11211': shmkv has no UDP", "-U", "11211");
	assert_int_equal(parse(&cfg, err, sizeof(err), "-F", "-M", "-C", NULL),
			 0);
	assert_true(cfg.flush_disabled);
	assert_true(cfg.evict_disabled);
	assert_true(cfg.cas_disabled);
	assert_int_equal(parse(&cfg, err, sizeof(err), NULL), 0);
	assert_false(cfg.flush_disabled || cfg.evict_disabled ||
		     cfg.cas_disabled);
	expect_bad("-o idle_timeout: 'abc'", "-o", "idle_timeout=abc");
	expect_bad("-o idle_timeout", "-o", "idle_timeout");
	expect_bad("-R: '0'", "-R", "0");
	expect_bad("-a: '999'", "-a", "999");
	assert_int_equal(parse(&cfg, err, sizeof(err), "-l", "127.0.0.1,::1",
			       NULL),
			 0);
	assert_int_equal(config_listen_count(cfg.listen), 2);
	assert_int_equal(config_listen_addr(cfg.listen, 1, err, sizeof(err)), 0);
	assert_string_equal(err, "::1");
	assert_int_equal(config_listen_addr(cfg.listen, 2, err, sizeof(err)),
			 -ENOENT);
	assert_true(config_listen_is_loopback(cfg.listen));
	assert_false(config_listen_is_loopback("127.0.0.1,0.0.0.0"));
	expect_bad("--listen: '127.0.0.1,,::1' has an empty address", "-l",
		   "127.0.0.1,,::1");
	expect_bad("--listen: 'a,b,c,d,e' names 5 addresses; at most 4", "-l",
		   "a,b,c,d,e");
	expect_bad("-u: needs a value", "-u");
}

/* test_conf_file - Debian's /etc/memcached.conf, as it ships. */
static void test_conf_file(void **state)
{
	static struct server_config cfg;
	char path[] = "/tmp/shmkv-test-conf-XXXXXX", arg[64], err[256];
	int fd = mkstemp(path);
	FILE *f;

	(void)state;
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	fputs("# memcached default config file\n"
	      "# Run memcached as a daemon.\n"
	      "-d\n\n"
	      "logfile /var/log/memcached.log\n"
	      "-m 64   # MiB\n"
	      "-p 11311\n"
	      "-u memcache\n"
	      "-l 127.0.0.1\n"
	      "-P /var/run/memcached/memcached.pid\n",
	      f);
	fclose(f);
	/* The command line's flags come after the file's, so they win. */
	assert_int_equal(parse(&cfg, err, sizeof(err), "--conf", path, "-p",
			       "11411", NULL),
			 0);
	assert_int_equal(cfg.port, 11411);
	assert_int_equal(cfg.memory_mib, 64);
	assert_string_equal(cfg.user, "memcache");
	assert_true(cfg.daemonize);
	assert_string_equal(cfg.listen, "127.0.0.1");
	assert_string_equal(cfg.pid_file, "/var/run/memcached/memcached.pid");
	assert_string_equal(cfg.log_file, "/var/log/memcached.log");
	snprintf(arg, sizeof(arg), "--conf=%s", path);
	assert_int_equal(parse(&cfg, err, sizeof(err), arg, NULL), 0);
	assert_int_equal(cfg.port, 11311);

	f = fopen(path, "w");
	assert_non_null(f);
	fputs("-m 64\n-x\n", f);
	fclose(f);
	expect_bad("-x: unknown flag", "--conf", path);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("logfile\n", f);
	fclose(f);
	expect_bad(":1: logfile needs a path", "--conf", path);
	unlink(path);
	expect_bad("--conf: cannot read '/nonexistent/memcached.conf'",
		   "--conf", "/nonexistent/memcached.conf");
	expect_bad("--conf: needs a file", "--conf");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_good_values),
		cmocka_unit_test(test_size_suffixes),
		cmocka_unit_test(test_partitions_auto),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_bad_flags),
		cmocka_unit_test(test_help_version),
		cmocka_unit_test(test_memcached_flags),
		cmocka_unit_test(test_conf_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
