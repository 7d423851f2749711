#!/usr/bin/env python3
"""Hostile TFTP clients for hostile_tftp_test.sh: raw datagrams a real client never sends.

    hostile_tftp.py CATEGORY PORT TREE

CATEGORY is one of malformed, options, spoofed, vanishing, flood, loop; PORT the relay's TFTP port on
127.0.0.1; TREE the folder the relay's files were imported from (to compare bytes). Prints one
line per check, "ok WHAT" or "fail WHAT: DETAIL", and "count CATEGORY N" with the number of
inputs tried; the shell script turns those into its checks and its summary. Standard library only.
"""
import os
import resource
import select
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hostile_common import check, say  # noqa: E402

HOST = "127.0.0.1"
FILE = "sip.ld"  # 300,000 bytes in the tree
SMALL = "000000000000.cfg"
UPLOAD = "0004f2aabbcc-boot.log"  # a phone upload name (tftp.allow_uploads is on)



# ---- packets (RFC 1350, 2347) ----

def u16(n):
    return struct.pack("!H", n)


def request(op, name, mode=b"octet", options=()):
    d = u16(op) + name + b"\0" + mode + b"\0"
    for k, v in options:
        d += k + b"\0" + v + b"\0"
    return d


def rrq(name, options=(), mode=b"octet"):
    return request(1, name.encode() if isinstance(name, str) else name, mode, options)


def ack(block):
    return u16(4) + u16(block)


def error(code, msg=b"stop"):
    return u16(5) + u16(code) + msg + b"\0"


def data(block, payload):
    return u16(3) + u16(block) + payload


def describe(d):
    """A reply as a short word: err<code>, data<block>, ack<block>, oack, or junk."""
    if d is None:
        return "none"
    if len(d) >= 4 and d[:2] == b"\0\5":
        return "err%d" % struct.unpack("!H", d[2:4])[0]
    if len(d) >= 4 and d[:2] == b"\0\3":
        return "data%d" % struct.unpack("!H", d[2:4])[0]
    if len(d) == 4 and d[:2] == b"\0\4":
        return "ack%d" % struct.unpack("!H", d[2:4])[0]
    if len(d) >= 2 and d[:2] == b"\0\6":
        return "oack"
    return "junk"


def oack_options(d):
    fields = d[2:].split(b"\0")[:-1]
    return {fields[i].decode(): fields[i + 1].decode() for i in range(0, len(fields) - 1, 2)}


def udp(src=HOST):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((src, 0))
    return s


def probe_all(port, cases, wait=0.6):
    """Sends each case's datagram from a socket of its own, all at once, and collects the answers
    for `wait` seconds. cases: [(what, datagram, {accepted answers})]. Returns {what: (answer,
    datagram, tid, extra answers)}; transfers that started are ended with an ERROR."""
    socks = []
    for what, d, accepted in cases:
        s = udp()
        s.sendto(d, (HOST, port))
        socks.append((s, what))
    by_fd = {s.fileno(): (s, what) for s, what in socks}
    poller = select.poll()
    for fd in by_fd:
        poller.register(fd, select.POLLIN)
    first, extra = {}, {}
    deadline = time.time() + wait
    while True:
        left = deadline - time.time()
        if left <= 0:
            break
        for fd, _ in poller.poll(left * 1000):
            s, what = by_fd[fd]
            d, addr = s.recvfrom(70000)
            if what in first:
                extra[what] = extra.get(what, 0) + 1
            else:
                first[what] = (d, addr[1])
    for s, what in socks:
        if what in first and describe(first[what][0]) not in ("none", "junk") and \
                not describe(first[what][0]).startswith("err"):
            s.sendto(error(0, b"enough"), (HOST, first[what][1]))  # a transfer began: end it
        s.close()
    return {what: (first.get(what, (None, 0))[0], extra.get(what, 0)) for what, _, _ in cases}


def run_cases(port, cases, category):
    got = probe_all(port, cases)
    for what, d, accepted in cases:
        answer, extra = got[what]
        word = describe(answer)
        ok = word in accepted and extra == 0
        detail = "answered %s (+%d more), want %s" % (word, extra, "/".join(sorted(accepted)))
        check(ok, "%s: %s" % (category, what), detail)
    say("count", category, len(cases))
    return got


