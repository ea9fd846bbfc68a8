/*
 * client.c - shmkv.Client: one libshmkv handle for a Python program
 *
 * Each method converts its arguments while it holds the GIL, then lets
 * go of the GIL for the library call (a lookup in shared memory, or a
 * round trip to the server), so other Python threads run meanwhile, and
 * builds its result after taking the GIL back.  Keys and values stay
 * valid without the GIL because the call's arguments hold them and the
 * buffer views pin them.  The library serialises calls on one handle, so
 * threads may share a Client; one Client per thread reads in parallel.
 *
 * `busy` counts calls that are running without the GIL, so that close()
 * from another thread cannot free the handle under them.
 *
 * Interface routines: shmkv_py_client_type.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "module_internal.h"

#define DEFAULT_SOCKET "/tmp/shmkv-11211/shmkv.sock"
#define GET_STACK 4096 /* values up to this size need one lookup */
#define MANY_SLOT 512  /* get_many's first try per key */

struct client {
	PyObject_HEAD shmkv *kv;
	int busy;
};

/* The open handle, or NULL with ValueError set. */
static shmkv *client_kv(struct client *c)
{
	if (c->kv == NULL)
		PyErr_SetString(PyExc_ValueError, "the shmkv.Client is closed");
	return c->kv;
}

static int client_init(PyObject *self, PyObject *args, PyObject *kw)
{
	static char *names[] = { "socket_path", NULL };
	struct client *c = (struct client *)self;
	const char *path = DEFAULT_SOCKET;
	enum shmkv_status st;
	shmkv *kv = NULL;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "|s", names, &path))
		return -1;
	if (c->kv != NULL) {
		PyErr_SetString(PyExc_ValueError, "the shmkv.Client is open");
		return -1;
	}
	Py_BEGIN_ALLOW_THREADS st = shmkv_open(path, &kv);
	Py_END_ALLOW_THREADS if (st != SHMKV_OK)
	{
		shmkv_py_raise(st);
		return -1;
	}
	c->kv = kv;
	return 0;
}

static void client_dealloc(PyObject *self)
{
	struct client *c = (struct client *)self;

	shmkv_close(c->kv);
	Py_TYPE(self)->tp_free(self);
}

static PyObject *client_close(PyObject *self, PyObject *unused)
{
	struct client *c = (struct client *)self;

	(void)unused;
	if (c->busy > 0) {
		PyErr_SetString(PyExc_RuntimeError, "the shmkv.Client is in use "
						    "by another thread");
		return NULL;
	}
	shmkv_close(c->kv);
	c->kv = NULL;
	Py_RETURN_NONE;
}

static PyObject *client_enter(PyObject *self, PyObject *unused)
{
	(void)unused;
	if (client_kv((struct client *)self) == NULL)
		return NULL;
	Py_INCREF(self);
	return self;
}

static PyObject *client_exit(PyObject *self, PyObject *args)
{
	(void)args;
	return client_close(self, NULL);
}

/* A value of known length straight into a new bytes object. */
static PyObject *get_sized(struct client *c, shmkv *kv,
			   const struct shmkv_py_bytes *k, size_t len)
{
	for (int tries = 0; tries < 8; tries++) {
		PyObject *b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)len);
		enum shmkv_status st;
		size_t got = 0;

		if (b == NULL)
			return NULL;
		c->busy++;
		Py_BEGIN_ALLOW_THREADS st = shmkv_get(kv, k->p, k->len,
						      PyBytes_AS_STRING(b), len,
						      &got, NULL);
		Py_END_ALLOW_THREADS c->busy--;
		if (st == SHMKV_OK && got < len)
			_PyBytes_Resize(&b, (Py_ssize_t)got);
		if (st == SHMKV_OK)
			return b;
		Py_DECREF(b);
		if (st == SHMKV_NOT_FOUND)
			Py_RETURN_NONE;
		if (st != SHMKV_TOO_SMALL)
			return shmkv_py_raise(st);
		len = got; /* it grew meanwhile */
	}
	PyErr_SetString(PyExc_RuntimeError, "the value kept growing while read");
	return NULL;
}

