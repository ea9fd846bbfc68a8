"""test_clients.py - real memcached clients against shmkv-server

pymemcache (the Debian python3-pymemcache) doing set/get/get_many/cas/
incr/delete/touch over TCP and the Unix socket, and libmemcached-tools'
memccp storing a file and memccat reading it back.
"""
import os
import shutil
import subprocess
import tempfile

import harness
from harness import ServerTest

from pymemcache.client.base import Client


class PymemcacheTest(ServerTest):
    def exercise(self, client):
        self.assertTrue(client.set("a", b"1"))
        self.assertEqual(client.get("a"), b"1")
        self.assertIsNone(client.get("missing"))
        client.set_many({"b": b"2", "c": b"3"})
        self.assertEqual(client.get_many(["a", "b", "c", "missing"]),
                         {"a": b"1", "b": b"2", "c": b"3"})
        value, cas = client.gets("a")
        self.assertEqual(value, b"1")
        self.assertTrue(client.cas("a", b"10", cas))
        self.assertFalse(client.cas("a", b"11", cas))  # the CAS has moved on
        self.assertEqual(client.get("a"), b"10")
        self.assertEqual(client.incr("a", 5), 15)
        self.assertEqual(client.decr("a", 20), 0)
        self.assertIsNone(client.incr("missing", 1))
        self.assertTrue(client.touch("b", 100))
        self.assertFalse(client.touch("missing", 100))
        self.assertTrue(client.add("d", b"4"))
        self.assertFalse(client.add("d", b"5"))
        self.assertTrue(client.delete("d", noreply=False))
        self.assertFalse(client.delete("d", noreply=False))
        self.assertTrue(client.flush_all(noreply=False))
        self.assertIsNone(client.get("b"))
        self.assertTrue(client.version())

    def test_tcp(self):
        srv = self.new_server()
        client = Client(("127.0.0.1", srv.port), connect_timeout=5, timeout=5,
                        default_noreply=False)
        try:
            self.exercise(client)
        finally:
            client.close()
        self.assertStopsCleanly(srv)

    def test_unix_socket(self):
        srv = self.new_server()
        client = Client(srv.sock_path, connect_timeout=5, timeout=5,
                        default_noreply=False)
        try:
            self.exercise(client)
        finally:
            client.close()
        self.assertStopsCleanly(srv)


class LibmemcachedToolsTest(ServerTest):
    def test_memccp_then_memccat(self):
        memccp = shutil.which("memccp") or shutil.which("libmemcached-memccp")
        memccat = shutil.which("memccat") or shutil.which("libmemcached-memccat")
        if not memccp or not memccat:
            self.skipTest("libmemcached-tools not installed")
        srv = self.new_server()
        tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, tmp, True)
        path = os.path.join(tmp, "payload.bin")
        data = os.urandom(100 * 1024)
        with open(path, "wb") as f:
            f.write(data)
        servers = "--servers=127.0.0.1:%d" % srv.port
        r = subprocess.run([memccp, servers, path], capture_output=True, timeout=10)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = subprocess.run([memccat, servers, "payload.bin"], capture_output=True,
                           timeout=10)
        self.assertEqual(r.returncode, 0, r.stderr)
        # memccat ends what it prints with a newline of its own.
        self.assertEqual(r.stdout, data + b"\n")
        self.assertStopsCleanly(srv)


if __name__ == "__main__":
    harness.main()
