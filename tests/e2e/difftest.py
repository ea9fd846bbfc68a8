#!/usr/bin/python3
"""difftest.py - send the same random command streams to memcached and shmkv

A seeded generator (difftest_gen.py) writes a stream of text and meta commands, valid and
invalid (bad keys and numbers, every flag of mg ms md ma mn, quiet mode,
base64 keys, stale items, CAS tokens that are current, stale or bogus, TTLs
relative, absolute, negative and at the 30-day boundary).  The stream goes
in batches: one to twenty commands pipelined in one write, or split at
random points across several writes, each batch followed by `mn` so that
the end of its replies is known (quiet mode and noreply send nothing).
memcached (a private one, started here on a free port) and shmkv (through
harness.Server) get the same bytes in lockstep, and their replies are
compared after normalising only what may differ between two correct
servers:

  - CAS numbers: each server's are renamed C1, C2, ... in order of first
    appearance, so "a new CAS" and "the same CAS" still compare;
  - the version text;
  - stats: values are not compared, and shmkv may print fields memcached
    does not (memcached's must all be there);
  - a remaining TTL (t) or an idle time (l) may be a second or two apart,
    since the two servers read their clocks at different instants; and
    memcached's t of an item a negative or past TTL has just expired, the
    negative difference wrapped to 32 bits, compares equal to shmkv's t0
    (docs/compatibility.md lists it).

Timing is kept out of the streams rather than normalised: both servers get
one clock reading per batch for absolute times, and the generator sends no
absolute time within 2 s of now (memcached's clock is a timer's).

memcached 1.6.18 rewrites a number an incr, decr or ma changes in place only
when nothing else holds the item (a reply being written, its background
threads); otherwise it writes a new item: unpadded, unfetched, without the
binary-key mark or a recache token.  Which one it does depends on timing,
and protocol.txt tells clients not to rely on the padding.  So arithmetic
and other commands on its key never share a batch, and after each batch
with arithmetic the runner compares the items it changed (mg s h k u, on
both); where memcached's is the new item and shmkv's the old one changed in
place (or where an ma's T expired shmkv's item and memcached's new item kept
the old TTL), both drop the key (counted and printed).

CAS tokens a command sends are each server's own: the runner remembers the
CAS every reply showed for a key (gets, mg ... c k) and substitutes it.

A divergence is reduced to a short stream that still shows it, on fresh
connections after flush_all: first the shortest suffix of the commands
before it, then one command removed at a time.

Usage:
  difftest.py --server PATH-TO-shmkv-server [--seeds 1-20] [--ops 5000]
              [--mode all|text|meta] [--report FILE]
Exit status 0 when every stream agreed, 1 on a divergence, 2 on bad usage.
"""
import argparse
import base64
import os
import re
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from difftest_gen import ARITHMETIC, BOGUS_CAS, Generator, keys_named  # noqa: E402

MEMCACHED = "/usr/bin/memcached"
SENTINEL = b"mn\r\n"
REPLY_TIMEOUT = 3.0


def mn_lines(buf):
    """How many lines of buf are exactly MN."""
    return buf.split(b"\r\n")[:-1].count(b"MN")


# ------------------------------------------------------------ one server

