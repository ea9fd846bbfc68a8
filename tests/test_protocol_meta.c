/*
 * test_protocol_meta.c - tests for server/protocol_meta.c
 *
 * Drives proto_process directly on a real cache (64 MiB, 16 partitions).
 * Expected replies are memcached 1.6.18's bytes for the same input, checked
 * against /usr/bin/memcached, except where a comment says the behaviour is
 * ours (me's size field).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "cache.h"
#include "protocol.h"
#include "protocol_fixture.h"

static void test_mg(void **state)
{
	struct fx *f = *state;

	expect(f,
	       "set a 0 0 3\r\nabc\r\nmg a v\r\nmg a s v f t k\r\n"
	       "mg a k s v\r\nmg a O123 k q\r\nmg b O123 k\r\nmg b q\r\n"
	       "mg b q k O1\r\nmn\r\n",
	       "STORED\r\nVA 3\r\nabc\r\nVA 3 s3 f0 t-1 ka\r\nabc\r\n"
	       "VA 3 ka s3\r\nabc\r\nHD O123 ka\r\nEN O123 kb\r\nMN\r\n");
	expect(f,
	       "mg a x\r\nmg a vv\r\nmg nope O\r\nmg a s s\r\nmg a E5\r\n"
	       "mg a C5 s\r\n",
	       "CLIENT_ERROR invalid flag\r\nVA 3\r\nabc\r\nEN O\r\n"
	       "CLIENT_ERROR duplicate flag\r\nCLIENT_ERROR invalid flag\r\n"
	       "HD s3\r\n");
	expect(f,
	       "mg a T\r\nmg a Tx\r\nmg a N\r\nmg a Nx\r\nmg a R\r\nmg a Rx\r\n",
	       "CLIENT_ERROR bad token in command line format\r\n"
	       "CLIENT_ERROR bad token in command line format\r\n"
	       "CLIENT_ERROR bad token in command line format\r\n"
	       "CLIENT_ERROR bad token in command line format\r\n"
	       "CLIENT_ERROR bad token in command line format\r\n"
	       "CLIENT_ERROR bad token in command line format\r\n");
	/* O tokens: 32 bytes with the O, no more. */
	expect(f,
	       "mg z Oooooooooooooooooooooooooooooooo\r\n"
	       "mg z Ooooooooooooooooooooooooooooooooo\r\n",
	       "EN Oooooooooooooooooooooooooooooooo\r\n"
	       "CLIENT_ERROR opaque token too long\r\n");
	/* 17 flags are parsed (duplicates here); 18 are too many. */
	expect(f,
	       "mg a v v v v v v v v v v v v v v v v v\r\n"
	       "mg a v v v v v v v v v v v v v v v v v v\r\n",
	       "CLIENT_ERROR duplicate flag\r\n"
	       "CLIENT_ERROR options flags are too long\r\n");
	expect(f, "mg\r\nmx a\r\nm a\r\nmgg a\r\nmg  a v\r\n",
	       "ERROR\r\nERROR\r\nERROR\r\nERROR\r\nVA 3\r\nabc\r\n");
}

static void test_mg_ttl_hit(void **state)
{
	struct fx *f = *state;

	expect(f,
	       "mg a h l t\r\nset a 0 100 1\r\n1\r\nmg a h l t v\r\n"
	       "mg a h l t\r\nmg a T30 t\r\nmg a u t\r\n",
	       "EN\r\nSTORED\r\nVA 1 h0 l0 t100\r\n1\r\nHD h1 l0 t100\r\n"
	       "HD t30\r\nHD t30\r\n");
	expect(f, "mg a T-1\r\nmg a v\r\n", "HD\r\nEN\r\n");
}

static void test_mg_vivify_recache(void **state)
{
	struct fx *f = *state;

	expect(f, "mg a N30 v t\r\nmg a N30 v t\r\nmg a v t\r\n",
	       "VA 0 t30 W\r\n\r\nVA 0 t30 Z\r\n\r\nVA 0 t30 Z\r\n\r\n");
	expect(f, "ms a 1\r\nx\r\nmg a v t\r\nmg a R30 v t\r\n",
	       "HD\r\nVA 1 t-1\r\nx\r\nVA 1 t-1\r\nx\r\n");
	/* Below the recache threshold: one client wins, the next sees Z. */
	expect(f, "ms b 1 T10\r\ny\r\nmg b R30 v\r\nmg b R30 v\r\n",
	       "HD\r\nVA 1 W\r\ny\r\nVA 1 Z\r\ny\r\n");
}

