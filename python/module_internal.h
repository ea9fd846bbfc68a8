/*
 * module_internal.h - what the Python module's two files share
 *
 * shmkv_module.c holds the module, its exception and its conversions;
 * client.c the Client type.
 */
#ifndef SHMKV_PY_MODULE_INTERNAL_H
#define SHMKV_PY_MODULE_INTERNAL_H

#include <Python.h>
#include <stddef.h>
#include <stdint.h>

#include "shmkv.h"

/* A key's bytes, borrowed from the Python object that holds them. */
struct shmkv_py_bytes {
	const char *p;
	size_t len;
};

/* shmkv_py_raise - raise shmkv.Error for st with the library's message;
 * returns NULL for the caller to return. */
PyObject *shmkv_py_raise(enum shmkv_status st);

/* shmkv_py_raise_message - the same with a message of the caller's (a
 * new reference, which this takes; NULL if making it failed). */
PyObject *shmkv_py_raise_message(enum shmkv_status st, PyObject *message);

/* shmkv_py_key - a bytes or str key's bytes (valid while obj lives); 0 or
 * -1 with TypeError set. */
int shmkv_py_key(PyObject *obj, struct shmkv_py_bytes *out);

/* shmkv_py_value - a buffer view of a bytes-like or str value; 0 or -1.
 * The caller releases it with PyBuffer_Release. */
int shmkv_py_value(PyObject *obj, Py_buffer *view);

/* shmkv_py_key_info - a new shmkv.KeyInfo. */
PyObject *shmkv_py_key_info(const void *key, size_t key_len, size_t value_len,
			    uint32_t flags, int64_t ttl, uint64_t cas);

/* shmkv_py_client_type - the Client type, for the module to add. */
PyTypeObject *shmkv_py_client_type(void);

#endif
