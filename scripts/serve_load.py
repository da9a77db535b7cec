"""What both runs of scripts/bench-serve.sh share: requests sent to the server all at once,
their latencies, and what is checked of the branch afterwards."""
import http.client
import json
import subprocess
import sys
import threading
import time


def fire(addr, requests):
    """Sends every (token, path, body) at once, each on its own connection, released together
    by a barrier. Returns [(status, answer, seconds)] in the requests' order and the wall time
    from the release to the last answer."""
    host, port = addr.rsplit(":", 1)
    answers = [None] * len(requests)
    go = threading.Barrier(len(requests) + 1)

    def one(i):
        token, path, body = requests[i]
        c = http.client.HTTPConnection(host, int(port), timeout=120)
        go.wait()
        t = time.monotonic()
        c.request("POST", path, json.dumps(body), {"Authorization": "Bearer " + token,
                                                   "Content-Type": "application/json"})
        r = c.getresponse()
        answers[i] = (r.status, json.loads(r.read()), time.monotonic() - t)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(requests))]
    for t in threads:
        t.start()
    go.wait()
    t0 = time.monotonic()
    for t in threads:
        t.join()
    return answers, time.monotonic() - t0


def peak_rss_mib(pid):
    """The peak RSS of process `pid` (VmHWM), in MiB."""
    kib = next(l.split()[1] for l in open(f"/proc/{pid}/status") if l.startswith("VmHWM"))
    return int(kib) / 1024


def git(repo, *args):
    return subprocess.run(["git", "--git-dir", repo, *args], check=True, capture_output=True,
                          text=True).stdout


def branch(repo, base):
    """(new commits since `base`, merges among them, whether `git fsck` is clean)."""
    new = int(git(repo, "rev-list", "--count", f"{base}..main"))
    merges = int(git(repo, "rev-list", "--count", "--merges", f"{base}..main"))
    fsck = subprocess.run(["git", "--git-dir", repo, "fsck", "--no-progress", "--no-dangling"],
                          capture_output=True, text=True)
    return new, merges, fsck.returncode == 0 and not fsck.stdout.strip()


def latency(answers):
    """'p50 … ms, p99 … ms, max … ms' of the answers' latencies."""
    lat = sorted(a[2] for a in answers)
    pct = lambda p: lat[min(len(lat) - 1, int(round(p / 100 * len(lat) + 0.5)) - 1)] * 1000
    return f"p50 {pct(50):.0f} ms, p99 {pct(99):.0f} ms, max {lat[-1] * 1000:.0f} ms"


def report(checks, failures):
    """Prints the first failures and a PASS/FAIL line per check; exits 1 when one fails."""
    for f in failures[:10]:
        print("  " + f)
    for what, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {what}")
    sys.exit(0 if all(ok for _, ok in checks) else 1)