class Peer:
    """One server's connection and what its replies taught us (CAS)."""

    def __init__(self, name, port):
        self.name = name
        self.port = port
        self.sock = None
        self.cas_seen = {}     # key -> list of CAS values, in order
        self.canon = {}        # CAS value -> "C<n>"

    def connect(self):
        self.close()
        self.sock = socket.create_connection(("127.0.0.1", self.port), 5)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def forget(self):
        self.cas_seen.clear()
        self.canon.clear()

    def fill(self, data, now):
        def sub(m):
            kind, arg = m.group(1).decode(), m.group(2).decode()
            if kind == "abs":
                return str(now + int(arg)).encode()
            key, which = arg.rsplit(":", 1)
            seen = self.cas_seen.get(key, [])
            if not seen:
                return BOGUS_CAS.encode()
            if which == "cur":
                return str(seen[-1]).encode()
            older = [c for c in seen if c != seen[-1]]
            return str(older[-1] if older else max(seen[-1] - 1, 1)).encode()
        return re.sub(rb"\{(cas|abs):([^}]*)\}", sub, data)

    def exchange(self, cmds, splits, now):
        """Send one batch (filled in, absolute times from now) and the
        sentinel; returns (reply, how) where how is "ok", "closed" or
        "timeout"."""
        data = b"".join(self.fill(c, now) for c in cmds) + SENTINEL
        cuts = sorted(set(int(s * len(data)) for s in splits)) + [len(data)]
        start = 0
        try:
            for cut in cuts:
                if cut > start:
                    self.sock.sendall(data[start:cut])
                    if cut != len(data):
                        time.sleep(0.001)
                    start = cut
        except (BrokenPipeError, ConnectionResetError):
            pass
        # Each mn of the batch answers MN too; the sentinel's is the last.
        want = 1 + sum(1 for c in cmds if c == SENTINEL)
        buf = b""
        deadline = time.monotonic() + REPLY_TIMEOUT
        while mn_lines(buf) < want or not buf.endswith(b"MN\r\n"):
            left = deadline - time.monotonic()
            if left <= 0:
                return buf, "timeout"
            self.sock.settimeout(left)
            try:
                d = self.sock.recv(65536)
            except socket.timeout:
                return buf, "timeout"
            except (ConnectionResetError, BrokenPipeError):
                d = b""
            if not d:
                return buf, "closed"
            buf += d
        return buf[:-4], "ok"

    def learn_cas(self, key, cas):
        seen = self.cas_seen.setdefault(key, [])
        if not seen or seen[-1] != cas:
            seen.append(cas)

    def canonical(self, cas):
        if cas not in self.canon:
            self.canon[cas] = "C%d" % (len(self.canon) + 1)
        return self.canon[cas]


# ------------------------------------------------------------ replies

def split_units(buf):
    """A reply stream as a list of units: a line, a VALUE/VA line with its
    data, or a block of STAT lines with its END."""
    units = []
    pos = 0
    while pos < len(buf):
        nl = buf.find(b"\r\n", pos)
        if nl < 0:
            units.append(buf[pos:])
            break
        line = buf[pos:nl + 2]
        end = nl + 2
        parts = line.split()
        size = None
        if parts[:1] == [b"VALUE"] and len(parts) >= 4 and parts[3].isdigit():
            size = int(parts[3])
        elif parts[:1] == [b"VA"] and len(parts) >= 2 and parts[1].isdigit():
            size = int(parts[1])
        if size is not None and end + size + 2 <= len(buf):
            end += size + 2
        elif parts[:1] == [b"STAT"]:
            while end < len(buf) and not buf.startswith(b"END\r\n", end) \
                    and buf.startswith(b"STAT ", end):
                nxt = buf.find(b"\r\n", end)
                if nxt < 0:
                    break
                end = nxt + 2
            if buf.startswith(b"END\r\n", end):
                end += 5
        units.append(buf[pos:end])
        pos = end
    return units


META_CODES = {b"HD", b"VA", b"EN", b"NF", b"NS", b"EX", b"MN", b"ME"}


def meta_key_of(tokens):
    key = None
    binary = False
    for t in tokens[1:]:
        if t[:1] == b"k":
            key = t[1:]
        elif t == b"b":
            binary = True
    if key is not None and binary:
        try:
            key = base64.b64decode(key, validate=True)
        except ValueError:
            return None
    return key