static PyObject *client_get(PyObject *self, PyObject *key)
{
	struct client *c = (struct client *)self;
	shmkv *kv = client_kv(c);
	struct shmkv_py_bytes k;
	char buf[GET_STACK];
	enum shmkv_status st;
	size_t len = 0;

	if (kv == NULL || shmkv_py_key(key, &k) < 0)
		return NULL;
	c->busy++;
	Py_BEGIN_ALLOW_THREADS st = shmkv_get(kv, k.p, k.len, buf, sizeof(buf),
					      &len, NULL);
	Py_END_ALLOW_THREADS c->busy--;
	if (st == SHMKV_OK)
		return PyBytes_FromStringAndSize(buf, (Py_ssize_t)len);
	if (st == SHMKV_NOT_FOUND)
		Py_RETURN_NONE;
	if (st == SHMKV_TOO_SMALL)
		return get_sized(c, kv, &k, len);
	return shmkv_py_raise(st);
}

/* get_many's results into a dict: found keys only. */
static int many_results(struct client *c, shmkv *kv, PyObject *seq,
			const struct shmkv_item *items, Py_ssize_t n,
			PyObject *out)
{
	for (Py_ssize_t i = 0; i < n; i++) {
		const struct shmkv_item *it = &items[i];
		PyObject *v;

		if (it->status == SHMKV_NOT_FOUND)
			continue;
		if (it->status == SHMKV_OK) {
			v = PyBytes_FromStringAndSize(it->buf,
						      (Py_ssize_t)it->value_len);
		} else if (it->status == SHMKV_TOO_SMALL) {
			struct shmkv_py_bytes k = { it->key, it->key_len };

			v = get_sized(c, kv, &k, it->value_len);
		} else {
			return shmkv_py_raise(it->status), -1;
		}
		if (v == NULL)
			return -1;
		if (v != Py_None &&
		    PyDict_SetItem(out, PySequence_Fast_GET_ITEM(seq, i), v) < 0) {
			Py_DECREF(v);
			return -1;
		}
		Py_DECREF(v);
	}
	return 0;
}

static PyObject *client_get_many(PyObject *self, PyObject *keys)
{
	struct client *c = (struct client *)self;
	shmkv *kv = client_kv(c);
	PyObject *seq, *out = NULL;
	struct shmkv_item *items = NULL;
	char *slots = NULL;
	enum shmkv_status st;
	Py_ssize_t n;

	if (kv == NULL)
		return NULL;
	seq = PySequence_Fast(keys, "get_many takes an iterable of keys");
	if (seq == NULL)
		return NULL;
	n = PySequence_Fast_GET_SIZE(seq);
	items = PyMem_Calloc((size_t)n + 1, sizeof(*items));
	slots = PyMem_Malloc(((size_t)n + 1) * MANY_SLOT);
	if (items == NULL || slots == NULL) {
		PyErr_NoMemory();
		goto done;
	}
	for (Py_ssize_t i = 0; i < n; i++) {
		struct shmkv_py_bytes k;

		if (shmkv_py_key(PySequence_Fast_GET_ITEM(seq, i), &k) < 0)
			goto done;
		items[i].key = k.p;
		items[i].key_len = k.len;
		items[i].buf = slots + (size_t)i * MANY_SLOT;
		items[i].cap = MANY_SLOT;
	}
	c->busy++;
	Py_BEGIN_ALLOW_THREADS st = shmkv_get_many(kv, items, (size_t)n);
	Py_END_ALLOW_THREADS c->busy--;
	if (st != SHMKV_OK) {
		shmkv_py_raise(st);
		goto done;
	}
	out = PyDict_New();
	if (out != NULL && many_results(c, kv, seq, items, n, out) < 0)
		Py_CLEAR(out);
done:
	PyMem_Free(items);
	PyMem_Free(slots);
	Py_DECREF(seq);
	return out;
}

