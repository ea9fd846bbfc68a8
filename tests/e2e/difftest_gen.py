"""difftest_gen.py - the differential tester's command generator

Seeded random streams of memcached text and meta commands, valid and
invalid: bad keys (too long, control bytes, non-ASCII) and bad numbers,
every flag of mg ms md ma (quiet mode, base64 keys, opaque tokens, vivify,
recache, stale items, the modes of ms and ma), CAS tokens that are
current, stale or bogus, and TTLs relative, absolute (past and future),
negative and at the 30-day boundary.  Commands are templates: {cas:KEY:cur}
or {cas:KEY:stale} and {abs:+N} are filled in per server at send time
(difftest.Peer.fill), since each server has its own CAS numbers and the
clock moves.  The same seed always gives the same stream.
"""
import base64
import random

KEYS = ["k%d" % i for i in range(8)] + ["n0", "n1", "n2"]
NUMERIC_KEYS = ["n0", "n1", "n2"]
BOGUS_CAS = "987654321"
THIRTY_DAYS = 60 * 60 * 24 * 30


class Generator:
    """Commands as templates: {cas:KEY:cur|stale} and {abs:+N} are filled
    in per server at send time (each server's own CAS, the current time)."""

    def __init__(self, seed, mode="all"):
        self.r = random.Random(seed)
        self.mode = mode

    def pick(self, weighted):
        total = sum(w for w, _ in weighted)
        x = self.r.uniform(0, total)
        for w, v in weighted:
            x -= w
            if x <= 0:
                return v
        return weighted[-1][1]

    def key(self, numeric=False):
        if numeric or self.r.random() < 0.15:
            return self.r.choice(NUMERIC_KEYS)
        return self.r.choice(KEYS)

    def bad_key(self):
        return self.pick([(3, "x" * 251), (1, "x" * 250), (1, "bad\x01key"),
                          (1, "k\x7f"), (1, "é")])

    def value(self, key=None):
        if key in NUMERIC_KEYS or self.r.random() < 0.1:
            return str(self.pick([(5, self.r.randint(0, 100)),
                                  (1, 2 ** 64 - 1), (1, 2 ** 64 - 2),
                                  (1, self.r.randint(0, 2 ** 40))]))
        n = self.pick([(8, self.r.randint(0, 12)), (1, self.r.randint(13, 300)),
                       (1, 0)])
        return "".join(self.r.choice("abcdefghij") for _ in range(n))

    def ttl(self):
        return self.pick([(6, "0"), (5, str(self.r.randint(100, 5000))),
                          (2, "-1"), (1, str(-self.r.randint(2, 100))),
                          (2, "{abs:+%d}" % self.r.randint(100, 5000)),
                          # Not within 2 s of now: memcached's clock is
                          # a timer's, up to a second or two behind.
                          (1, "{abs:-%d}" % self.r.randint(3, 100)),
                          (1, str(THIRTY_DAYS)), (1, str(THIRTY_DAYS + 1)),
                          (1, str(THIRTY_DAYS - 1)), (1, "abc"),
                          (1, "99999999999999999999"), (1, "2147483647"),
                          (1, "4294967296")])

    def client_flags(self):
        return self.pick([(10, "0"), (3, str(self.r.randint(1, 65535))),
                          (1, "4294967295"), (1, "4294967296"), (1, "-1"),
                          (1, "abc")])

    def cas(self, key):
        return self.pick([(5, "{cas:%s:cur}" % key), (2, "{cas:%s:stale}" % key),
                          (1, BOGUS_CAS), (1, "0"), (1, "abc"), (1, "-1")])

    # -- text protocol

    def storage(self):
        cmd = self.pick([(6, "set"), (2, "add"), (2, "replace"), (1, "append"),
                         (1, "prepend"), (2, "cas")])
        key = self.key() if self.r.random() > 0.03 else self.bad_key()
        val = self.value(key)
        length = str(len(val))
        data = val
        roll = self.r.random()
        if roll < 0.03:
            data = val + "zz"          # longer than declared: bad data chunk
        elif roll < 0.05:
            length = self.pick([(1, "-1"), (1, "abc"), (1, "")])
        elif roll < 0.051:
            length = "2147483647"
        line = "%s %s %s %s %s" % (cmd, key, self.client_flags(), self.ttl(), length)
        if cmd == "cas":
            line += " " + self.cas(key)
        if self.r.random() < 0.1:
            line += " noreply"
        if length in ("-1", "abc", "", "2147483647"):
            return line + "\r\n"
        return line + "\r\n" + data + "\r\n"

    def text_other(self):
        kind = self.pick([(8, "get"), (3, "gets"), (2, "gat"), (2, "gats"),
                          (2, "touch"), (3, "delete"), (4, "incr"),
                          (1, "flush_all"), (1, "version"), (1, "verbosity"),
                          (1, "stats"), (2, "bad")])
        nr = " noreply" if self.r.random() < 0.1 else ""
        if kind in ("get", "gets", "gat", "gats"):
            keys = [self.key() for _ in range(self.pick([(6, 1), (3, 2), (1, 5)]))]
            if self.r.random() < 0.03:
                keys.append(self.bad_key())
            prefix = kind if kind[:3] == "get" else "%s %s" % (kind, self.ttl())
            return "%s %s\r\n" % (prefix, " ".join(keys))
        if kind == "touch":
            return "touch %s %s%s\r\n" % (self.key(), self.ttl(), nr)
        if kind == "delete":
            extra = self.pick([(8, ""), (1, " 0"), (1, " 5")])
            return "delete %s%s%s\r\n" % (self.key(), extra, nr)
        if kind == "incr":
            delta = self.pick([(8, str(self.r.randint(0, 1000))),
                               (1, str(2 ** 64 - 1)), (1, str(2 ** 64)),
                               (1, "-1"), (1, "abc"), (1, "")])
            return "%s %s %s%s\r\n" % (self.r.choice(["incr", "decr"]),
                                       self.key(numeric=self.r.random() < 0.7),
                                       delta, nr)
        if kind == "flush_all":
            return "flush_all%s%s\r\n" % (self.pick([(4, ""), (1, " 0"),
                                                     (1, " -1"), (1, " abc")]), nr)
        if kind == "version":
            return "version\r\n"
        if kind == "verbosity":
            return "verbosity %s%s\r\n" % (self.pick([(3, "0"), (1, "1"), (1, "")]), nr)
        if kind == "stats":
            return "stats%s\r\n" % self.pick([(3, ""), (1, " settings"),
                                               (1, " items"), (1, " slabs"),
                                               (1, " sizes"), (1, " bogus")])
        return self.pick([(2, "foo\r\n"), (2, "\r\n"), (1, "GET k0\r\n"),
                          (1, " get k0\r\n"), (1, "get\r\n"), (1, "set k0\r\n"),
                          (1, "incr\r\n"), (1, "touch k0\r\n"),
                          (1, "cas k0 0 0 1\r\nx\r\n"), (1, "m\r\n"),
                          (1, "mz k0\r\n")])

    # -- meta protocol

    def meta_key(self, flags):
        if self.r.random() < 0.03:
            return self.bad_key()
        key = self.key()
        if self.r.random() < 0.15:
            flags.insert(0, "b")
            if self.r.random() < 0.1:
                return "!!!!"
            return base64.b64encode(key.encode()).decode()
        return key

    def maybe_bad_flags(self, flags):
        roll = self.r.random()
        if roll < 0.02:
            flags.append(self.r.choice(["z", "Y", "!", "%"]))
        elif roll < 0.04 and flags:
            flags.append(self.r.choice(flags))
        elif roll < 0.05:
            flags.append("T" + self.r.choice(["abc", "", "99999999999999999999"]))
        self.r.shuffle(flags)
        return flags

    def opt(self, p, flag, tok=None):
        if self.r.random() < p:
            return [flag + (tok() if tok else "")]
        return []

    def opaque(self):
        return self.pick([(5, str(self.r.randint(0, 999))), (1, "abc"),
                          (1, "x" * 40)])

    def mttl(self):
        return self.ttl()

    def mg(self):
        flags = []
        for f in "cfhklqstuv":
            flags += self.opt(0.25, f)
        flags += self.opt(0.15, "O", self.opaque)
        flags += self.opt(0.1, "E", lambda: str(self.r.randint(1, 10 ** 6)))
        flags += self.opt(0.1, "N", self.mttl)
        flags += self.opt(0.1, "R", lambda: str(self.r.randint(0, 6000)))
        flags += self.opt(0.1, "T", self.mttl)
        key = self.meta_key(flags)
        return " ".join(["mg", key] + self.maybe_bad_flags(flags)) + "\r\n"

    def ms(self):
        flags = []
        for f in "bcIkqs":
            if f != "b":
                flags += self.opt(0.15, f)
        key0 = self.key()
        flags += self.opt(0.2, "C", lambda: self.cas(key0))
        flags += self.opt(0.05, "E", lambda: str(self.r.randint(1, 10 ** 6)))
        flags += self.opt(0.2, "F", self.client_flags)
        flags += self.opt(0.3, "T", self.mttl)
        flags += self.opt(0.1, "O", self.opaque)
        flags += self.opt(0.1, "N", self.mttl)
        flags += self.opt(0.3, "M", lambda: self.pick(
            [(3, "S"), (2, "E"), (2, "A"), (2, "P"), (2, "R"), (1, "s"),
             (1, "e"), (1, "a"), (1, "p"), (1, "r"), (1, "X"), (1, "")]))
        key = self.meta_key(flags)
        val = self.value(key0)
        length = str(len(val))
        data = val
        roll = self.r.random()
        if roll < 0.03:
            data = val + "zz"
        elif roll < 0.05:
            length = self.pick([(1, "-1"), (1, "abc"), (1, "")])
        line = " ".join(["ms", key, length] + self.maybe_bad_flags(flags))
        if length in ("-1", "abc", ""):
            return line.rstrip() + "\r\n"
        return line + "\r\n" + data + "\r\n"

    def md(self):
        flags = []
        for f in "Ikqx":
            flags += self.opt(0.2, f)
        key0 = self.key()
        flags += self.opt(0.2, "C", lambda: self.cas(key0))
        flags += self.opt(0.03, "E", lambda: str(self.r.randint(1, 10 ** 6)))
        flags += self.opt(0.2, "T", self.mttl)
        flags += self.opt(0.1, "O", self.opaque)
        key = self.meta_key(flags)
        return " ".join(["md", key] + self.maybe_bad_flags(flags)) + "\r\n"

    def ma(self):
        flags = []
        for f in "cktqv":
            flags += self.opt(0.2, f)
        key0 = self.key(numeric=True)
        flags += self.opt(0.1, "C", lambda: self.cas(key0))
        flags += self.opt(0.03, "E", lambda: str(self.r.randint(1, 10 ** 6)))
        flags += self.opt(0.2, "N", self.mttl)
        flags += self.opt(0.2, "J", lambda: self.pick(
            [(3, str(self.r.randint(0, 100))), (1, str(2 ** 64 - 1)),
             (1, "abc")]))
        flags += self.opt(0.3, "D", lambda: self.pick(
            [(3, str(self.r.randint(0, 100))), (1, str(2 ** 64 - 1)),
             (1, str(2 ** 64)), (1, "abc")]))
        flags += self.opt(0.2, "T", self.mttl)
        flags += self.opt(0.1, "O", self.opaque)
        modes = [(2, "I"), (2, "+"), (2, "D"), (2, "-"), (1, "i"), (1, "d"),
                 (1, "X"), (1, "")]
        if any(f[:1] == "T" for f in flags):
            # memcached 1.6.18 applies T to the item it replaces when an
            # increment lengthens the number (docs/compatibility.md): with
            # T, ma decrements (or names a bad mode), so the number never
            # grows; without M it increments, so M is always there.
            modes = [m for m in modes if m[1] not in ("I", "+", "i", "")]
            flags += ["M" + self.pick(modes)]
        else:
            flags += self.opt(0.3, "M", lambda: self.pick(modes))
        if self.r.random() < 0.8:
            key = self.meta_key(flags)
        else:
            key = self.key()
        return " ".join(["ma", key] + self.maybe_bad_flags(flags)) + "\r\n"

    def meta_other(self):
        return self.pick([(3, "mn\r\n"), (1, "mg\r\n"), (1, "ms k0\r\n"),
                          (1, "md\r\n"), (1, "ma\r\n"),
                          (1, "mg %s v\r\n" % " ".join(["k0"] + ["v"] * 30))])

    def command(self):
        if self.mode == "text":
            return self.storage() if self.r.random() < 0.4 else self.text_other()
        if self.mode == "meta":
            kinds = [(5, self.mg), (4, self.ms), (2, self.md), (2, self.ma),
                     (1, self.meta_other)]
        else:
            kinds = [(3, self.storage), (3, self.text_other), (5, self.mg),
                     (4, self.ms), (2, self.md), (2, self.ma),
                     (1, self.meta_other)]
        return self.pick(kinds)()

    def stream(self, nops):
        """The commands, grouped in batches: (commands, split points)."""
        batches = []
        made = 0
        pending = None
        while made < nops:
            n = min(nops - made, self.pick([(10, 1), (5, self.r.randint(2, 5)),
                                            (2, self.r.randint(6, 20))]))
            cmds = [pending] if pending is not None else []
            pending = None
            while len(cmds) < n:
                c = self.command().encode("utf-8", "surrogateescape")
                if cmds and (loses_earlier_replies(c) or
                             shares_key_with_arithmetic(c, cmds)):
                    pending = c
                    break
                cmds.append(c)
            made += len(cmds)
            splits = []
            if self.r.random() < 0.2:
                splits = [self.r.random() for _ in range(self.r.randint(1, 3))]
            batches.append((cmds, splits))
        return batches