def normalise(peer, unit):
    """The unit as compared: CAS renamed, version text and stats values
    dropped.  Also learns the CAS values the unit shows."""
    if unit.startswith(b"VERSION "):
        return b"VERSION <text>\r\n"
    if unit.startswith(b"STAT "):
        names = []
        for line in unit.split(b"\r\n"):
            parts = line.split(b" ")
            if parts[0] == b"STAT" and len(parts) >= 2:
                # Classes (memcached) and partitions (shmkv) differ in
                # number: "items:7:number" and "7:chunk_size" compare
                # by field only.
                names.append(re.sub(rb"^\d+:|:\d+:", b":N:", parts[1]))
        return ("STATS", frozenset(names))
    head, sep, rest = unit.partition(b"\r\n")
    parts = head.split(b" ")
    if parts[0] == b"VALUE" and len(parts) == 5 and parts[4].isdigit():
        peer.learn_cas(parts[1].decode("utf-8", "surrogateescape"), int(parts[4]))
        parts[4] = peer.canonical(int(parts[4])).encode()
    elif parts[0] in META_CODES:
        key = meta_key_of(parts)
        for i, t in enumerate(parts[1:], 1):
            if t[:1] == b"c" and t[1:].isdigit():
                if key is not None:
                    peer.learn_cas(key.decode("utf-8", "surrogateescape"),
                                   int(t[1:]))
                parts[i] = b"c" + peer.canonical(int(t[1:])).encode()
    return b" ".join(parts) + sep + rest


def wrapped_negative_ttl(mc_token, our_token):
    """memcached 1.6.18 reports the t of an item that a negative or past TTL
    has expired as the negative difference wrapped to 32 bits; shmkv says t0
    (docs/compatibility.md, deliberate)."""
    return mc_token[:1] == b"t" and our_token == b"t0" and \
        mc_token[1:].isdigit() and 2 ** 31 <= int(mc_token[1:]) < 2 ** 32


def close_in_time(a, b):
    """Two meta reply lines equal but for t/l tokens a second or two apart
    (or a t memcached wraps, wrapped_negative_ttl)."""
    if not isinstance(a, bytes) or not isinstance(b, bytes):
        return False
    ha, _, ra = a.partition(b"\r\n")
    hb, _, rb_ = b.partition(b"\r\n")
    ta, tb = ha.split(b" "), hb.split(b" ")
    if ra != rb_ or len(ta) != len(tb) or ta[0] not in META_CODES:
        return False
    for x, y in zip(ta, tb):
        if x == y or wrapped_negative_ttl(x, y):
            continue
        if x[:1] != y[:1] or x[:1] not in (b"t", b"l"):
            return False
        try:
            vx, vy = int(x[1:]), int(y[1:])
        except ValueError:
            return False
        if vx < 0 or vy < 0 or abs(vx - vy) > 2:
            return False
    return True


def units_agree(mc, ours):
    if mc == ours:
        return True
    if isinstance(mc, tuple) and isinstance(ours, tuple):
        return mc[1] <= ours[1]
    # stats items (or slabs) with nothing to show: memcached may have
    # reclaimed what shmkv still counts, and values are not compared.
    if mc == b"END\r\n" and isinstance(ours, tuple):
        return True
    return close_in_time(mc, ours)


def head(unit):
    """A unit's first words, to name a kind of divergence."""
    if unit is None:
        return "nothing"
    if isinstance(unit, tuple):
        return "STAT..."
    words = unit.split(b"\r\n", 1)[0].split(b" ")
    n = 6 if words[0].endswith(b"_ERROR") else 1
    return b" ".join(words[:n]).decode("utf-8", "replace")[:60]


def compare(mc_peer, mc_reply, our_peer, our_reply):
    """None if the replies agree, else a short description."""
    mu = [normalise(mc_peer, u) for u in split_units(mc_reply)]
    ou = [normalise(our_peer, u) for u in split_units(our_reply)]
    for i in range(max(len(mu), len(ou))):
        a = mu[i] if i < len(mu) else None
        b = ou[i] if i < len(ou) else None
        if a is None or b is None or not units_agree(a, b):
            if isinstance(a, tuple) and isinstance(b, tuple):
                return "stats fields missing: %s" % " ".join(
                    sorted(n.decode() for n in a[1] - b[1]))
            return "reply %d: memcached %s, shmkv %s" % (i, head(a), head(b))
    return None