static PyObject *client_set(PyObject *self, PyObject *args, PyObject *kw)
{
	static char *names[] = { "key", "value", "ttl", "flags", NULL };
	struct client *c = (struct client *)self;
	shmkv *kv = client_kv(c);
	PyObject *key, *value;
	long long ttl = 0;
	unsigned int flags = 0;
	struct shmkv_py_bytes k;
	enum shmkv_status st;
	Py_buffer v;

	if (kv == NULL ||
	    !PyArg_ParseTupleAndKeywords(args, kw, "OO|LI", names, &key, &value,
					 &ttl, &flags) ||
	    shmkv_py_key(key, &k) < 0 || shmkv_py_value(value, &v) < 0)
		return NULL;
	c->busy++;
	Py_BEGIN_ALLOW_THREADS st = shmkv_set(kv, k.p, k.len, v.buf,
					      (size_t)v.len, flags, ttl);
	Py_END_ALLOW_THREADS c->busy--;
	PyBuffer_Release(&v);
	if (st != SHMKV_OK)
		return shmkv_py_raise(st);
	Py_RETURN_NONE;
}

/* set_many's (key, value) pairs, from a mapping or an iterable of pairs. */
static PyObject *pairs_of(PyObject *obj)
{
	PyObject *items = PyMapping_Check(obj) && !PySequence_Check(obj)
				  ? PyMapping_Items(obj)
				  : NULL;
	PyObject *seq;

	if (items == NULL && PyErr_Occurred())
		return NULL;
	seq = PySequence_Fast(items != NULL ? items : obj,
			      "set_many takes a "
			      "mapping or an iterable of (key, value) pairs");
	Py_XDECREF(items);
	return seq;
}

static PyObject *client_set_many(PyObject *self, PyObject *args, PyObject *kw)
{
	static char *names[] = { "items", "ttl", "flags", NULL };
	struct client *c = (struct client *)self;
	shmkv *kv = client_kv(c);
	PyObject *arg, *seq, *ret = NULL;
	long long ttl = 0;
	unsigned int flags = 0;
	struct shmkv_write *w = NULL;
	Py_buffer *views = NULL;
	Py_ssize_t n, nviews = 0;
	enum shmkv_status st;

	if (kv == NULL ||
	    !PyArg_ParseTupleAndKeywords(args, kw, "O|LI", names, &arg, &ttl,
					 &flags) ||
	    (seq = pairs_of(arg)) == NULL)
		return NULL;
	n = PySequence_Fast_GET_SIZE(seq);
	w = PyMem_Calloc((size_t)n + 1, sizeof(*w));
	views = PyMem_Calloc((size_t)n + 1, sizeof(*views));
	if (w == NULL || views == NULL) {
		PyErr_NoMemory();
		goto done;
	}
	for (Py_ssize_t i = 0; i < n; i++) {
		PyObject *pair = PySequence_Fast_GET_ITEM(seq, i), *key, *value;
		struct shmkv_py_bytes k;

		if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
			PyErr_SetString(PyExc_TypeError, "set_many: each item is a "
							 "(key, value) pair");
			goto done;
		}
		key = PyTuple_GET_ITEM(pair, 0);
		value = PyTuple_GET_ITEM(pair, 1);
		if (shmkv_py_key(key, &k) < 0 ||
		    shmkv_py_value(value, &views[i]) < 0)
			goto done;
		nviews = i + 1;
		w[i] = (struct shmkv_write){ .key = k.p,
					     .key_len = k.len,
					     .value = views[i].buf,
					     .value_len = (size_t)views[i].len,
					     .flags = flags,
					     .ttl = ttl };
	}
	c->busy++;
	Py_BEGIN_ALLOW_THREADS st = shmkv_set_many(kv, w, (size_t)n);
	Py_END_ALLOW_THREADS c->busy--;
	if (st != SHMKV_OK) {
		shmkv_py_raise(st);
		goto done;
	}
	for (Py_ssize_t i = 0; i < n; i++) {
		if (w[i].status == SHMKV_OK)
			continue;
		/* The first item not stored names the error; the rest went in. */
		shmkv_py_raise_message(
			w[i].status,
			PyUnicode_FromFormat(
				"set_many: %R not stored: %s",
				PyTuple_GET_ITEM(PySequence_Fast_GET_ITEM(seq, i),
						 0),
				shmkv_strerror(w[i].status)));
		goto done;
	}
	ret = Py_NewRef(Py_None);