static void test_ms(void **state)
{
	struct fx *f = *state;

	expect(f,
	       "ms a 3\r\nabc\r\nms a 3 T0 F5 k O9\r\nabc\r\nmg a v f\r\n"
	       "ms a 3 q\r\nabc\r\nms a 3 MX\r\nabc\r\nms a 3 ME\r\nabc\r\n"
	       "ms a 3 ME q\r\nabc\r\nms a 2 MA\r\nde\r\nms a 2 MP\r\nde\r\n"
	       "ms b 2 MA\r\nde\r\nms b 2 MR\r\nde\r\nmg a v\r\n",
	       "HD\r\nHD ka O9\r\nVA 3 f5\r\nabc\r\n"
	       "CLIENT_ERROR invalid mode for ms M token\r\nNS\r\nNS\r\nHD\r\n"
	       "HD\r\nNS\r\nNS\r\nVA 7\r\ndeabcde\r\n");
	expect(f, "ms a abc\r\nabc\r\nms a\r\nms\r\n",
	       "CLIENT_ERROR bad command line format\r\nERROR\r\n"
	       "CLIENT_ERROR bad command line format\r\nERROR\r\n");
	/* Once the length is known a refused block is skipped. */
	expect(f,
	       "ms a 3 S\r\nabc\r\nms a 3 F-1\r\nabc\r\nms a 1 T\r\nx\r\n"
	       "ms a 1 M\r\nx\r\nms a 1 MS MS\r\nx\r\nms a 1 N\r\nx\r\n"
	       "ms a 1 O123456789012345678901234567890123\r\nx\r\nmn\r\n",
	       "CLIENT_ERROR invalid flag\r\n"
	       "CLIENT_ERROR bad command line format\r\n"
	       "CLIENT_ERROR bad token in command line format\r\n"
	       "CLIENT_ERROR incorrect length for M token\r\n"
	       "CLIENT_ERROR duplicate flag\r\n"
	       "CLIENT_ERROR bad token in command line format\r\n"
	       "CLIENT_ERROR opaque token too long\r\nMN\r\n");
	expect(f, "ms a -1\r\nx\r\nmn\r\n",
	       "CLIENT_ERROR bad command line format\r\nERROR\r\nMN\r\n");
	/* Bad chunks are reported even under q. */
	expect(f, "ms a 3\r\nabcd\r\nms a 3 q\r\nabcd\r\nmn\r\n",
	       "CLIENT_ERROR bad data chunk\r\nERROR\r\n"
	       "CLIENT_ERROR bad data chunk\r\nERROR\r\nMN\r\n");
	expect(f, "ms a 3 T-1\r\nabc\r\nmg a v\r\n", "HD\r\nEN\r\n");
}

static void test_ms_cas(void **state)
{
	struct fx *f = *state;
	unsigned long long cas, cas2;
	char buf[256];

	expect(f, "ms a 3 C99\r\nabc\r\n", "NF\r\n");
	feed(f, "ms a 3 c\r\nabc\r\n", 15);
	assert_int_equal(sscanf(f->out.data, "HD c%llu", &cas), 1);
	snprintf(buf, sizeof(buf), "ms a 3 C%llu c\r\nabc\r\n", cas + 100);
	expect(f, buf, "EX c0\r\n");
	snprintf(buf, sizeof(buf), "ms a 3 C%llu q\r\nabc\r\n", cas + 100);
	expect(f, buf, "EX\r\n");
	snprintf(buf, sizeof(buf), "ms a 3 C%llu c k\r\nxyz\r\n", cas);
	feed(f, buf, strlen(buf));
	assert_int_equal(sscanf(f->out.data, "HD c%llu ka", &cas2), 1);
	assert_true(cas2 > cas);
	/* I with an older CAS stores the item stale; the next mg wins. */
	expect(f, "ms a 3 I C1\r\nold\r\nmg a v\r\nmg a v\r\n",
	       "HD\r\nVA 3 X W\r\nold\r\nVA 3 Z X\r\nold\r\n");
}