# ------------------------------------------------------------ running

class Pair:
    """memcached and shmkv, each with one connection, in lockstep."""

    def __init__(self, mc_port, our_port):
        self.mc = Peer("memcached", mc_port)
        self.ours = Peer("shmkv", our_port)
        self.settled = 0
        self.connect()

    def connect(self):
        self.mc.connect()
        self.ours.connect()

    def reset(self):
        """Fresh connections, empty caches, nothing remembered."""
        self.connect()
        for p in (self.mc, self.ours):
            p.sock.sendall(b"flush_all\r\n" + SENTINEL)
            harness.recv_until(p.sock, re.compile(rb".*MN\r\n", re.S), 5)
            p.forget()

    def run_batch(self, cmds, splits):
        """(mismatch description or None, memcached's reply, ours)."""
        # One clock reading for both, so that an absolute time is the same
        # number on both servers even when a second ends between them.
        now = int(time.time())
        mr, mhow = self.mc.exchange(cmds, splits, now)
        orr, ohow = self.ours.exchange(cmds, splits, now)
        why = compare(self.mc, mr, self.ours, orr)
        if mhow != ohow:
            why = "memcached: %s, shmkv: %s" % (mhow, ohow)
        if mhow != "ok" or ohow != "ok":
            self.connect()
        elif why is None:
            self.settle_numbers(cmds)
        return why, mr + b"<" + mhow.encode() + b">", orr + b"<" + ohow.encode() + b">"

    @staticmethod
    def item_state(peer, key):
        """What mg shows of key's item on peer: (length, fetched, stored
        with a binary key, the set of Z X W), or None if it has none.  u
        leaves the item unfetched and its access time as it was; both
        servers get the same probe, so whatever else it does (a W on a
        stale item) it does to both."""
        peer.sock.sendall(b"mg " + base64.b64encode(key) + b" b s h k u\r\n"
                          + SENTINEL)
        reply = harness.recv_until(peer.sock, re.compile(rb".*MN\r\n", re.S), 5)
        words = reply.split(b"\r\n", 1)[0].split(b" ")
        if words[0] != b"HD" or len(words) < 4:
            return None
        return (int(words[1][1:]), int(words[2][1:]), b"b" in words[4:],
                set(words[4:]) - {b"b"})

    def settle_numbers(self, cmds):
        """After a batch that agreed: for each key an incr, decr or ma
        named, compare the two items.  Where memcached's is a new item
        (unpadded, unfetched, without the binary-key mark or a recache
        token) and shmkv's the old one changed in place, memcached wrote
        a new item because something held a reference to the old one
        (docs/compatibility.md): both servers drop the key, so that what
        follows compares again.  Likewise where an ma's T expired shmkv's
        item and memcached's new one is there: memcached applied T to the
        item it replaced.  Counted in self.settled; any other difference
        is left for the commands that follow to show."""
        arith = [c for c in cmds if c.split(b" ", 1)[0] in ARITHMETIC]
        keys = {k for c in arith for k in keys_named(c)}
        touched = {k for c in arith
                   if any(w[:1] == b"T" for w in c.split(b"\r\n", 1)[0].split(b" ")[2:])
                   for k in keys_named(c)}
        for key in sorted(keys):
            mine = self.item_state(self.mc, key)
            ours = self.item_state(self.ours, key)
            if mine is None or mine == ours:
                continue
            if ours is None and key not in touched:
                continue
            if ours is not None and not (
                    mine[0] <= ours[0] and mine[1] <= ours[1] and
                    mine[2] <= ours[2] and mine[3] <= ours[3]):
                continue
            self.settled += 1
            for p in (self.mc, self.ours):
                p.sock.sendall(b"md " + base64.b64encode(key) + b" b q\r\n"
                               + SENTINEL)
                harness.recv_until(p.sock, re.compile(rb".*MN\r\n", re.S), 5)
                p.cas_seen.pop(key.decode("utf-8", "surrogateescape"), None)

    def replay(self, cmds):
        """Replay commands one per batch after a reset: the last command's
        verdict and replies."""
        self.reset()
        why = None
        for c in cmds:
            why, mr, orr = self.run_batch([c], [])
        return why, mr, orr


