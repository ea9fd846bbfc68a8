/*
 * config_memcached.c - memcached's own flags, its config file, and what
 * they ask of the process (user, daemon, pid file)
 *
 * An operator moving from memcached brings its command line and Debian's
 * /etc/memcached.conf.  Each memcached flag here either means what it
 * means to memcached (-u -d -P -a -A -F -M -C -U 0 -R -o idle_timeout), or is refused
 * with one line saying what shmkv lacks, so a setting is never silently
 * dropped; -o options shmkv has no use for (memcached's internals: slab
 * and LRU tuning) are accepted with a one-line warning, as memcached
 * itself accepts and ignores obsolete ones.
 *
 * --conf FILE reads a file in the format of Debian's /etc/memcached.conf
 * (what its start-memcached and systemd wrapper read): one or more flags
 * a line, "#" to the end of a line is a comment, and "logfile PATH" sends
 * the server's log to PATH.  Its flags come before the command line's, so
 * the command line wins.
 *
 * As memcached: run as root only with -u (-u root says so on purpose);
 * with -u USER, root drops to USER (its groups, then its gid, then its
 * uid) before anything is created, so the run directory and the segment
 * belong to USER.  -d detaches (fork, setsid, stdio to /dev/null unless
 * -v) and -P writes the supervisor's PID, removed at a clean stop; a pid
 * file naming another live process is refused, never overwritten.
 *
 * Interface routines:
 *   config_memcached_option  apply one memcached-only flag
 *   config_expand_conf       argv with a --conf file's flags spliced in
 *   config_prepare_process   root check and -u, -d, -P, logfile
 *   config_finish_process    remove what config_prepare_process made
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "upgrade.h"

/* warn - keep a one-line warning for main to print. */
__attribute__((format(printf, 2, 3))) static void warn(struct server_config *cfg,
						       const char *fmt, ...)
{
	size_t used = strlen(cfg->warnings);
	va_list ap;
	int n;

	if (used + 2 >= sizeof(cfg->warnings))
		return;
	va_start(ap, fmt);
	n = vsnprintf(cfg->warnings + used, sizeof(cfg->warnings) - used - 1,
		      fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	used = strlen(cfg->warnings);
	cfg->warnings[used] = '\n';
	cfg->warnings[used + 1] = '\0';
}

/* memcached's -o KEY=VALUE,...: the one shmkv has, warnings for the rest. */
static int apply_extended(struct server_config *cfg, const char *arg, char *err,
			  size_t errlen)
{
	char buf[512], *save = NULL, *opt;

	if (strlen(arg) >= sizeof(buf))
		return config_seterr(err, errlen, "-o: '%.40s...' is too long",
				     arg);
	snprintf(buf, sizeof(buf), "%s", arg);
	for (opt = strtok_r(buf, ",", &save); opt != NULL;
	     opt = strtok_r(NULL, ",", &save)) {
		char *value = strchr(opt, '=');

		if (value != NULL)
			*value++ = '\0';
		if (strcmp(opt, "idle_timeout") == 0) {
			int rc = config_idle_timeout(cfg, "-o idle_timeout",
						     value ? value : "", err,
						     errlen);

			if (rc < 0)
				return rc;
		} else {
			warn(cfg,
			     "-o %s: memcached's option has no meaning for shmkv; ignored",
			     opt);
		}
	}
	return 0;
}

/*
 * config_memcached_option - apply memcached's flag c (its letter) with
 * arg; 0, or -EINVAL with one line in err.
 */
int config_memcached_option(struct server_config *cfg, int c, const char *arg,
			    char *err, size_t errlen)
{
	uint64_t n;

	switch (c) {
	case 'u':
		if (arg[0] == '\0' || strlen(arg) >= sizeof(cfg->user))
			return config_seterr(err, errlen,
					     "-u: '%s' is not a user name", arg);
		snprintf(cfg->user, sizeof(cfg->user), "%s", arg);
		return 0;
	case 'd': cfg->daemonize = true; return 0;
	case 'P':
		if (arg[0] == '\0' || strlen(arg) >= sizeof(cfg->pid_file))
			return config_seterr(err, errlen,
					     "-P: '%s' is not a file name", arg);
		snprintf(cfg->pid_file, sizeof(cfg->pid_file), "%s", arg);
		return 0;
	case 'U':
		if (strcmp(arg, "0") != 0)
			return config_seterr(err, errlen,
					     "-U: '%s': shmkv has no UDP; only -U 0 (UDP off, memcached's default) is accepted",
					     arg);
		return 0;
	case 'R':
		if (config_parse_u64(arg, &n) < 0 || n == 0)
			return config_seterr(err, errlen,
					     "-R: '%s' is not a number of requests",
					     arg);
		warn(cfg,
		     "-R %s: ignored; a worker answers every command one read brings in",
		     arg);
		return 0;
	case 'o': return apply_extended(cfg, arg, err, errlen);
	case 'A': cfg->shutdown_command = true; return 0;
	case 'F': cfg->flush_disabled = true; return 0;
	case 'M': cfg->evict_disabled = true; return 0;
	case 'C': cfg->cas_disabled = true; return 0;
	default:
		return config_seterr(err, errlen,
				     "internal error: memcached option %d", c);
	}
}

/* conf_add - one word of a --conf file, copied into cfg. */
static int conf_add(struct server_config *cfg, const char *w, size_t *used,
		    int *n, const char *path, int lineno, char *err,
		    size_t errlen)
{
	size_t len = strlen(w) + 1;

	if (*n >= CONFIG_CONF_MAX_WORDS || *used + len > sizeof(cfg->conf_text))
		return config_seterr(err, errlen,
				     "--conf %s:%d: more flags than shmkv reads (%d words, %zu bytes)",
				     path, lineno, CONFIG_CONF_MAX_WORDS,
				     sizeof(cfg->conf_text));
	memcpy(cfg->conf_text + *used, w, len);
	cfg->conf_argv[1 + (*n)++] = cfg->conf_text + *used;
	*used += len;
	return 0;
}

/* conf_words - a --conf file's words into cfg; "logfile PATH" is kept. */
static int conf_words(FILE *f, const char *path, struct server_config *cfg,
		      int *n, char *err, size_t errlen)
{
	char line[1024];
	size_t used = 0;
	int lineno = 0, rc;

	while (fgets(line, sizeof(line), f) != NULL) {
		char *hash = strchr(line, '#'), *save = NULL, *w;

		lineno++;
		if (hash != NULL)
			*hash = '\0';
		w = strtok_r(line, " \t\r\n", &save);
		if (w != NULL && strcmp(w, "logfile") == 0) {
			w = strtok_r(NULL, " \t\r\n", &save);
			if (w == NULL || strlen(w) >= sizeof(cfg->log_file))
				return config_seterr(err, errlen,
						     "--conf %s:%d: logfile needs a path",
						     path, lineno);
			snprintf(cfg->log_file, sizeof(cfg->log_file), "%s", w);
			continue;
		}
		for (; w != NULL; w = strtok_r(NULL, " \t\r\n", &save)) {
			rc = conf_add(cfg, w, &used, n, path, lineno, err,
				      errlen);
			if (rc < 0)
				return rc;
		}
	}
	return 0;
}

/*
 * config_expand_conf - if argv has --conf FILE (or --conf=FILE), an argv
 * in cfg: argv[0], FILE's flags, then the rest of argv without --conf.
 * Returns 0 with *out_argv = argv when there is none, 1 with cfg's argv,
 * or -EINVAL with one line in err.  FILE's logfile sets cfg->log_file.
 */
int config_expand_conf(int argc, char **argv, struct server_config *cfg,
		       int *out_argc, char ***out_argv, char *err, size_t errlen)
{
	const char *path = NULL;
	int i, n = 0, skip = -1, rc;
	FILE *f;

	*out_argc = argc;
	*out_argv = argv;
	for (i = 1; i < argc && path == NULL; i++) {
		if (strcmp(argv[i], "--conf") == 0) {
			if (i + 1 >= argc)
				return config_seterr(err, errlen,
						     "--conf: needs a file; see --help");
			path = argv[i + 1];
			skip = i;
		} else if (strncmp(argv[i], "--conf=", 7) == 0) {
			path = argv[i] + 7;
			skip = i;
		}
	}
	if (path == NULL)
		return 0;
	f = fopen(path, "r");
	if (f == NULL)
		return config_seterr(err, errlen, "--conf: cannot read '%s': %s",
				     path, strerror(errno));
	rc = conf_words(f, path, cfg, &n, err, errlen);
	fclose(f);
	if (rc < 0)
		return rc;
	if (n + argc + 1 >
	    (int)(sizeof(cfg->conf_argv) / sizeof(cfg->conf_argv[0])))
		return config_seterr(err, errlen,
				     "--conf: too many flags in all");
	cfg->conf_argv[0] = argv[0];
	n++;
	for (i = 1; i < argc; i++) {
		if (i == skip) {
			i += strcmp(argv[i], "--conf") == 0;
			continue;
		}
		cfg->conf_argv[n++] = argv[i];
	}
	cfg->conf_argv[n] = NULL;
	*out_argc = n;
	*out_argv = cfg->conf_argv;
	return 1;
}

/* drop_to_user - memcached's -u: root becomes USER for good. */
static int drop_to_user(const char *user, char *err, size_t errlen)
{
	struct passwd *pw = getpwnam(user);

	if (pw == NULL)
		return config_seterr(err, errlen,
				     "-u: can't find the user %s to switch to",
				     user);
	if (pw->pw_uid == 0)
		return 0;
	if (initgroups(pw->pw_name, pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 ||
	    setuid(pw->pw_uid) < 0)
		return config_seterr(err, errlen,
				     "-u: failed to assume the identity of %s: %s",
				     user, strerror(errno));
	return 0;
}

/* daemonize - memcached's -d: the parent exits 0, the child leads a new
 * session; stdio goes to /dev/null unless -v (then the log stays). */
static int daemonize(const struct server_config *cfg, char *err, size_t errlen)
{
	pid_t pid = fork();
	int fd;

	if (pid < 0)
		return config_seterr(err, errlen, "-d: fork: %s",
				     strerror(errno));
	if (pid > 0)
		_exit(0);
	if (setsid() < 0)
		return config_seterr(err, errlen, "-d: setsid: %s",
				     strerror(errno));
	fd = open("/dev/null", O_RDWR);
	if (fd < 0)
		return config_seterr(err, errlen, "-d: /dev/null: %s",
				     strerror(errno));
	dup2(fd, STDIN_FILENO);
	if (cfg->verbosity == 0 && cfg->log_file[0] == '\0') {
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
	}
	if (fd > STDERR_FILENO)
		close(fd);
	return 0;
}

/* pid_in - the PID a pid file holds, or 0. */
static pid_t pid_in(const char *path)
{
	char buf[32];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	long v;

	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	v = strtol(buf, NULL, 10);
	return v > 0 ? (pid_t)v : 0;
}

/* pid_file_free - refuse a pid file naming another live process. */
static int pid_file_free(const char *path, char *err, size_t errlen)
{
	pid_t old = pid_in(path);

	/* A live upgrade's new binary takes the pid file over from the
	 * server that started it (server/upgrade.c). */
	if (old > 0 && old == getppid() && getenv(UPGRADE_ENV) != NULL)
		return 0;
	if (old > 0 && old != getpid() && (kill(old, 0) == 0 || errno == EPERM))
		return config_seterr(err, errlen,
				     "-P: %s names process %d, which is running; stop it or choose another file",
				     path, (int)old);
	return 0;
}

static int write_pid_file(const char *path, char *err, size_t errlen)
{
	char buf[32];
	int fd, n;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
		  0644);
	if (fd < 0)
		return config_seterr(err, errlen, "-P: cannot write %s: %s",
				     path, strerror(errno));
	n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	if (write(fd, buf, (size_t)n) != n) {
		close(fd);
		return config_seterr(err, errlen, "-P: cannot write %s: %s",
				     path, strerror(errno));
	}
	close(fd);
	return 0;
}

/*
 * config_prepare_process - before the supervisor starts: refuse root
 * without -u, drop to -u's user, open the logfile, detach (-d), write the
 * pid file (-P).  0, or -EINVAL with one line in err.
 */
int config_prepare_process(struct server_config *cfg, char *err, size_t errlen)
{
	int rc;

	if (geteuid() == 0) {
		if (cfg->user[0] == '\0')
			return config_seterr(
				err, errlen,
				"can't run as root without the -u switch (-u root to mean it)");
		rc = drop_to_user(cfg->user, err, errlen);
		if (rc < 0)
			return rc;
	}
	if (cfg->log_file[0] != '\0') {
		int fd = open(cfg->log_file,
			      O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);

		if (fd < 0)
			return config_seterr(err, errlen, "logfile %s: %s",
					     cfg->log_file, strerror(errno));
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		close(fd);
	}
	/* Checked before -d, so that the refusal reaches the terminal. */
	if (cfg->pid_file[0] != '\0') {
		rc = pid_file_free(cfg->pid_file, err, errlen);
		if (rc < 0)
			return rc;
	}
	if (cfg->daemonize) {
		rc = daemonize(cfg, err, errlen);
		if (rc < 0)
			return rc;
	}
	if (cfg->pid_file[0] != '\0') {
		rc = write_pid_file(cfg->pid_file, err, errlen);
		if (rc < 0)
			return rc;
		cfg->pid_file_written = getpid();
	}
	return 0;
}

/* config_finish_process - the pid file goes, if it is still ours. */
void config_finish_process(const struct server_config *cfg)
{
	if (cfg->pid_file_written > 0 && cfg->pid_file_written == getpid() &&
	    pid_in(cfg->pid_file) == getpid())
		unlink(cfg->pid_file);
}