static void test_md(void **state)
{
	struct fx *f = *state;

	expect(f, "md a\r\nms a 1\r\nx\r\nmd a\r\nmd a q\r\nmd a k O5\r\n",
	       "NF\r\nHD\r\nHD\r\nNF\r\nNF ka O5\r\n");
	expect(f, "ms a 1\r\nx\r\nmd a q\r\nmg a\r\n", "HD\r\nEN\r\n");
	expect(f,
	       "ms a 1\r\nx\r\nmd a C999999\r\nmd a I T30\r\nmg a v t\r\n"
	       "mg a v t\r\n",
	       "HD\r\nEX\r\nHD\r\nVA 1 t30 X W\r\nx\r\nVA 1 t30 Z X\r\nx\r\n");
	expect(f, "md a C\r\nmd a Tx\r\nmd a x\r\nmd a v\r\nmd a E5\r\n",
	       "CLIENT_ERROR invalid or duplicate flag\r\n"
	       "CLIENT_ERROR invalid or duplicate flag\r\n"
	       "CLIENT_ERROR invalid or duplicate flag\r\nHD\r\n"
	       "CLIENT_ERROR invalid or duplicate flag\r\n");
	expect(f,
	       "md a q q q q q q q q q q q q q q q q q q\r\n"
	       "md a O123456789012345678901234567890123\r\n",
	       "CLIENT_ERROR options flags too long\r\n"
	       "CLIENT_ERROR opaque token too long\r\n");
}

static void test_ma(void **state)
{
	struct fx *f = *state;

	expect(f,
	       "ma a\r\nma a q\r\nma a N0 J10 v\r\nma a v\r\n"
	       "ma a MD D100 v\r\nma a D5 v t\r\nma a MI D5 v k O1\r\n"
	       "ma a M- v\r\nma a M+ v\r\nma a Mx v\r\nma a Dabc v\r\n"
	       "ma a D-1 v\r\nma a q\r\nms s 1\r\nz\r\nma s\r\n"
	       "ma a C999999\r\nma a v N0 q\r\nma b k O1 v\r\nmn\r\n",
	       "NF\r\nNF\r\nVA 2\r\n10\r\nVA 2\r\n11\r\nVA 1\r\n0\r\n"
	       "VA 1 t-1\r\n5\r\nVA 2 ka O1\r\n10\r\nVA 1\r\n9\r\nVA 2\r\n10\r\n"
	       "CLIENT_ERROR invalid mode for ma M token\r\n"
	       "CLIENT_ERROR invalid or duplicate flag\r\n"
	       "CLIENT_ERROR invalid or duplicate flag\r\nHD\r\n"
	       "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"
	       "EX\r\nNF kb O1\r\nMN\r\n");
	expect(f, "mg a v\r\nma a\r\n", "VA 2\r\n12\r\nHD\r\n");
	feed(f, "ma a c v\r\n", 10);
	assert_memory_equal(f->out.data, "VA 2 c", 6);
	assert_memory_equal(f->out.data + f->out.len - 4, "14\r\n", 4);
}

static void test_base64_keys(void **state)
{
	struct fx *f = *state;

	expect(f, "mg a b\r\nmg Zm9v= b v\r\n",
	       "CLIENT_ERROR error decoding key\r\n"
	       "CLIENT_ERROR error decoding key\r\n");
	expect(f,
	       "ms Zm9v 3 b\r\nabc\r\nmg Zm9v b k v\r\nmg foo v\r\n"
	       "md Zm9v b k\r\nmg Zm9v b k\r\n",
	       "HD\r\nVA 3 kZm9v b\r\nabc\r\nVA 3\r\nabc\r\nHD kZm9v b\r\n"
	       "EN kZm9v b\r\n");
}

static void test_me_mn(void **state)
{
	struct fx *f = *state;
	const char *s;

	expect(f, "mn\r\nmn a\r\nme a\r\nme\r\n",
	       "MN\r\nMN\r\nEN\r\nCLIENT_ERROR bad command line format\r\n");
	expect(f, "set a 0 0 1\r\n1\r\n", "STORED\r\n");
	s = feed(f, "me a\r\n", 6);
	assert_memory_equal(s, "ME a exp=-1 la=0 cas=", 21);
	assert_non_null(strstr(s, " fetch=no cls=1 size=2\r\n"));
}

/* Quiet mode: a batch of misses ends with MN alone. */
static void test_quiet_pipeline(void **state)
{
	struct fx *f = *state;
	char in[4096];
	size_t n = 0;
	int i;

	for (i = 0; i < 100; i++)
		n += (size_t)snprintf(in + n, sizeof(in) - n, "mg k%d v q\r\n",
				      i);
	n += (size_t)snprintf(in + n, sizeof(in) - n, "mn\r\n");
	feed(f, in, n);
	assert_int_equal(f->out.len, 4);
	assert_memory_equal(f->out.data, "MN\r\n", 4);
}