def signature(cmd):
    """What kind of command: its name (and ms's or ma's mode flag)."""
    words = cmd.split(b"\r\n", 1)[0].split(b" ")
    name = words[0][:12]
    if name in (b"ms", b"ma"):
        modes = [w for w in words[2:] if w[:1] == b"M"]
        if modes:
            name += b" " + modes[0][:2]
    return name


def minimise(pair, history, failing):
    """The shortest stream found that still diverges on its last command."""
    target = history + [failing]
    for n in (1, 2, 3, 5, 8, 13, 21, 34, 55):
        if n > len(target):
            break
        cand = target[-n:]
        if pair.replay(cand)[0] is not None:
            break
    else:
        cand = target[-min(len(target), 200):]
        if pair.replay(cand)[0] is None:
            return None
    i = 0
    while i < len(cand) - 1:
        trial = cand[:i] + cand[i + 1:]
        if pair.replay(trial)[0] is not None:
            cand = trial
        else:
            i += 1
    return cand


def locate(pair, history, cmds):
    """Replay history and the batch one command at a time from empty
    caches: (the commands before the first that diverges, that command),
    or None if none does alone (pipelining or split writes matter)."""
    pair.reset()
    seq = history + cmds
    for i, c in enumerate(seq):
        why = pair.run_batch([c], [])[0]
        if why is not None:
            return seq[:i], c, why
    return None


def run_seed(pair, seed, nops, mode, found):
    """Run one seed's stream; divergences go into found, one entry per kind
    of command (signature) with the first instance's commands."""
    pair.reset()
    gen = Generator(seed, mode)
    history = []
    divergent = 0
    batches = gen.stream(nops)
    for cmds, splits in batches:
        why, mr, orr = pair.run_batch(cmds, splits)
        if why is None:
            history.extend(cmds)
            history = history[-200:]
            continue
        divergent += 1
        where = locate(pair, history, cmds)
        if where is None:
            kind = b"batch: " + b" / ".join(signature(c) for c in cmds[:3])
            prefix, culprit = None, None
        else:
            prefix, culprit, alone = where
            kind = signature(culprit) + b": " + \
                re.sub(r"^reply \d+: ", "", alone).encode()
        entry = found.setdefault(kind, {"count": 0, "seed": seed, "why": why,
                                        "mc": mr, "ours": orr, "batch": cmds,
                                        "prefix": prefix, "culprit": culprit})
        entry["count"] += 1
        # The two caches may now hold different things: start both over.
        pair.reset()
        history = []
    return divergent, len(batches)


def start_memcached(*flags):
    port = harness.free_port()
    args = [MEMCACHED, "-p", str(port), "-l", "127.0.0.1", "-U", "0", "-m", "64"]
    if os.geteuid() == 0:
        args += ["-u", "root"]
    args += list(flags)
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return proc, port
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                stop_memcached(proc)
                raise RuntimeError("memcached did not start on port %d" % port)
            time.sleep(0.05)


