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

import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "1"))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# nginx keeps connections to us open (upstream keepalive)
keepalive = 75
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 20
# a worker recycled now and then bounds any slow leak
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "10000"))
max_requests_jitter = 1000
# X-Forwarded-* from nginx only (the same list Django trusts for the client certificate)
forwarded_allow_ips = os.environ.get("CMS_TRUSTED_PROXIES", "127.0.0.1")
accesslog = None  # nginx logs every request
# no control socket: its default path is one per user, shared by every gunicorn of that user
control_socket_disable = True
errorlog = "-"
# the application's own log lines (stderr) go to the error log too, also when daemonized
capture_output = True
