#!/usr/bin/env python3
"""Hostile FTP clients for hostile_ftp_test.sh: control lines and connections a real client never
makes.

    hostile_ftp.py CATEGORY

CATEGORY is one of overlong, prelogin, bounce, passive, bruteforce, tls, implicit. The relay is
described by the environment: FTP_PORT (plain, AUTH TLS offered), FTPS_PORT (implicit TLS),
PASSIVE_LO and PASSIVE_HI (its passive range), TREE (the folder its files came from), and for
`passive` RELEASE (a file whose appearance ends the hoarding). Every address is on 127.0.0.0/8:
the relay tells them apart as it would tell phones apart. Prints "ok WHAT" or "fail WHAT: DETAIL"
per check, "count CATEGORY N" with the number of inputs tried, and "info ..." lines. Standard
library only.
"""
import os
import socket
import ssl
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hostile_common import check, say  # noqa: E402

HOST = "127.0.0.1"
USER, PASSWORD = "PlcmSpIp", "PlcmSpIp"
FILE = "sip.ld"



def env_int(name):
    return int(os.environ[name])


def tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class Control:
    """One control connection from `src`, reading replies the way clients do."""

    def __init__(self, port=None, src=HOST, timeout=10.0):
        self.s = socket.socket()
        self.s.bind((src, 0))
        self.s.settimeout(timeout)
        self.s.connect((HOST, port or env_int("FTP_PORT")))
        self.buf = b""

    def reply(self):
        """The last line of the next reply; "" when the connection closed or went quiet."""
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line, self.buf = self.buf[:i], self.buf[i + 2:]
                if len(line) >= 4 and line[:3].isdigit() and line[3:4] == b" ":
                    return line.decode("latin-1")
                continue
            try:
                d = self.s.recv(65536)
            except (socket.timeout, OSError):
                return ""
            if not d:
                return ""
            self.buf += d

    def send(self, raw):
        try:
            self.s.sendall(raw)
        except OSError:
            pass

    def cmd(self, line):
        self.send(line.encode("latin-1") + b"\r\n")
        return self.reply()

    def login(self):
        self.reply()
        self.cmd("USER " + USER)
        return self.cmd("PASS " + PASSWORD)

    def starttls(self):
        self.s = tls_context().wrap_socket(self.s)

    def closed_within(self, seconds):
        """True when the relay closes the connection within `seconds` (whatever it says first)."""
        self.s.settimeout(seconds)
        deadline = time.time() + seconds
        try:
            while time.time() < deadline:
                if not self.s.recv(65536):
                    return True
        except (ConnectionResetError, ssl.SSLError):
            return True
        except (socket.timeout, OSError):
            return False
        return False

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def code(reply):
    return reply[:3] if reply else "---"


def expect_codes(category, cases, run):
    """cases: [(what, {accepted codes})]; run(what) -> reply."""
    for what, accepted in cases:
        r = run(what)
        check(code(r) in accepted, "%s: %s" % (category, what),
              "answered [%s], want %s" % (r, "/".join(sorted(accepted))))


def data_port(reply):
    """The port of a 227 or 229 reply, or 0."""
    if reply.startswith("229"):
        return int(reply.split("|||")[1].split("|")[0])
    if reply.startswith("227"):
        nums = reply[reply.index("(") + 1:reply.index(")")].split(",")
        return int(nums[4]) * 256 + int(nums[5])
    return 0


# ---- categories ----

