/*
 * shmkv_module.c - the `shmkv` Python module: its exception, its key
 * listing type, and turning Python keys and values into bytes
 *
 * The module is libshmkv for Python programs: Client (client.c) attaches
 * to a server's segment and reads keys straight from shared memory, as a C
 * program would.  Everything that fails raises shmkv.Error, whose status
 * attribute is the library's enum shmkv_status (the module has a constant
 * for each: shmkv.NOT_STORED, ...), so a program can tell the outcomes
 * apart without parsing messages.
 *
 * Keys are bytes or str (UTF-8); values are bytes-like or str; results
 * are always bytes, since the cache holds bytes and cannot know what they
 * meant.
 *
 * Interface routines (module_internal.h): shmkv_py_raise,
 * shmkv_py_raise_message, shmkv_py_key,
 * shmkv_py_value, shmkv_py_key_info.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include "module_internal.h"

static PyObject *shmkv_error;

static PyStructSequence_Field key_info_fields[] = {
	{ "key", "the key, bytes" },
	{ "size", "the value's length in bytes" },
	{ "flags", "the client flags" },
	{ "ttl", "seconds left; -1 = never expires" },
	{ "cas", "the CAS unique" },
	{ NULL, NULL },
};

static PyStructSequence_Desc key_info_desc = {
	"shmkv.KeyInfo",
	"A key as Client.scan found it in shared memory.",
	key_info_fields,
	5,
};

static PyTypeObject *key_info_type;

PyObject *shmkv_py_raise_message(enum shmkv_status st, PyObject *message)
{
	PyObject *status = PyLong_FromLong((long)st);
	PyObject *exc = NULL;

	if (status != NULL && message != NULL)
		exc = PyObject_CallFunctionObjArgs(shmkv_error, message, NULL);
	if (exc != NULL && PyObject_SetAttrString(exc, "status", status) == 0)
		PyErr_SetObject(shmkv_error, exc);
	Py_XDECREF(exc);
	Py_XDECREF(status);
	Py_XDECREF(message);
	return NULL;
}

PyObject *shmkv_py_raise(enum shmkv_status st)
{
	const char *msg = shmkv_last_error();

	return shmkv_py_raise_message(st, PyUnicode_FromString(
						  msg[0] != '\0'
							  ? msg
							  : shmkv_strerror(st)));
}

int shmkv_py_key(PyObject *obj, struct shmkv_py_bytes *out)
{
	if (PyUnicode_Check(obj)) {
		Py_ssize_t n;
		const char *s = PyUnicode_AsUTF8AndSize(obj, &n);

		if (s == NULL)
			return -1;
		out->p = s;
		out->len = (size_t)n;
		return 0;
	}
	if (PyBytes_Check(obj)) {
		out->p = PyBytes_AS_STRING(obj);
		out->len = (size_t)PyBytes_GET_SIZE(obj);
		return 0;
	}
	PyErr_Format(PyExc_TypeError, "a key is bytes or str, not %.100s",
		     Py_TYPE(obj)->tp_name);
	return -1;
}

int shmkv_py_value(PyObject *obj, Py_buffer *view)
{
	if (PyUnicode_Check(obj)) {
		Py_ssize_t n;
		const char *s = PyUnicode_AsUTF8AndSize(obj, &n);

		if (s == NULL)
			return -1;
		/* A read-only view of the str's UTF-8, which lives as long as
		 * the str; the view holds a reference to it. */
		return PyBuffer_FillInfo(view, obj, (void *)s, n, 1,
					 PyBUF_SIMPLE);
	}
	if (PyObject_GetBuffer(obj, view, PyBUF_SIMPLE) == 0)
		return 0;
	PyErr_Format(PyExc_TypeError,
		     "a value is bytes-like or str, not "
		     "%.100s",
		     Py_TYPE(obj)->tp_name);
	return -1;
}

PyObject *shmkv_py_key_info(const void *key, size_t key_len, size_t value_len,
			    uint32_t flags, int64_t ttl, uint64_t cas)
{
	PyObject *t = PyStructSequence_New(key_info_type);
	PyObject *v[5];

	if (t == NULL)
		return NULL;
	v[0] = PyBytes_FromStringAndSize(key, (Py_ssize_t)key_len);
	v[1] = PyLong_FromSize_t(value_len);
	v[2] = PyLong_FromUnsignedLong(flags);
	v[3] = PyLong_FromLongLong(ttl);
	v[4] = PyLong_FromUnsignedLongLong(cas);
	for (int i = 0; i < 5; i++) {
		if (v[i] == NULL) {
			for (int j = 0; j < 5; j++)
				Py_XDECREF(v[j]);
			Py_DECREF(t);
			return NULL;
		}
	}
	for (int i = 0; i < 5; i++)
		PyStructSequence_SET_ITEM(t, i, v[i]);
	return t;
}

