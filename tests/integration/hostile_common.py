"""What the hostile clients (hostile_tftp.py, hostile_ftp.py) print for their shell scripts: one
line per check, "ok WHAT" or "fail WHAT: DETAIL", whole lines even from several threads.
Standard library only."""
import threading

_print_lock = threading.Lock()


def say(*words):
    with _print_lock:
        print(*words, flush=True)


def check(ok, what, detail=""):
    say("ok", what) if ok else say("fail", what + (": " + detail if detail else ""))