def stop_memcached(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def show(b, limit=600):
    s = repr(b)[2:-1]
    return s if len(s) <= limit else s[:limit] + "..."


def report(found, pair, out, do_minimise=True):
    """Markdown: one section per kind of divergence, with a minimal stream."""
    for kind in sorted(found):
        e = found[kind]
        out.write("## `%s` (%d batches, first in seed %d)\n\n"
                  % (kind.decode("utf-8", "replace"), e["count"], e["seed"]))
        stream = None
        if e["culprit"] is not None:
            stream = [e["culprit"]]
            if do_minimise:
                stream = minimise(pair, e["prefix"], e["culprit"]) or \
                    e["prefix"][-200:] + [e["culprit"]]
        if stream is not None:
            why, mr, orr = pair.replay(stream)
            out.write("Minimal stream (one command per write):\n\n```\n")
            out.write("".join(show(c) + "\n" for c in stream))
            out.write("```\n\n- memcached: `%s`\n- shmkv:     `%s`\n- %s\n\n"
                      % (show(mr), show(orr), why or e["why"]))
        else:
            out.write("Not reproduced one command at a time (pipelining or "
                      "split writes matter); the batch:\n\n```\n")
            out.write("".join(show(c) + "\n" for c in e["batch"]))
            out.write("```\n\n- memcached: `%s`\n- shmkv:     `%s`\n- %s\n\n"
                      % (show(e["mc"]), show(e["ours"]), e["why"]))


def parse_seeds(text):
    seeds = []
    for part in text.split(","):
        if "-" in part:
            a, b = part.split("-", 1)
            seeds += range(int(a), int(b) + 1)
        elif part:
            seeds.append(int(part))
    return seeds


def run(server_path, seeds, nops, mode, out, do_minimise=True, quiet=False):
    """Every seed against a fresh memcached and shmkv pair; the kinds of
    divergence found (empty dict when all agreed)."""
    harness.SERVER = os.path.abspath(server_path)
    mc, mc_port = start_memcached()
    srv = harness.Server(workers=2, memory=64)
    found = {}
    totals = [0, 0]           # divergent batches, batches
    settled = [0]
    try:
        srv.wait_ready()
        pair = Pair(mc_port, srv.port)
        for seed in seeds:
            t0 = time.monotonic()
            n, nbatches = run_seed(pair, seed, nops, mode, found)
            totals[0] += n
            totals[1] += nbatches
            if not quiet:
                sys.stderr.write("seed %d: %d ops in %d batches, %d divergent (%.1f s)\n"
                                 % (seed, nops, nbatches, n, time.monotonic() - t0))
        settled[0] = pair.settled
        if found and out is not None:
            report(found, pair, out, do_minimise)
        pair.mc.close()
        pair.ours.close()
    finally:
        stop_memcached(mc)
        srv.cleanup()
    if not quiet and totals[1]:
        sys.stderr.write("%d of %d batches diverged (%.2f%%); %d items memcached "
                         "rewrote as new ones after arithmetic, dropped from both\n"
                         % (totals[0], totals[1], 100.0 * totals[0] / totals[1],
                            settled[0]))
    return found


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--server", default=os.environ.get("SHMKV_SERVER", ""))
    ap.add_argument("--seeds", default="1-20")
    ap.add_argument("--ops", type=int, default=5000)
    ap.add_argument("--mode", choices=["all", "text", "meta"], default="all")
    ap.add_argument("--report", help="write the divergences here (markdown)")
    ap.add_argument("--no-minimise", action="store_true")
    a = ap.parse_args()
    if not a.server or not os.access(a.server, os.X_OK):
        ap.error("--server PATH-TO-shmkv-server is required")
    if not os.access(MEMCACHED, os.X_OK):
        ap.error("%s is not installed (apt-get install memcached)" % MEMCACHED)
    try:
        seeds = parse_seeds(a.seeds)
    except ValueError:
        ap.error("--seeds: a list like 1-20 or 1,5,9: %r" % a.seeds)
    out = open(a.report, "w") if a.report else sys.stdout
    t0 = time.monotonic()
    found = run(a.server, seeds, a.ops, a.mode, out, not a.no_minimise)
    total = sum(e["count"] for e in found.values())
    sys.stderr.write("%d seeds x %d ops (%s): %d divergent batches in %d kinds "
                     "(%.0f s)\n" % (len(seeds), a.ops, a.mode, total, len(found),
                                     time.monotonic() - t0))
    if a.report:
        out.close()
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
