"""Cold-start benchmark: time from process start until the function first asks a minimal
stand-in Lambda Runtime API for work (GET /2018-06-01/runtime/invocation/next). By then
main() has read its configuration and built every SDK client, exactly as at a real cold start.

usage: coldstart.py RUNS BINARY...   (environment: what the function needs, minus the API)
prints one line per binary: name, median ms, p90 ms, min ms, resident memory (MiB) when it
first asked for work
"""
import http.server
import os
import socket
import statistics
import subprocess
import sys
import threading
import time


def one_run(binary: str) -> float:
    asked = threading.Event()
    stamp = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's naming)
            if self.path.startswith("/2018-06-01/runtime/invocation/next") and not asked.is_set():
                stamp["t"] = time.perf_counter()
                stamp["rss"] = rss_mib(stamp.get("pid"))
                asked.set()
            self.send_response(500)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = dict(os.environ)
    env.update({
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{server.server_address[1]}",
        "AWS_LAMBDA_FUNCTION_NAME": os.path.basename(binary),
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
        "AWS_LAMBDA_LOG_GROUP_NAME": "bench",
        "RUST_LOG": "warn",
    })
    start = time.perf_counter()
    proc = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stamp["pid"] = proc.pid
    ok = asked.wait(10)
    proc.kill()
    _, err = proc.communicate()
    server.shutdown()
    if not ok:
        sys.exit(f"{binary} never asked for work; stderr:\n{err.decode(errors='replace')}")
    return (stamp["t"] - start) * 1000, stamp.get("rss")


def rss_mib(pid):
    """VmRSS of process `pid` in MiB (Linux), or None."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except (OSError, TypeError, ValueError):
        return None
    return None


def main():
    runs = int(sys.argv[1])
    for binary in sys.argv[2:]:
        one_run(binary)  # warm the page cache, as Lambda's own image cache would be
        runs_done = [one_run(binary) for _ in range(runs)]
        samples = sorted(t for t, _ in runs_done)
        rss = [r for _, r in runs_done if r is not None]
        p90 = samples[max(0, int(len(samples) * 0.9) - 1)]
        shown_rss = f"{statistics.median(rss):.1f}" if rss else "?"
        print(f"{os.path.basename(binary)}\t{statistics.median(samples):.1f}\t{p90:.1f}\t{samples[0]:.1f}\t{shown_rss}")


if __name__ == "__main__":
    main()