done:
	for (Py_ssize_t i = 0; i < nviews; i++)
		PyBuffer_Release(&views[i]);
	PyMem_Free(views);
	PyMem_Free(w);
	Py_DECREF(seq);
	return ret;
}

/* delete and touch: True done, False no such key. */
static PyObject *found_or_not(enum shmkv_status st)
{
	if (st == SHMKV_OK)
		Py_RETURN_TRUE;
	if (st == SHMKV_NOT_FOUND)
		Py_RETURN_FALSE;
	return shmkv_py_raise(st);
}

static PyObject *client_delete(PyObject *self, PyObject *key)
{
	struct client *c = (struct client *)self;
	shmkv *kv = client_kv(c);
	struct shmkv_py_bytes k;
	enum shmkv_status st;

	if (kv == NULL || shmkv_py_key(key, &k) < 0)
		return NULL;
	c->busy++;
	Py_BEGIN_ALLOW_THREADS st = shmkv_delete(kv, k.p, k.len);
	Py_END_ALLOW_THREADS c->busy--;
	return found_or_not(st);
}

static PyObject *client_touch(PyObject *self, PyObject *args, PyObject *kw)
{
	static char *names[] = { "key", "ttl", NULL };
	struct client *c = (struct client *)self;
	shmkv *kv = client_kv(c);
	PyObject *key;
	long long ttl;
	struct shmkv_py_bytes k;
	enum shmkv_status st;

	if (kv == NULL ||
	    !PyArg_ParseTupleAndKeywords(args, kw, "OL", names, &key, &ttl) ||
	    shmkv_py_key(key, &k) < 0)
		return NULL;
	c->busy++;
	Py_BEGIN_ALLOW_THREADS st = shmkv_touch(kv, k.p, k.len, ttl);
	Py_END_ALLOW_THREADS c->busy--;
	return found_or_not(st);
}

static PyObject *arith(PyObject *self, PyObject *args, PyObject *kw, bool incr)
{
	static char *names[] = { "key", "delta", NULL };
	struct client *c = (struct client *)self;
	shmkv *kv = client_kv(c);
	PyObject *key;
	unsigned long long delta = 1;
	uint64_t value = 0;
	struct shmkv_py_bytes k;
	enum shmkv_status st;

	if (kv == NULL ||
	    !PyArg_ParseTupleAndKeywords(args, kw, "O|K", names, &key, &delta) ||
	    shmkv_py_key(key, &k) < 0)
		return NULL;
	c->busy++;
	Py_BEGIN_ALLOW_THREADS st = incr ? shmkv_incr(kv, k.p, k.len, delta,
						      &value)
					 : shmkv_decr(kv, k.p, k.len, delta,
						      &value);
	Py_END_ALLOW_THREADS c->busy--;
	if (st == SHMKV_OK)
		return PyLong_FromUnsignedLongLong(value);
	if (st == SHMKV_NOT_FOUND)
		Py_RETURN_NONE;
	return shmkv_py_raise(st);
}

static PyObject *client_incr(PyObject *self, PyObject *args, PyObject *kw)
{
	return arith(self, args, kw, true);
}

static PyObject *client_decr(PyObject *self, PyObject *args, PyObject *kw)
{
	return arith(self, args, kw, false);
}

/* What a scan found, gathered without the GIL. */
struct found {
	struct shmkv_key_info *info;
	size_t n, cap;
	bool oom;
};

static int scan_collect_key(const struct shmkv_key_info *k, void *arg)
{
	struct found *f = arg;
	void *key;

	if (f->n == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 256;
		struct shmkv_key_info *bigger = realloc(f->info,
							cap * sizeof(*bigger));

		if (bigger == NULL)
			return f->oom = true, 1;
		f->info = bigger;
		f->cap = cap;
	}
	key = malloc(k->key_len);
	if (key == NULL)
		return f->oom = true, 1;
	memcpy(key, k->key, k->key_len);
	f->info[f->n] = *k;
	f->info[f->n++].key = key;
	return 0;
}