def overlong():
    tried = 0
    # Command lines at kMaxLineBytes (2048) - 1, N and N + 1, before and after login.
    for logged_in in (False, True):
        for n, want in ((2047, "200"), (2048, "200"), (2049, "500")):
            c = Control()
            c.login() if logged_in else c.reply()
            r = c.cmd("NOOP " + "x" * (n - 5))
            tried += 1
            ok = code(r) == want and (want == "200" or c.closed_within(2))
            check(ok, "overlong: a %d-byte line %s login" % (n, "after" if logged_in else "before"),
                  "answered [%s]" % r[:60])
            c.close()
    # The raw line before the Telnet layer: IAC IAC is one 0xFF byte (RFC 854), so a line of 2048
    # may take 4091 bytes; one more 0xFF and the line is too long.
    for n, want in ((2043, "200"), (2044, "500")):
        c = Control()
        c.reply()
        c.send(b"NOOP " + b"\xff\xff" * n + b"\r\n")
        r = c.reply()
        tried += 1
        check(code(r) == want, "overlong: NOOP and %d doubled 0xFF bytes" % n, "answered [%s]" % r)
        c.close()
    # No line end at all: a megabyte of one line, and 64 KiB of Telnet NOPs that make no line.
    for what, blob in (("1 MiB without a line end", b"NOOP " + b"a" * (1 << 20)),
                       ("64 KiB of IAC NOP", b"\xff\xf1" * 32768),
                       ("1 MiB of CR without LF", b"\r" * (1 << 20))):
        c = Control()
        c.reply()
        t0 = time.time()
        c.send(blob)
        closed = c.closed_within(3)
        tried += 1
        check(closed, "overlong: %s is cut off" % what, "still open after %.1f s" % (time.time() - t0))
        c.close()
    # Odd bytes inside lines: answered, and the session goes on.
    for what, raw in (("a NUL", b"NOOP a\0b\r\n"), ("bytes past 0x7f", b"NOOP \xc3\x28\xff\xfe\r\n"),
                      ("a bare LF", b"NOOP\n"), ("an empty line", b"\r\n"),
                      ("only spaces", b"     \r\n"), ("a lower-case verb", b"noop\r\n"),
                      ("a verb of 100 letters", b"N" * 100 + b"\r\n")):
        c = Control()
        c.reply()
        c.send(raw)
        first = c.reply() if raw != b"NOOP\n" else "skip"
        r = c.cmd("NOOP")
        tried += 1
        check(code(r) == "200" and first != "", "overlong: a line with %s" % what,
              "answered [%s], then [%s]" % (first, r))
        c.close()
    # 10,000 commands in one write, replies read as they come: every one answered, in order.
    c = Control()
    c.reply()
    reader_got = []

    def read_all():
        for _ in range(10000):
            reader_got.append(code(c.reply()))

    t = threading.Thread(target=read_all)
    t.start()
    c.send(b"NOOP\r\n" * 10000)
    t.join()
    tried += 10000
    check(reader_got.count("200") == 10000, "overlong: 10,000 pipelined commands all answered",
          "%d of 10000" % reader_got.count("200"))
    c.close()
    # A client that pipelines FEAT (200 bytes of reply for 6) and never reads: the relay stops
    # reading it instead of piling up replies (relay/ftp/limits.h kMaxPendingReplyBytes).
    c = Control()
    c.reply()
    c.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    c.s.setblocking(False)
    chunk = b"FEAT\r\n" * 10000
    sent, budget, last = 0, 16 << 20, time.time()
    while sent < budget and time.time() - last < 1.0:
        try:
            sent += c.s.send(chunk)
            last = time.time()
        except BlockingIOError:
            time.sleep(0.005)
    tried += 1
    check(sent < budget, "overlong: a client that reads no replies is no longer read",
          "the relay took %d bytes of FEAT" % sent)
    say("info", "overlong: the relay took %d KiB of pipelined FEAT from a client that read nothing"
        % (sent // 1024))
    c.close()
    say("count", "overlong", tried)


PRELOGIN = ["PASV", "EPSV", "EPSV ALL", "PORT 127,0,0,1,200,1", "EPRT |1|127.0.0.1|51201|",
            "LIST", "NLST", "MLSD", "MLST sip.ld", "STOR 0004f2aabbcc-app.log",
            "APPE 0004f2aabbcc-app.log", "CWD /", "CDUP", "PWD", "XPWD", "XCWD /", "SIZE sip.ld",
            "MDTM sip.ld", "REST 100", "TYPE I", "MODE S", "STRU F", "DELE sip.ld",
            "RNFR sip.ld", "RNTO x", "MKD x", "RMD x", "STAT", "HELP", "ALLO 100", "ACCT x",
            "REIN", "SMNT /", "STOU", "ABOR"]


def prelogin():
    # RETR and SITE before login are in ftp_test.sh; these are the rest of RFC 959 and its
    # extensions. Only what it takes to log in (and to protect the login) is answered.
    c = Control()
    c.reply()
    cases = [(v, {"530"}) for v in PRELOGIN if v != "ABOR"]
    cases.append(("ABOR", {"225", "530"}))  # nothing to abort either way
    cases.append(("PASS before USER", {"503"}))
    expect_codes("prelogin", cases,
                 lambda what: c.cmd("PASS x" if what == "PASS before USER" else what))
    alive = c.cmd("NOOP")
    check(code(alive) == "200", "prelogin: the session is still usable", alive)
    c.close()
    # That no passive port was opened meanwhile the script checks among the relay's sockets.
    say("count", "prelogin", len(cases))


def bounce():
    # ftp_test.sh has PORT and EPRT to 10.9.8.7; these are the other shapes of a bounce and of a
    # theft, and the addresses around them.
    third = socket.socket()  # a third party on another address, listening
    third.bind(("127.0.0.2", 0))
    third.listen(8)
    third.settimeout(0.5)
    tp = third.getsockname()[1]
    c = Control()
    c.login()
    cases = [
        ("PORT 127,0,0,2,%d,%d (another address)" % (tp >> 8, tp & 255), {"504"}),
        ("EPRT |1|127.0.0.2|%d|" % tp, {"504"}),
        ("EPRT !1!127.0.0.2!%d! (another delimiter)" % tp, {"504", "501"}),
        ("EPRT |2|::1|%d|" % tp, {"504", "522"}),
        ("EPRT |2|::ffff:10.9.8.7|1025|", {"504", "522"}),
        ("EPRT |2|::ffff:127.0.0.2|%d|" % tp, {"504", "522"}),
        ("PORT 0,0,0,0,200,1", {"504"}),
        ("PORT 255,255,255,255,200,1", {"504"}),
        ("PORT 224,0,0,1,200,1", {"504"}),
        ("PORT 127,0,0,1,0,21 (a privileged port of the peer)", {"504"}),
        ("EPRT |1|127.0.0.1|22|", {"504"}),
        ("PORT 127,0,0,1,3,255 (port 1023)", {"504"}),
        ("PORT 127,0,0,1,256,1", {"501"}),
        ("PORT 127,0,0,1,1", {"501"}),
        ("PORT 127,0,0,1,200,1,7", {"501"}),
        ("PORT 127.0.0.1,200,1", {"501"}),
        ("PORT -1,0,0,1,2,3", {"501"}),
        ("PORT", {"501"}),
        ("EPRT |3|127.0.0.1|2000|", {"522"}),
        ("EPRT |1|127.0.0.1|0|", {"501", "504"}),
        ("EPRT |1|127.0.0.1|70000|", {"501"}),
        ("EPRT |1|localhost|2000|", {"501"}),
        ("EPRT", {"501"}),
    ]
    expect_codes("bounce", cases, lambda what: c.cmd(what.split(" (")[0]))
    # After all that no data connection is set up, and the third party heard nothing.
    r = c.cmd("RETR " + FILE)
    check(code(r) == "425", "bounce: RETR after refused PORTs has no data connection", r)
    try:
        third.accept()
        check(False, "bounce: the third party was never connected to", "it was")
    except socket.timeout:
        check(True, "bounce: the third party was never connected to")
    third.close()
    # PORT to the peer's own unprivileged port is fine (the relay connects when a transfer starts).
    r = c.cmd("PORT 127,0,0,1,4,0")
    check(code(r) == "200", "bounce: PORT to the peer's port 1024 is accepted", r)
    c.close()
    # Theft: another address races to a passive port; it gets nothing and the real client the file.
    want = open(os.path.join(os.environ["TREE"], FILE), "rb").read()
    c = Control()
    c.login()
    port = data_port(c.cmd("EPSV"))
    thief = socket.socket()
    thief.bind(("127.0.0.2", 0))
    thief.settimeout(2)
    stolen = b""
    if thief.connect_ex((HOST, port)) == 0:
        try:
            while True:
                d = thief.recv(65536)
                if not d:
                    break
                stolen += d
        except (socket.timeout, OSError):
            pass
    thief.close()
    real = socket.create_connection((HOST, port), timeout=5)
    opening = c.cmd("RETR " + FILE)
    got = b""
    while True:
        d = real.recv(65536)
        if not d:
            break
        got += d
    real.close()
    done = c.reply()
    check(stolen == b"" and got == want and code(opening) == "150" and code(done) == "226",
          "bounce: a thief at another address gets nothing from a passive port",
          "thief %d bytes, client %d bytes, [%s] [%s]" % (len(stolen), len(got), opening, done))
    c.close()
    say("count", "bounce", len(cases) + 2)


def passive():
    """Hoards the passive range: 60 sessions at one address, PASV/EPSV five times each, never
    connecting. Holds them until RELEASE appears (the script meanwhile serves fresh clients)."""
    sessions, answers = [], {}
    for i in range(60):
        c = Control()
        c.login()
        for k in range(5):
            r = c.cmd("EPSV" if (i + k) % 2 else "PASV")
            answers[code(r)] = answers.get(code(r), 0) + 1
        sessions.append(c)
    lo, hi = env_int("PASSIVE_LO"), env_int("PASSIVE_HI")
    check(answers.get("425", 0) > 0, "passive: the range of %d ports ran out" % (hi - lo + 1),
          "answers %r" % answers)
    say("info", "passive: 300 PASV/EPSV from one address answered %r" % answers)
    say("count", "passive", 300)
    say("held")
    deadline = time.time() + 60
    while not os.path.exists(os.environ["RELEASE"]) and time.time() < deadline:
        time.sleep(0.05)
    # The hoarder is still served: each session can still talk, and a new PASV of its own gets a
    # port again once the fresh clients are done.
    r = sessions[-1].cmd("EPSV")
    check(code(r) == "229", "passive: the hoarder gets a port again once others are done", r)
    for c in sessions:
        c.close()


def bruteforce():
    """Failed logins in parallel: the backoff is per address, not per session."""
    results, lock = {}, threading.Lock()
    t0 = time.time()

    def attempt(key, src, password, delay=0.0, sent=None, after=None):
        time.sleep(delay)
        c = Control(src=src, timeout=30)
        c.reply()
        c.cmd("USER " + USER)
        if after is not None:  # another session's PASS first
            after.wait(10)
            time.sleep(0.1)
        start = time.time()
        c.send(("PASS " + password + "\r\n").encode())
        if sent is not None:
            sent.set()
        r = c.reply()
        with lock:
            results.setdefault(key, []).append((code(r), time.time() - start, time.time() - t0))
        c.close()

    threads = []
    # Four guesses at once from one address: answered one after another, 0.5 + 1 + 2 + 4 s.
    for i in range(4):
        threads.append(threading.Thread(target=attempt, args=("parallel", "127.0.0.7", "guess%d" % i)))
    # A right password from an address whose failed login is being held back waits for it: a
    # quick answer must not give a guess away.
    wrong_sent = threading.Event()
    threads.append(threading.Thread(target=attempt, args=("held", "127.0.0.9", "wrong"),
                                    kwargs={"sent": wrong_sent}))
    threads.append(threading.Thread(target=attempt, args=("held-right", "127.0.0.9", PASSWORD),
                                    kwargs={"after": wrong_sent}))
    # Other addresses are not slowed down by all this.
    threads.append(threading.Thread(target=attempt, args=("bystander", "127.0.0.8", PASSWORD, 0.3)))
    for a in range(1, 41):
        threads.append(threading.Thread(target=attempt,
                                        args=("spread", "127.0.2.%d" % a, "guess", 0.05)))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    par = sorted(results.get("parallel", []), key=lambda x: x[2])
    times = [round(x[2], 2) for x in par]
    floors = [0.45, 1.45, 3.45, 7.45]  # 0.5, +1, +2, +4 s, less a little for the clocks
    check(len(par) == 4 and all(c == "530" for c, _, _ in par) and
          all(t >= f for t, f in zip(times, floors)),
          "bruteforce: 4 parallel guesses from one address take the sum of their backoffs",
          "answers %r at %r s, want 530s at >= %r" % ([c for c, _, _ in par], times, floors))
    held = results.get("held-right", [("---", 0, 0)])[0]
    check(held[0] == "230" and held[1] >= 0.3,
          "bruteforce: a right password waits behind its address's failed login",
          "answered %s after %.2f s" % (held[0], held[1]))
    by = results.get("bystander", [("---", 99, 0)])[0]
    check(by[0] == "230" and by[1] < 1.0, "bruteforce: another address logs in at once",
          "answered %s after %.2f s" % (by[0], by[1]))
    spread = results.get("spread", [])
    slow = [round(w, 2) for c, w, _ in spread if c != "530" or w > 2.0]
    check(len(spread) == 40 and not slow,
          "bruteforce: 40 addresses with one failure each wait only their own first backoff",
          "%d answers, slow or wrong: %r" % (len(spread), slow))
    say("info", "bruteforce: 4 parallel guesses from one address answered at %r s" % times)
    say("count", "bruteforce", 4 + 2 + 1 + 40)


def tls():
    tried = 0
    want = open(os.path.join(os.environ["TREE"], FILE), "rb").read()
    # Before AUTH TLS: no other mechanism, and nothing that only makes sense under TLS.
    c = Control()
    c.reply()
    cases = [("AUTH GSSAPI", {"504"}), ("AUTH KERBEROS_V4", {"504"}), ("AUTH", {"504", "501"}),
             ("AUTH TLS-P", {"504"}), ("AUTH SSLv2", {"504"}), ("AUTH NONE", {"504"}),
             ("PBSZ 0", {"503"}), ("PROT P", {"503"}), ("PROT C", {"503"}),
             ("CCC", {"533", "534", "502", "503"})]
    expect_codes("tls", cases, c.cmd)
    tried += len(cases)
    # AUTH TLS, then the downgrades a man in the middle or a careless client would try.
    r = c.cmd("AUTH TLS")
    check(code(r) == "234", "tls: AUTH TLS", r)
    c.starttls()
    c.cmd("USER " + USER)
    c.cmd("PASS " + PASSWORD)
    prot = c.cmd("PROT P")  # before PBSZ (RFC 4217 wants PBSZ first)
    tried += 1
    cases = [("CCC", {"533", "534", "502"}), ("AUTH TLS", {"534", "503"}), ("AUTH SSL", {"534", "503"}),
             ("PROT S", {"536", "504"}), ("PROT E", {"536", "504"}), ("PROT X", {"504", "501"}),
             ("REIN", {"502", "500"})]
    expect_codes("tls", cases, c.cmd)
    tried += len(cases)
    r = c.cmd("NOOP")  # still TLS after CCC: this goes through the TLS layer
    check(code(r) == "200", "tls: the control connection is still protected after CCC", r)
    if code(prot) == "200":
        # PROT P was taken without PBSZ: then the data connection must really be protected. A
        # plaintext data connection gets no file bytes.
        port = data_port(c.cmd("EPSV"))
        d = socket.create_connection((HOST, port), timeout=2)
        opening = c.cmd("RETR " + FILE)
        got = b""
        try:
            while len(got) < 4096:
                b = d.recv(4096)
                if not b:
                    break
                got += b
        except socket.timeout:
            pass
        d.close()
        end = c.reply()
        check(want[:64] not in got, "tls: PROT P without PBSZ still protects the data",
              "plaintext got %d bytes [%s] [%s]" % (len(got), opening, end))
    else:
        check(code(prot) == "503", "tls: PROT P before PBSZ is refused", prot)
    c.close()
    # Command injection across the switch to TLS (the STARTTLS bug class): a line sent in the
    # clear behind AUTH TLS must never be executed.
    c = Control()
    c.reply()
    c.send(b"AUTH TLS\r\nUSER " + USER.encode() + b"\r\n")
    r = c.reply()
    injected = ""
    try:
        c.starttls()
        injected = c.cmd("NOOP")  # a 331 here would be the injected USER's
    except (ssl.SSLError, OSError):
        pass
    tried += 1
    check(code(r) == "234" and not injected.startswith("331"),
          "tls: a command pipelined behind AUTH TLS is not executed",
          "[%s] then [%s]" % (r, injected))
    c.close()
    # AUTH TLS and then plaintext instead of a handshake: closed, nothing answered in the clear.
    c = Control()
    c.reply()
    c.cmd("AUTH TLS")
    c.send(b"USER " + USER.encode() + b"\r\n")
    leftover = b""
    c.s.settimeout(2)
    try:
        while True:
            b = c.s.recv(4096)
            if not b:
                break
            leftover += b
    except (socket.timeout, OSError):
        pass
    tried += 1
    check(b"331" not in leftover, "tls: plaintext after AUTH TLS is not answered in the clear",
          repr(leftover[:60]))
    c.close()
    say("info", "tls: no setting requires TLS on the plain port, so USER before AUTH TLS is "
        "accepted by design (CONTRACT.md: AUTH TLS offered, not required)")
    say("count", "tls", tried)


def implicit():
    """Plaintext and garbage on the implicit-TLS port: each dropped promptly. (A handshake cut
    short is another matter: like a client that sends nothing, it is held until the login
    timeout, 30 s, and is not tried here.)"""
    port = env_int("FTPS_PORT")
    inputs = [b"USER " + USER.encode() + b"\r\n", b"GET / HTTP/1.0\r\n\r\n", b"AUTH TLS\r\n",
              # A whole SSLv2 CLIENT-HELLO: 7 cipher specs and a 16-byte challenge, 46 bytes.
              b"\x80\x2e\x01\x00\x02\x00\x15\x00\x00\x00\x10" + b"\x07\x00\xc0" * 7 + b"A" * 16,
              bytes(range(256)) * 4, b"\x16\x03\x01\x00\x05hello" + b"\0" * 64,
              b"\x15\x03\x03\x00\x02\x02\x28", b"\r\n" * 100, b"\0" * 4096]
    slowest, stuck = 0.0, 0
    tried = 0
    for round_ in range(20):
        socks = []
        for raw in inputs:
            s = socket.socket()
            s.settimeout(3)
            s.connect((HOST, port))
            s.sendall(raw)
            socks.append((s, time.time()))
        for s, t0 in socks:
            try:
                while s.recv(4096):
                    pass
                slowest = max(slowest, time.time() - t0)
            except ConnectionResetError:
                slowest = max(slowest, time.time() - t0)
            except socket.timeout:
                stuck += 1
            s.close()
            tried += 1
    check(stuck == 0 and slowest < 2.0, "implicit: plaintext and garbage dropped promptly",
          "%d of %d still open after 3 s; slowest close %.2f s" % (stuck, tried, slowest))
    say("info", "implicit: %d plaintext or garbage connections, the slowest closed in %.3f s"
        % (tried, slowest))
    say("count", "implicit", tried)


def main():
    {"overlong": overlong, "prelogin": prelogin, "bounce": bounce, "passive": passive,
     "bruteforce": bruteforce, "tls": tls, "implicit": implicit}[sys.argv[1]]()


if __name__ == "__main__":
    main()