# ---- categories ----

def malformed(port, tree):
    cases = []
    # Every truncation of an RRQ and of a WRQ, from the empty datagram on. Only the two whole
    # requests inside them are answered with a transfer; other cut-offs with error 4, nothing for
    # what is shorter than an opcode.
    for op, name, whole_reply in ((1, FILE, "data1"), (2, UPLOAD, "ack0")):
        base = request(op, name.encode(), b"octet", [(b"blksize", b"1468")])
        no_options = len(request(op, name.encode()))
        for n in range(len(base)):
            if n < 2:
                want = {"none"}
            elif n == no_options:
                want = {whole_reply}
            else:
                want = {"err4"}
            cases.append(("%s cut to %d bytes" % ("RRQ" if op == 1 else "WRQ", n), base[:n], want))
    # DATA, ACK, ERROR and OACK belong to a transfer's port: on the listen port, whole or cut,
    # they are dropped. Above all an ERROR is never answered (CVE-2024-2169, Loop DoS).
    for what, pkt in (("DATA", data(1, b"x" * 512)), ("ACK", ack(1)), ("ERROR", error(0, b"boom")),
                      ("OACK", u16(6) + b"blksize\0" + b"512\0")):
        for n in sorted({2, 3, 4, 5, len(pkt)}):
            if n <= len(pkt):
                cases.append(("%s to the listen port, %d bytes" % (what, n), pkt[:n], {"none"}))
    cases.append(("DATA of 600 bytes to the listen port", data(1, b"y" * 596), {"none"}))
    cases.append(("ERROR without a NUL to the listen port", u16(5) + u16(4) + b"x" * 40, {"none"}))
    for op in (0, 7, 8, 9, 255, 256, 257, 0x8001, 0xFFFF):
        cases.append(("opcode %d" % op, u16(op) + FILE.encode() + b"\0octet\0", {"none"}))
    for b in (b"\0", b"\1", b"\5", b"\xff"):
        cases.append(("1 byte %r" % b, b, {"none"}))
    cases.append(("empty datagram", b"", {"none"}))
    # Missing NULs, empty or unknown fields.
    for what, d in (("filename without NUL", b"\0\1sip.ld"),
                    ("mode without NUL", b"\0\1sip.ld\0octet"),
                    ("option name without NUL", b"\0\1sip.ld\0octet\0blksize"),
                    ("option value without NUL", b"\0\1sip.ld\0octet\0blksize\0" + b"512"),
                    ("empty filename", b"\0\1\0octet\0"),
                    ("no mode", b"\0\1sip.ld\0\0"),
                    ("mode binary", rrq(FILE, mode=b"binary")),
                    ("mode mail (obsolete)", rrq(FILE, mode=b"mail")),
                    ("mode with a space", rrq(FILE, mode=b"octet ")),
                    ("bytes after the padding", rrq(FILE) + b"\0\0junk\0"),
                    ("WRQ without NULs", b"\0\2" + UPLOAD.encode())):
        cases.append((what, d, {"err4"}))
    cases.append(("mode OCTET (any case, RFC 1350)", rrq(FILE, mode=b"OCTET"), {"data1"}))
    cases.append(("mode NetAscii", rrq(SMALL, mode=b"NetAscii"), {"data1"}))
    cases.append(("NUL padding after the request", rrq(FILE) + b"\0" * 20, {"data1"}))
    # Limits at N-1, N and N+1 (relay/tftp/limits.h).
    for n, want in ((502, "err1"), (503, "err1"), (504, "err4")):
        cases.append(("filename of %d bytes" % n, rrq("a" * n), {want}))
    whole = rrq(FILE)
    for n, want in ((1023, "data1"), (1024, "data1"), (1025, "err4")):
        cases.append(("request of %d bytes (NUL padded)" % n, whole + b"\0" * (n - len(whole)),
                      {want}))
    cases.append(("a 65,000-byte datagram", rrq(FILE) + b"z" * (65000 - len(whole)), {"err4"}))
    for n, want in ((16, "data1"), (17, "err4")):
        opts = [(b"x%d" % i, b"v") for i in range(n)]
        cases.append(("%d unknown options" % n, rrq(FILE, opts), {want}))
    for n, want in ((63, "data1"), (64, "data1"), (65, "err4")):
        cases.append(("option name of %d bytes" % n, rrq(FILE, [(b"n" * n, b"1")]), {want}))
        cases.append(("option value of %d bytes" % n, rrq(FILE, [(b"unknown", b"7" * n)]), {want}))
    # Names outside the tree or that cannot be files: refused or missing, never served.
    for name in (b"../../../../etc/passwd", b"/etc/passwd", b"..\\..\\etc\\passwd",
                 b"%2e%2e/%2e%2e/etc/passwd", b"fw/../../etc/passwd", b"sip\x01.ld",
                 b"\xff\xfe\xfd", b"./../sip.ld", b"\xc0\xae\xc0\xae/etc/passwd"):
        cases.append(("filename %r" % name, request(1, name), {"err1", "err2"}))
    cases.append(("WRQ of a name that is no phone upload", request(2, b"sip.ld"), {"err2"}))
    cases.append(("WRQ of a phone upload name outside the tree",
                  request(2, b"../0004f2aabbcc-app.log"), {"err2"}))
    run_cases(port, cases, "malformed")