static const struct {
	const char *name;
	enum shmkv_status st;
} statuses[] = {
	{ "OK", SHMKV_OK },
	{ "NOT_FOUND", SHMKV_NOT_FOUND },
	{ "TOO_SMALL", SHMKV_TOO_SMALL },
	{ "NOT_STORED", SHMKV_NOT_STORED },
	{ "EXISTS", SHMKV_EXISTS },
	{ "BAD_KEY", SHMKV_BAD_KEY },
	{ "TOO_LARGE", SHMKV_TOO_LARGE },
	{ "NO_MEMORY", SHMKV_NO_MEMORY },
	{ "NON_NUMERIC", SHMKV_NON_NUMERIC },
	{ "NO_SERVER", SHMKV_NO_SERVER },
	{ "PERMISSION", SHMKV_PERMISSION },
	{ "VERSION_MISMATCH", SHMKV_VERSION_MISMATCH },
	{ "NO_PROC_SLOTS", SHMKV_NO_PROC_SLOTS },
	{ "SERVER_GONE", SHMKV_SERVER_GONE },
	{ "PROTOCOL", SHMKV_PROTOCOL },
	{ "SYSTEM", SHMKV_SYSTEM },
	{ "OUT_OF_MEMORY", SHMKV_OUT_OF_MEMORY },
};

static PyObject *py_strerror(PyObject *self, PyObject *arg)
{
	long st = PyLong_AsLong(arg);

	(void)self;
	if (st == -1 && PyErr_Occurred())
		return NULL;
	return PyUnicode_FromString(shmkv_strerror((enum shmkv_status)st));
}

static PyMethodDef module_methods[] = {
	{ "strerror", py_strerror, METH_O,
	  "strerror(status) -> str: what a status means." },
	{ NULL, NULL, 0, NULL },
};

static struct PyModuleDef module_def = {
	PyModuleDef_HEAD_INIT,
	"shmkv",
	"Read a shmkv-server's cache straight from shared memory.\n\n"
	"    import shmkv\n"
	"    c = shmkv.Client('/tmp/shmkv-11211/shmkv.sock')\n"
	"    c.set('greeting', b'hello')\n"
	"    c.get('greeting')     # b'hello', or None if absent\n\n"
	"Failures raise shmkv.Error; its status is one of the module's\n"
	"constants (shmkv.NOT_STORED, shmkv.SERVER_GONE, ...).",
	-1,
	module_methods,
	NULL,
	NULL,
	NULL,
	NULL,
};

PyMODINIT_FUNC PyInit_shmkv(void);

PyMODINIT_FUNC PyInit_shmkv(void)
{
	PyObject *m = PyModule_Create(&module_def);
	PyTypeObject *client = shmkv_py_client_type();

	if (m == NULL)
		return NULL;
	shmkv_error = PyErr_NewExceptionWithDoc("shmkv.Error",
						"A shmkv call failed; .status says how (one of "
						"the module's status constants).",
						NULL, NULL);
	key_info_type = PyStructSequence_NewType(&key_info_desc);
	if (shmkv_error == NULL || key_info_type == NULL ||
	    PyType_Ready(client) < 0)
		goto fail;
	Py_INCREF(shmkv_error);
	if (PyModule_AddObject(m, "Error", shmkv_error) < 0)
		goto fail;
	Py_INCREF(key_info_type);
	if (PyModule_AddObject(m, "KeyInfo", (PyObject *)key_info_type) < 0)
		goto fail;
	Py_INCREF(client);
	if (PyModule_AddObject(m, "Client", (PyObject *)client) < 0)
		goto fail;
	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
		if (PyModule_AddIntConstant(m, statuses[i].name,
					    (long)statuses[i].st) < 0)
			goto fail;
	if (PyModule_AddIntConstant(m, "KEY_MAX", SHMKV_KEY_MAX) < 0)
		goto fail;
	return m;
fail:
	Py_DECREF(m);
	return NULL;
}
