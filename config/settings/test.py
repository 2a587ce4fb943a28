"""The test suite: its own PostgreSQL database per run, eager tasks unless a test starts a real
worker."""

import os

from config.env import env_bool, env_str, parse_database_url
from config.settings.base import *  # noqa: F403

DATABASES = {
    "default": parse_database_url(
        env_str("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/cps_cms")
    )
}
# Explicit: tasks run in the test process, unless a test sends them to a real worker.
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", True)
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LANGUAGE_CODE = "en"

# One test database per pytest process, so that several runs on one machine (a developer's and a
# benchmark's, or parallel engineers') never drop each other's database.
DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}_{os.getpid()}"}
# Published test card master keys (card-protocols.md §3), created on demand.
CARD_KEYS_TEST_PROVISIONING = True