/* A too-large ms is refused at once and its block skipped, even with q. */
static void test_ms_too_large(void **state)
{
	struct fx *f = *state;
	size_t len;
	char *in = malloc(MAX_ITEM + 128);

	assert_non_null(in);
	expect(f, "ms a 1\r\nx\r\n", "HD\r\n");
	len = (size_t)snprintf(in, 64, "ms a %u q\r\n", MAX_ITEM + 1);
	memset(in + len, 'v', MAX_ITEM + 1);
	memcpy(in + len + MAX_ITEM + 1, "\r\nmg a\r\nmn\r\n", 12);
	feed(f, in, len + MAX_ITEM + 13);
	assert_int_equal(f->out.len,
			 strlen("SERVER_ERROR object too large for cache\r\n"
				"EN\r\nMN\r\n"));
	assert_memory_equal(f->out.data,
			    "SERVER_ERROR object too large for cache\r\n"
			    "EN\r\nMN\r\n",
			    f->out.len);
	len = (size_t)snprintf(in, 64, "ms a %u\r\n", MAX_ITEM);
	memset(in + len, 'v', MAX_ITEM);
	memcpy(in + len + MAX_ITEM, "\r\nmg a s\r\n", 10);
	feed(f, in, len + MAX_ITEM + 10);
	assert_string_equal(f->out.data, "HD\r\nHD s1048576\r\n");
	free(in);
}

/* memcached 1.6.18 has no E flag and only upper-case modes; a bad mode is
 * reported before a long opaque. */
static void test_no_e_flag_upper_modes(void **state)
{
	struct fx *f = *state;

	expect(f, "ms a 1 E777 c\r\nx\r\nmn\r\n",
	       "CLIENT_ERROR invalid flag\r\nMN\r\n");
	expect(f,
	       "ms a 1 Ms\r\nx\r\nms a 1 Me\r\nx\r\nms a 1 Ma\r\nx\r\n"
	       "ms a 1 Mp\r\nx\r\nms a 1 Mr\r\nx\r\nma n Mi\r\nma n Md\r\n"
	       "mg a\r\n",
	       "CLIENT_ERROR invalid mode for ms M token\r\n"
	       "CLIENT_ERROR invalid mode for ms M token\r\n"
	       "CLIENT_ERROR invalid mode for ms M token\r\n"
	       "CLIENT_ERROR invalid mode for ms M token\r\n"
	       "CLIENT_ERROR invalid mode for ms M token\r\n"
	       "CLIENT_ERROR invalid mode for ma M token\r\n"
	       "CLIENT_ERROR invalid mode for ma M token\r\nEN\r\n");
	expect(f,
	       "ms q 1 MX O123456789012345678901234567890123\r\nx\r\n"
	       "ms q 1 O123456789012345678901234567890123 MX\r\nx\r\nmn\r\n",
	       "CLIENT_ERROR invalid mode for ms M token\r\n"
	       "CLIENT_ERROR invalid mode for ms M token\r\nMN\r\n");
}

/* add ignores C; append and prepend with C: NS with no item, EX with one
 * whose CAS differs. */
static void test_ms_modes_with_cas(void **state)
{
	struct fx *f = *state;

	expect(f,
	       "ms k 1 MA C5\r\nx\r\nms k 1 MP C5\r\nx\r\nms k 1 ME C5\r\nx\r\n"
	       "ms k 1 MP C5\r\nx\r\nms k 1 MA C5 I\r\nx\r\nmg k v\r\n",
	       "NS\r\nNS\r\nHD\r\nEX\r\nEX\r\nVA 1\r\nx\r\n");
	/* C0 is no CAS for append and prepend. */
	expect(f, "ms k 1 C0 MA\r\nb\r\nms k 1 C0 MP\r\nc\r\nmg k v\r\n",
	       "HD\r\nHD\r\nVA 3\r\ncxb\r\n");
}

/* A stale store (I, an older CAS) keeps the TTL and the sent token. */
static void test_ms_stale_keeps_ttl_and_token(void **state)
{
	struct fx *f = *state;

	expect(f,
	       "ms a 3 T100\r\nabc\r\nmd a I\r\nmg a\r\n"
	       "ms a 3 I C1 T900\r\nnew\r\nmg a v t\r\n",
	       "HD\r\nHD\r\nHD X W\r\nHD\r\nVA 3 t100 Z X\r\nnew\r\n");
	/* C0 is older than nothing: a plain mismatch, even with I. */
	expect(f, "ms a 1 q C0 I\r\nx\r\nmg a v\r\n",
	       "EX\r\nVA 3 Z X\r\nnew\r\n");
}

