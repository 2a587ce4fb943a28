"""gunicorn for the CMS web (``gunicorn -c deploy/gunicorn.conf.py config.wsgi:application``).

Everything a deployment changes comes from the environment (the systemd unit's EnvironmentFile,
or scripts/topology.sh). Sync workers: the views are short and CPU-bound, the slow clients are
nginx's business (it buffers requests and responses), and a sync worker never shares a database
connection between requests in flight.
"""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", str(multiprocessing.cpu_count() * 2 + 1)))
worker_class = "sync"
# nginx keeps connections to us open (upstream keepalive); sync workers close after each request
keepalive = 2
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 20
# a worker recycled now and then bounds any slow leak
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "10000"))
max_requests_jitter = 1000
# X-Forwarded-* from nginx only (the same list Django trusts for the client certificate)
forwarded_allow_ips = os.environ.get("CMS_TRUSTED_PROXIES", "127.0.0.1")
accesslog = None  # nginx logs every request
errorlog = "-"