def options(port, tree):
    size = os.path.getsize(os.path.join(tree, FILE))
    cases, oacks = [], {}

    def opt(what, opts, want, expect_oack=None, name=FILE, op=1):
        cases.append((what, request(op, name.encode(), b"octet", opts), want))
        if expect_oack is not None:
            oacks[what] = expect_oack

    for v, want, echo in ((b"0", "err8", None), (b"7", "err8", None), (b"8", "oack", "8"),
                          (b"512", "oack", "512"), (b"1468", "oack", "1468"),
                          (b"1469", "oack", "1468"), (b"65464", "oack", "1468"),
                          (b"65465", "err8", None), (b"99999999999999999999999", "err8", None),
                          (b"abc", "err8", None), (b"", "err8", None), (b"-1", "err8", None),
                          (b"+512", "err8", None), (b" 512", "err8", None),
                          (b"512 ", "err8", None), (b"0x200", "err8", None),
                          (b"1e3", "err8", None)):
        opt("blksize %r" % v, [(b"blksize", v)], {want}, {"blksize": echo} if echo else None)
    for v, want, echo in ((b"0", "err8", None), (b"1", "oack", "1"), (b"64", "oack", "64"),
                          (b"65", "oack", "64"), (b"65535", "oack", "64"),
                          (b"65536", "err8", None), (b"-1", "err8", None), (b"x", "err8", None)):
        opt("windowsize %r" % v, [(b"windowsize", v)], {want},
            {"windowsize": echo} if echo else None)
    for v, want in ((b"-1", "err8"), (b"0", "oack"), (b"18446744073709551615", "oack"),
                    (b"18446744073709551616", "err8"), (b"abc", "err8"), (b"", "err8")):
        opt("tsize %r" % v, [(b"tsize", v)], {want}, {"tsize": str(size)} if want == "oack" else None)
    for v, want in ((b"0", "err8"), (b"1", "oack"), (b"255", "oack"), (b"256", "err8"),
                    (b"-5", "err8"), (b"1.5", "err8")):
        opt("timeout %r" % v, [(b"timeout", v)], {want},
            {"timeout": v.decode()} if want == "oack" else None)
    # The same option twice is refused whatever its spelling (RFC 2347: names are
    # case-insensitive, and which value would count is a guess).
    for what, opts in (("blksize twice", [(b"blksize", b"512"), (b"blksize", b"512")]),
                       ("blksize and BLKSIZE", [(b"blksize", b"512"), (b"BLKSIZE", b"1024")]),
                       ("tsize twice", [(b"tsize", b"0"), (b"tsize", b"0")]),
                       ("windowsize twice", [(b"windowsize", b"4"), (b"WindowSize", b"8")]),
                       ("timeout twice", [(b"timeout", b"1"), (b"timeout", b"2")])):
        opt(what, opts, {"err4", "err8"})
    # Unknown options are left out of the OACK (RFC 2347), never refused.
    for what, opts in (("unknown option", [(b"foo", b"bar")]),
                       ("multicast (RFC 2090, not offered)", [(b"multicast", b"")]),
                       ("tftp-hpa's utimeout", [(b"utimeout", b"1000")]),
                       ("tftp-hpa's rollover", [(b"rollover", b"0")])):
        opt(what, opts, {"data1"})
    opt("an unknown option beside blksize", [(b"foo", b"1"), (b"BlkSize", b"1468")], {"oack"},
        {"blksize": "1468"})
    # A WRQ's tsize past uploads.max_bytes (1 MiB here) is refused before any data: error 3.
    opt("WRQ tsize 1048576", [(b"tsize", b"1048576")], {"oack"}, {"tsize": "1048576"},
        name=UPLOAD, op=2)
    opt("WRQ tsize 1048577", [(b"tsize", b"1048577")], {"err3"}, name=UPLOAD, op=2)
    got = run_cases(port, cases, "options")
    for what, want in oacks.items():
        answer = got[what][0]
        have = oack_options(answer) if describe(answer) == "oack" else {}
        check(have == want, "options: the OACK for %s" % what, "OACK %r, want %r" % (have, want))
    # The extremes that were accepted carry a whole file.
    for what, name, opts in (("blksize 8", SMALL, [(b"blksize", b"8")]),
                             ("blksize 65464 and windowsize 65535", FILE,
                              [(b"blksize", b"65464"), (b"windowsize", b"65535"),
                               (b"tsize", b"0")]),
                             ("timeout 255", FILE, [(b"timeout", b"255")])):
        want = open(os.path.join(tree, name), "rb").read()
        have, why = download(port, name, opts)
        check(have == want, "options: a whole file with %s" % what, why)


