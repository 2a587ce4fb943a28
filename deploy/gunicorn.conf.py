"""gunicorn for the CMS web (``gunicorn -c deploy/gunicorn.conf.py config.wsgi:application``).

Everything a deployment changes comes from the environment (the systemd unit's EnvironmentFile,
or scripts/topology.sh).

ONE worker process per gunicorn (a "web replica"), with threads: a personalization session's
program is a generator held in the memory of the process that runs it (cms.personalization.
session), so every round trip of a station must reach the same process. A host runs one replica
per core, each on its own port; nginx pins each station to one replica by its client certificate
(deploy/nginx/cms.conf, upstream cms_station) and spreads everything else over all of them. A
request that lands elsewhere anyway (a replica restarted) resumes from the session's checkpoint.
"""

import gc
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "1"))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# nginx keeps connections to us open (upstream keepalive)
keepalive = 75
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 20
# A worker recycled now and then bounds any slow leak, but each recycle costs a new worker's
# start (about 2 s of CPU: imports, then the card master and CA keys unlocked on first use) and
# the personalization sessions in flight resume from their checkpoints: rarely (ADR 0033).
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "100000"))
max_requests_jitter = max_requests // 10
# X-Forwarded-* from nginx only (the same list Django trusts for the client certificate)
forwarded_allow_ips = os.environ.get("CMS_TRUSTED_PROXIES", "127.0.0.1")
accesslog = None  # nginx logs every request
# no control socket: its default path is one per user, shared by every gunicorn of that user
control_socket_disable = True
errorlog = "-"
# the application's own log lines (stderr) go to the error log too, also when daemonized
capture_output = True


# --- The garbage collector. What the worker has imported by now (Django's apps, the URLconf and
# its views, DRF, cryptography, the card programs: a few hundred thousand objects) lives as long
# as the process, yet every full collection walks it all again (80-100 ms each, measured here)
# and the middle one often. gc.freeze() takes it out of the collector's reach for good (none of
# it is garbage; reference counting still frees what it lets go of), and a young generation of
# 10,000 allocations instead of 700 leaves most of a request's short-lived objects freed by
# reference counting before any pass looks at them. Cyclic garbage of the requests is still
# collected. GUNICORN_GC_FREEZE=0 keeps Python's defaults (to compare, bench/personalization.py
# --front; docs/adr/0035-station-exchange-front.md has the figures).
def _gc_freeze() -> None:
    from django.conf import settings

    if settings.configured:  # a Django application (the tests also serve bare WSGI ones)
        from django.urls import get_resolver

        get_resolver().url_patterns  # noqa: B018 - imports every view module now
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


# --- Benchmarks only: GUNICORN_CPU_LOG_DIR set, each worker appends one line per request to
# cpu-<pid>.tsv there: the path, the CPU time (ms) of the thread over the whole request (reading
# and parsing it, the application, writing the answer), of the application alone, and the worker
# main loop's CPU so far (accepting, keep-alive). A few clock reads a request; bench/
# personalization.py --front prints from them what gunicorn itself costs (ADR 0033).
# GUNICORN_PROFILE_FILE set too: the application's CPU is also profiled (cProfile on the thread
# clock) from the worker's 51st request on (past its warm-up), the statistics rewritten to that
# file (one worker) every 50 requests.
_cpu_log_dir = os.environ.get("GUNICORN_CPU_LOG_DIR", "")
_profile_file = os.environ.get("GUNICORN_PROFILE_FILE", "")
if _cpu_log_dir:
    import cProfile
    import threading
    import time

    def _cpu_log_install(worker):  # type: ignore[no-untyped-def]
        main_clock = time.pthread_getcpuclockid(threading.get_ident())
        path = os.path.join(_cpu_log_dir, f"cpu-{os.getpid()}.tsv")
        log = open(path, "a", buffering=1)  # noqa: SIM115 - open for the worker's lifetime
        lock = threading.Lock()
        current = threading.local()
        handle, application = worker.handle, worker.wsgi
        profiler = cProfile.Profile(time.thread_time) if _profile_file else None
        profiled = [0]

        def timed_application(environ, start_response):  # type: ignore[no-untyped-def]
            started = time.thread_time()
            profiled[0] += 1
            profiling = profiler is not None and profiled[0] > 50
            if profiler is not None and profiling:
                lock.acquire()  # one thread profiled at a time
                profiler.enable()
            try:
                return application(environ, start_response)
            finally:
                current.application = time.thread_time() - started
                current.path = environ.get("PATH_INFO", "")
                if profiler is not None and profiling:
                    profiler.disable()
                    if profiled[0] % 50 == 0:
                        profiler.dump_stats(_profile_file)
                    lock.release()

        def timed_handle(conn):  # type: ignore[no-untyped-def]
            current.application, current.path = 0.0, ""
            started = time.thread_time()
            try:
                return handle(conn)
            finally:
                spent = time.thread_time() - started
                main = time.clock_gettime(main_clock)
                if current.path:  # not a keep-alive connection closed without a request
                    line = f"{current.path}\t{spent * 1e3:.3f}\t{current.application * 1e3:.3f}"
                    with lock:
                        log.write(f"{line}\t{main * 1e3:.3f}\n")

        worker.handle, worker.wsgi = timed_handle, timed_application


def post_worker_init(worker):  # type: ignore[no-untyped-def]
    if os.environ.get("GUNICORN_GC_FREEZE", "1") != "0":
        _gc_freeze()
    if _cpu_log_dir:
        _cpu_log_install(worker)  # type: ignore[no-untyped-call]