/* Only mg hands out the recache token of a stale item: a get does not. */
static void test_get_takes_no_token(void **state)
{
	struct fx *f = *state;

	expect(f, "ms k 1\r\nx\r\nmd k I\r\nget k\r\nmg k t\r\nmg k t\r\n",
	       "HD\r\nHD\r\nVALUE k 0 1\r\nx\r\nEND\r\nHD t-1 X W\r\n"
	       "HD t-1 Z X\r\n");
}

/* mg N's own fetch counts: the next mg sees h1 (not with u, nor for ma). */
static void test_vivify_marks_fetched(void **state)
{
	struct fx *f = *state;

	expect(f,
	       "mg n1 N0 h\r\nmg n1 h\r\nmg n2 N0 u\r\nmg n2 h\r\n"
	       "ma n3 N0\r\nmg n3 h\r\n",
	       "HD h0 W\r\nHD h1 Z\r\nHD W\r\nHD h0 Z\r\nHD\r\nHD h0\r\n");
}

/* q hides ma's HD for an item found, not for one N created. */
static void test_ma_quiet_vivify(void **state)
{
	struct fx *f = *state;

	expect(f,
	       "ma n2 q N0\r\nma n2 q N0\r\nma n3 q N0 v\r\nma n2 q v\r\n"
	       "ma none q\r\nmn\r\n",
	       "HD\r\nVA 1\r\n0\r\nNF\r\nMN\r\n");
}

/* T, and N on an item just created, apply in the request's order; t
 * reports the TTL where it stands. */
static void test_meta_ttl_order(void **state)
{
	struct fx *f = *state;

	expect(f,
	       "mg b t N100\r\nmg c N100 T200 t\r\nmg e T300 N100 t\r\n"
	       "ma f N100 T200 t\r\nma h T300 N100 t\r\nma h t T300\r\n"
	       "mg h t\r\nmg c t T50\r\nmg c t\r\nmg g N100 T-1\r\nmg g v\r\n",
	       "HD t-1 W\r\nHD t200 W\r\nHD t100 W\r\nHD t200\r\nHD t100\r\n"
	       "HD t100\r\nHD t300\r\nHD t200 Z\r\nHD t50 Z\r\nHD W\r\nEN\r\n");
	/* Ours: a negative TTL leaves no time (memcached wraps it). */
	expect(f, "ms i 1\r\n7\r\nma i T-1 t\r\nmg j N-1 t\r\nmg i\r\n",
	       "HD\r\nHD t0\r\nHD t0 W\r\nEN\r\n");
}

/* mg and ma act before they check the opaque (md checks first); the
 * error replaces the reply, and mg hands out no recache token. */
static void test_meta_opaque_checked_after(void **state)
{
	struct fx *f = *state;

	expect(f,
	       "ms a 1\r\nx\r\nmd a Oxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\nmg a v\r\nma n N0 Oxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\nmg n v\r\n"
	       "ma n Oxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\nmg n v\r\nmg z N0 Oxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\nmg z v\r\nmn\r\n",
	       "HD\r\nCLIENT_ERROR opaque token too long\r\nVA 1\r\nx\r\n"
	       "CLIENT_ERROR opaque token too long\r\nVA 1\r\n0\r\n"
	       "CLIENT_ERROR opaque token too long\r\nVA 1\r\n1\r\n"
	       "CLIENT_ERROR opaque token too long\r\nVA 0\r\n\r\nMN\r\n");
}

/* ma: C0 means no CAS; an empty or non-numeric value is an error before
 * a mismatching C. */
static void test_ma_cas_after_number(void **state)
{
	struct fx *f = *state;

	expect(f,
	       "ms k 7\r\nifhiaee\r\nma k C0 D5\r\nms e 0\r\n\r\nma e C1\r\n"
	       "ms t 1\r\n5\r\nma t C0 D2 v\r\n",
	       "HD\r\n"
	       "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"
	       "HD\r\n"
	       "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"
	       "HD\r\nVA 1\r\n7\r\n");
}

