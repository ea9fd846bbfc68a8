/*
 * test_number.c - client/number.c: memcached's number grammar
 *
 * What strtoull and memcached's safe_strtoull accept, byte for byte: the
 * server's command parser and incr/decr on a stored value both read
 * numbers with it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "number.h"

static bool u64(const char *s, uint64_t *v)
{
	return number_parse_u64(s, strlen(s), v);
}

static void test_accepted(void **state)
{
	uint64_t v = 1;

	(void)state;
	assert_true(u64("0", &v));
	assert_int_equal(v, 0);
	assert_true(u64("18446744073709551615", &v));
	assert_true(v == UINT64_MAX);
	assert_true(u64("  +42", &v));
	assert_int_equal(v, 42);
	/* White space ends the number, and what follows is not read: a
	 * number decr padded and an append extended. */
	assert_true(u64("304   12", &v));
	assert_int_equal(v, 304);
	assert_true(u64("7\r\n", &v));
	assert_int_equal(v, 7);
	assert_true(u64("-0", &v));
	assert_int_equal(v, 0);
	/* strtoull's wrap: "-n" is 2^64 - n, which safe_strtoull keeps when
	 * it does not look negative. */
	assert_true(u64("-18446744073709551615", &v));
	assert_int_equal(v, 1);
}

static void test_refused(void **state)
{
	uint64_t v = 99;
	bool neg;

	(void)state;
	assert_false(u64("", &v));
	assert_false(u64("   ", &v));
	assert_false(u64("-", &v));
	assert_false(u64("12a", &v));
	assert_false(u64("0x10", &v));
	assert_false(u64("18446744073709551616", &v)); /* ERANGE */
	assert_false(u64("-1", &v));
	assert_int_equal(v, 99); /* untouched on failure */
	/* number_parse itself takes "-1", as strtoull does. */
	assert_true(number_parse("-1", 2, &v, &neg));
	assert_true(neg);
	assert_true(v == UINT64_MAX);
	/* The length bounds the scan: no NUL needed. */
	assert_true(number_parse_u64("123456", 3, &v));
	assert_int_equal(v, 123);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accepted),
		cmocka_unit_test(test_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