def download(port, name, opts=(), src=HOST, timeout=3.0):
    """A well-behaved client: (bytes, "") or (bytes so far, why it stopped)."""
    s = udp(src)
    s.settimeout(timeout)
    s.sendto(rrq(name, opts), (HOST, port))
    blksize, window, got, expect, tid = 512, 1, bytearray(), 1, None
    try:
        while True:
            d, addr = s.recvfrom(70000)
            word = describe(d)
            if tid is None:
                tid = addr[1]
            if addr[1] != tid:
                return bytes(got), "a datagram from another port"
            if word == "oack" and expect == 1:
                o = oack_options(d)
                blksize = int(o.get("blksize", 512))
                window = int(o.get("windowsize", 1))
                s.sendto(ack(0), (HOST, tid))
                continue
            if not word.startswith("data"):
                return bytes(got), "answered " + word
            block = struct.unpack("!H", d[2:4])[0]
            if block != expect % 65536:
                continue  # a resent window: wait for the one we need
            got += d[4:]
            last = len(d) - 4 < blksize
            if last or expect % window == 0:
                s.sendto(ack(block), (HOST, tid))
            if last:
                return bytes(got), ""
            expect += 1
    except socket.timeout:
        return bytes(got), "timed out after %d bytes" % len(got)
    finally:
        s.close()


def drain(socks, answers, quiet):
    """Reads what waits on `socks` until none has anything for `quiet` seconds; counts the
    answers by kind into `answers`."""
    poller = select.poll()
    by_fd = {s.fileno(): s for s in socks}
    for fd in by_fd:
        poller.register(fd, select.POLLIN)
    while True:
        events = poller.poll(quiet * 1000)
        if not events:
            return
        for fd, _ in events:
            w = describe(by_fd[fd].recvfrom(70000)[0])
            answers[w] = answers.get(w, 0) + 1