static PyObject *client_scan(PyObject *self, PyObject *args, PyObject *kw)
{
	static char *names[] = { "prefix", NULL };
	struct client *c = (struct client *)self;
	shmkv *kv = client_kv(c);
	PyObject *prefix = NULL, *out = NULL;
	struct shmkv_py_bytes p = { "", 0 };
	struct found f = { 0 };
	enum shmkv_status st;

	if (kv == NULL ||
	    !PyArg_ParseTupleAndKeywords(args, kw, "|O", names, &prefix) ||
	    (prefix != NULL && shmkv_py_key(prefix, &p) < 0))
		return NULL;
	c->busy++;
	Py_BEGIN_ALLOW_THREADS st = shmkv_scan(kv, p.p, p.len, scan_collect_key,
					       &f);
	Py_END_ALLOW_THREADS c->busy--;
	if (st != SHMKV_OK)
		shmkv_py_raise(st);
	else if (f.oom)
		PyErr_NoMemory();
	else
		out = PyList_New((Py_ssize_t)f.n);
	for (size_t i = 0; i < f.n; i++) {
		const struct shmkv_key_info *k = &f.info[i];

		if (out != NULL) {
			PyObject *t = shmkv_py_key_info(k->key, k->key_len,
							k->value_len, k->flags,
							k->ttl, k->cas);
			if (t == NULL)
				Py_CLEAR(out);
			else
				PyList_SET_ITEM(out, (Py_ssize_t)i, t);
		}
		free((void *)k->key);
	}
	free(f.info);
	return out;
}

static PyMethodDef client_methods[] = {
	{ "get", client_get, METH_O,
	  "get(key) -> bytes or None, read straight from shared memory." },
	{ "get_many", client_get_many, METH_O,
	  "get_many(keys) -> {key: bytes} of the keys found." },
	{ "set", (PyCFunction)(void (*)(void))client_set,
	  METH_VARARGS | METH_KEYWORDS,
	  "set(key, value, ttl=0, flags=0): store, through the server." },
	{ "set_many", (PyCFunction)(void (*)(void))client_set_many,
	  METH_VARARGS | METH_KEYWORDS,
	  "set_many(items, ttl=0, flags=0): store a mapping (or (key, value)\n"
	  "pairs), pipelined.  Raises Error if any item was not stored; the\n"
	  "others are stored." },
	{ "delete", client_delete, METH_O,
	  "delete(key) -> True if it was there." },
	{ "incr", (PyCFunction)(void (*)(void))client_incr,
	  METH_VARARGS | METH_KEYWORDS,
	  "incr(key, delta=1) -> the new number, or None if there is no key." },
	{ "decr", (PyCFunction)(void (*)(void))client_decr,
	  METH_VARARGS | METH_KEYWORDS,
	  "decr(key, delta=1) -> the new number (stops at 0), or None." },
	{ "touch", (PyCFunction)(void (*)(void))client_touch,
	  METH_VARARGS | METH_KEYWORDS,
	  "touch(key, ttl) -> True if the key was there and has the new TTL." },
	{ "scan", (PyCFunction)(void (*)(void))client_scan,
	  METH_VARARGS | METH_KEYWORDS,
	  "scan(prefix=b'') -> [KeyInfo] of the live keys with the prefix,\n"
	  "read straight from shared memory." },
	{ "close", client_close, METH_NOARGS, "close(): detach." },
	{ "__enter__", client_enter, METH_NOARGS, NULL },
	{ "__exit__", client_exit, METH_VARARGS, NULL },
	{ NULL, NULL, 0, NULL },
};

static PyTypeObject client_type = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shmkv.Client",
	.tp_doc = "Client(socket_path='" DEFAULT_SOCKET "'): attach to a "
		  "shmkv-server's segment.",
	.tp_basicsize = sizeof(struct client),
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_new = PyType_GenericNew,
	.tp_init = client_init,
	.tp_dealloc = client_dealloc,
	.tp_methods = client_methods,
};

PyTypeObject *shmkv_py_client_type(void)
{
	return &client_type;
}