def loses_earlier_replies(cmd):
    """memcached 1.6.18 drops every reply it has not yet written (those of
    the commands before it in the same read) when a get, gets, gat or gats
    names a key over 250 bytes; such a command starts a batch of its own
    (docs/compatibility.md)."""
    words = cmd.split(b"\r\n", 1)[0].split(b" ")
    if words[0] not in (b"get", b"gets", b"gat", b"gats"):
        return False
    return any(len(w) > 250 for w in words[1:])


def keys_named(cmd):
    """The keys a command names (base64 keys decoded), or [] for a command
    that names none."""
    words = cmd.split(b"\r\n", 1)[0].split(b" ")
    if words[0] in (b"get", b"gets"):
        return words[1:]
    if words[0] in (b"gat", b"gats"):
        return words[2:]
    if len(words) < 2:
        return []
    if words[0][:1] == b"m" and b"b" in words[2:]:
        try:
            return [base64.b64decode(words[1], validate=True)]
        except ValueError:
            return []
    return [words[1]]


ARITHMETIC = (b"incr", b"decr", b"ma")


def shares_key_with_arithmetic(cmd, earlier):
    """Whether cmd names a key that an incr, decr or ma names in the batch
    so far (earlier), or is such a command naming a key earlier names.
    memcached 1.6.18 rewrites a number an increment shortens in place,
    padded with spaces, only when nothing else holds a reference to the
    item: a reply still being written or its own background threads may,
    and then it writes a new, unpadded item (docs/compatibility.md;
    protocol.txt: the padding is not to be relied on).  Such a command
    starts a batch of its own, and after each batch the runner looks at
    the numbers arithmetic changed (difftest.Pair.settle_numbers)."""
    keys = set(keys_named(cmd))
    if not keys:
        return False
    mine = cmd.split(b" ", 1)[0] in ARITHMETIC
    for c in earlier:
        if (mine or c.split(b" ", 1)[0] in ARITHMETIC) and \
                keys & set(keys_named(c)):
            return True
    return False