def spoofed(port, tree):
    """A lock-step download while strangers (another port of the same address, and another
    address) throw every kind of datagram at its transfer port."""
    want = open(os.path.join(tree, FILE), "rb").read()
    real = udp()
    real.settimeout(3)
    strangers = [udp(HOST), udp("127.0.0.3")]
    real.sendto(rrq(FILE), (HOST, port))
    got, expect, tid, trouble = bytearray(), 1, None, ""
    sent, errors_sent, answers = 0, 0, {}
    while True:
        try:
            d, addr = real.recvfrom(70000)
        except socket.timeout:
            trouble = "timed out at block %d" % expect
            break
        if tid is None:
            tid = addr[1]
        word = describe(d)
        if addr[1] != tid or word != "data%d" % (expect % 65536):
            trouble = "the real client got %s from port %d at block %d" % (word, addr[1], expect)
            break
        got += d[4:]
        if expect % 20 == 0:  # before the real ACK: the strangers' turn
            for s in strangers:
                for pkt in (ack(expect), ack(expect + 1), ack(0), ack(65535), ack(expect - 1),
                            data(expect, b"x" * 512), b"\0", u16(9) + b"xx",
                            rrq(FILE), u16(6) + b"blksize\0" + b"8\0"):
                    s.sendto(pkt, (HOST, tid))
                    sent += 1
                for pkt in (error(0, b"stop"), error(5, b"unknown"), error(4, b"")):
                    s.sendto(pkt, (HOST, tid))  # never answered: two servers would loop
                    errors_sent += 1
            drain(strangers, answers, 0.05)  # before their receive buffers fill up
        real.sendto(ack(expect), (HOST, tid))
        if len(d) - 4 < 512:
            break
        expect += 1
    real.close()
    check(not trouble and bytes(got) == want, "spoofed: the real transfer is undisturbed",
          trouble or "%d bytes, not the file" % len(got))
    drain(strangers, answers, 0.5)
    for s in strangers:
        s.close()
    check(answers == {"err5": sent}, "spoofed: error 5 for each stranger's datagram, ERRORs unanswered",
          "strangers heard %r for %d datagrams and %d ERRORs" % (answers, sent, errors_sent))
    say("count", "spoofed", sent + errors_sent)