/* An item stored with a b key keeps that: mg's k gives it base64 and b
 * whatever the mg sent; ms, md and ma echo the key as they got it. */
static void test_binary_key_remembered(void **state)
{
	struct fx *f = *state;

	expect(f,
	       "ms azM= 1 b\r\nx\r\nmg k3 k v\r\nmg azM= b k\r\nms k3 1\r\ny\r\n"
	       "mg k3 k\r\nmg azM= b k\r\nms azM= 1 b k\r\nz\r\n"
	       "ms k3 1 MA\r\nw\r\nmg k3 k s\r\nms bjE= 1 b\r\n5\r\n"
	       "ma n1 k\r\nmg n1 k\r\nmd n1 k\r\n",
	       "HD\r\nVA 1 kazM= b\r\nx\r\nHD kazM= b\r\nHD\r\nHD kk3\r\n"
	       "HD kk3\r\nHD kazM= b\r\nHD\r\nHD kk3 s2\r\nHD\r\nHD kn1\r\n"
	       "HD kbjE= b\r\nHD kn1\r\n");
}

/* memcached applies mg's and ma's flags in order and errs at a long
 * opaque: a T or N after it never happens (an N item then never expires). */
static void test_flags_after_long_opaque_not_applied(void **state)
{
	struct fx *f = *state;

	expect(f,
	       "mg n0 N208 Oxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx f l T-1\r\nms bjA= 0 MR b\r\n\r\n"
	       "mg k2 u v t Oxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx N-9\r\nms k2 0 C987654321\r\n\r\n"
	       "mg k5 N30 Oxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx T-1\r\nmg k5 t\r\nma k6 N0 T30 Oxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\nma k6 t\r\n"
	       "ma k6 Oxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx T-1\r\nma k6 t\r\n",
	       "CLIENT_ERROR opaque token too long\r\nHD\r\n"
	       "CLIENT_ERROR opaque token too long\r\nEX\r\n"
	       "CLIENT_ERROR opaque token too long\r\nHD t30\r\n"
	       "CLIENT_ERROR opaque token too long\r\nHD t30\r\n"
	       "CLIENT_ERROR opaque token too long\r\nHD t30\r\n");
	/* With h (memcached bumps late) the error leaves it unfetched;
	 * without, the fetch marked it. */
	expect(f,
	       "ms n 1\r\nx\r\nmg n h v Oxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\nmg n u h\r\nmg n Oxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n"
	       "mg n h\r\n",
	       "HD\r\nCLIENT_ERROR opaque token too long\r\nHD h0\r\n"
	       "CLIENT_ERROR opaque token too long\r\nHD h1\r\n");
}

/* R judges the TTL at its place among the flags: after a T, T's TTL (one
 * that expires the item wins, T0's "never" does not); R0 never wins. */
static void test_recache_sees_earlier_touch(void **state)
{
	struct fx *f = *state;

	expect(f,
	       "ms a 1\r\nx\r\nmg a T-24 R1917\r\nms b 1 T2324\r\ny\r\n"
	       "mg b T0 R5326 t\r\nms c 1 T2324\r\nz\r\nmg c R5326 T0 t\r\n"
	       "ms d 1\r\nw\r\nmg d T-1 R0\r\nmg d\r\n"
	       "ms e 1 T100\r\nv\r\nmg e R0\r\nmg e R-5\r\nmg e R101\r\n",
	       "HD\r\nHD W\r\nHD\r\nHD t-1\r\nHD\r\nHD t-1 W\r\n"
	       "HD\r\nHD\r\nEN\r\nHD\r\nHD\r\nHD\r\nHD W\r\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
		T(test_mg),
		T(test_mg_ttl_hit),
		T(test_mg_vivify_recache),
		T(test_ms),
		T(test_ms_cas),
		T(test_md),
		T(test_ma),
		T(test_base64_keys),
		T(test_me_mn),
		T(test_quiet_pipeline),
		T(test_ms_too_large),
		T(test_no_e_flag_upper_modes),
		T(test_ms_modes_with_cas),
		T(test_ms_stale_keeps_ttl_and_token),
		T(test_ma_quiet_vivify),
		T(test_meta_ttl_order),
		T(test_meta_opaque_checked_after),
		T(test_ma_cas_after_number),
		T(test_binary_key_remembered),
		T(test_get_takes_no_token),
		T(test_vivify_marks_fetched),
		T(test_flags_after_long_opaque_not_applied),
		T(test_recache_sees_earlier_touch),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