def vanishing(port, tree):
    """Peers that stop answering: the relay resends a bounded number of times (1 + 5 retries,
    1 s apart), gives up with an ERROR and frees the transfer; one that asked for the longest
    timeout (255 s) is given up after the relay's silence ceiling (20 s), not after 6 x 255 s.
    Each runs in its own thread; about 21 s."""
    results = {}

    def silent_after_first(what, pkt, first_word, src, copies_wanted=6, within=(4.5, 8)):
        s = udp(src)
        s.settimeout(30)
        s.sendto(pkt, (HOST, port))
        copies, t0, end, word = 0, None, None, None
        try:
            while True:
                d = s.recvfrom(70000)[0]
                word = describe(d)
                if word == first_word:
                    copies += 1
                    t0 = t0 or time.time()
                    continue
                end = time.time()
                break
        except socket.timeout:
            pass
        # Nothing more after the ERROR.
        s.settimeout(1.5)
        try:
            late = describe(s.recvfrom(70000)[0])
        except socket.timeout:
            late = None
        s.close()
        took = (end - t0) if (end and t0) else -1
        results[what] = (copies == copies_wanted and word == "err0" and
                         within[0] <= took <= within[1] and late is None,
                         "%d copies of %s, then %s after %.1f s, then %s" % (copies, first_word,
                                                                            word, took, late))

    def upload_then_silence():
        s = udp("127.0.0.4")
        s.settimeout(9)
        s.sendto(request(2, UPLOAD.encode()), (HOST, port))
        d, addr = s.recvfrom(100)
        tid = addr[1]
        for b in (1, 2, 3):  # three whole blocks, then the phone is gone
            s.sendto(data(b, b"log line\n" * 56 + b"xxxxxxxx"), (HOST, tid))
            s.recvfrom(100)
        copies, word = 0, None
        t0 = time.time()
        try:
            while True:
                word = describe(s.recvfrom(100)[0])
                if word != "ack3":
                    break
                copies += 1
        except socket.timeout:
            pass
        took = time.time() - t0
        s.close()
        results["WRQ, silent after three blocks"] = (
            copies == 5 and word == "err0" and 4.5 <= took <= 8,
            "ACK 3 repeated %d times, then %s after %.1f s" % (copies, word, took))

    def window_then_gone():
        s = udp("127.0.0.5")
        s.settimeout(3)
        s.sendto(rrq(FILE, [(b"blksize", b"1468"), (b"windowsize", b"8")]), (HOST, port))
        d, addr = s.recvfrom(2000)
        s.sendto(ack(0), (HOST, addr[1]))
        n = 0
        while n < 8:
            s.recvfrom(2000)
            n += 1
        s.sendto(ack(4), (HOST, addr[1]))  # half the window, then the socket is closed
        s.close()
        results["windowsize 8, gone mid-window"] = (True, "")

    threads = [
        threading.Thread(target=silent_after_first,
                         args=("RRQ, never an ACK", rrq(FILE), "data1", "127.0.0.6")),
        threading.Thread(target=silent_after_first,
                         args=("RRQ with options, OACK never acknowledged",
                               rrq(FILE, [(b"blksize", b"1468"), (b"timeout", b"1")]), "oack",
                               "127.0.0.7")),
        threading.Thread(target=silent_after_first,
                         args=("RRQ with timeout 255, OACK never acknowledged",
                               rrq(FILE, [(b"timeout", b"255")]), "oack", "127.0.0.8", 1,
                               (18, 25))),
        threading.Thread(target=upload_then_silence),
        threading.Thread(target=window_then_gone),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for what, (ok, why) in sorted(results.items()):
        check(ok, "vanishing: " + what, why)
    say("count", "vanishing", len(threads))


def flood(port, tree):
    """Thousands of RRQs from many source ports and addresses at once, never acknowledged."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want_fds = 8 * 250 + 64
    if soft < want_fds:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, want_fds), hard))
    per_address = max(16, min(250, (resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 64) // 8))
    socks = [udp("127.0.1.%d" % a) for a in range(1, 9) for _ in range(per_address)]
    names = [rrq(FILE), rrq(SMALL), rrq("0004f2aabbcc.cfg")]  # two files and a missing one
    t0 = time.time()
    sent = 0
    for k in range(2):
        for i, s in enumerate(socks):
            s.sendto(names[(i + k) % len(names)], (HOST, port))
            sent += 1
            # In bursts of 50: sent all at once, most would die in the listen socket's receive
            # buffer (about 300 datagrams) and the relay's own limits would never be reached.
            if sent % 50 == 0:
                time.sleep(0.004)
    took = time.time() - t0
    say("sent", sent)  # the script starts its real client now, against a relay at its limits
    # Read what comes for a moment (first blocks, error 1s), then vanish: no ACK ever.
    answers = 0
    by_fd = {s.fileno(): s for s in socks}
    poller = select.poll()
    for fd in by_fd:
        poller.register(fd, select.POLLIN)
    deadline = time.time() + 1.0
    while time.time() < deadline:
        for fd, _ in poller.poll(100):
            by_fd[fd].recvfrom(70000)
            answers += 1
    for s in socks:
        s.close()
    check(took < 10, "flood: %d RRQs from %d ports sent in %.2f s" % (sent, len(socks), took))
    say("info", "flood: %d RRQs from %d ports of 8 addresses in %.2f s; %d answers read"
        % (sent, len(socks), took, answers))
    say("count", "flood", sent)


def loop(port, tree):
    """The Loop DoS itself (CVE-2024-2169): datagrams whose source is the relay's own listen port,
    so that whatever it answers comes back to it. Needs a raw socket (root or CAP_NET_RAW); without
    one the malformed category still shows the cause, an ERROR answered on the listen port."""
    try:
        raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    except PermissionError:
        say("skip", "no raw socket here: the spoofed loop is not tried")
        return
    sent = 0
    for payload in (error(0, b"x"), error(4, b""), b"\0\1sip.ld", ack(1)):
        udp_header = struct.pack("!HHHH", port, port, 8 + len(payload), 0)  # no checksum: allowed
        ip_header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + 8 + len(payload), 0, 0, 64, 17, 0,
                                socket.inet_aton(HOST), socket.inet_aton(HOST))
        raw.sendto(ip_header + udp_header + payload, (HOST, 0))
        sent += 1
    raw.close()
    say("count", "loop", sent)


def main():
    category, port, tree = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    {"malformed": malformed, "options": options, "spoofed": spoofed, "vanishing": vanishing,
     "flood": flood, "loop": loop}[category](port, tree)


if __name__ == "__main__":
    main()
