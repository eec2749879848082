"""`celery worker` for the fault tests: the product's app, with the Redis visibility timeout
taken from FAULT_VISIBILITY_TIMEOUT (settings fix it at an hour), so a test can see
unacknowledged messages of a killed worker delivered again within seconds, and every SQL
statement slowed by FAULT_SLOW_SQL_SECONDS, so a test can catch a task in flight.

    python tests/reliability/worker.py -c 2 -Q tracking,evaluation,promotions
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "milestones_site.settings")

from milestones_site.celery import app  # noqa: E402

if __name__ == "__main__":
    options = dict(app.conf.broker_transport_options or {})
    options["visibility_timeout"] = int(os.environ.get("FAULT_VISIBILITY_TIMEOUT", "3600"))
    app.conf.broker_transport_options = options
    slow = float(os.environ.get("FAULT_SLOW_SQL_SECONDS", "0"))
    if slow:
        # Every statement of the worker waits a little first, so a test sees tasks in
        # flight (transactions open) long enough to kill the worker in the middle of one.
        import time

        from django.db.backends.signals import connection_created

        def sleeper(execute, sql, params, many, context):
            time.sleep(slow)
            return execute(sql, params, many, context)

        def install(sender, connection, **kwargs):
            connection.execute_wrappers.append(sleeper)

        connection_created.connect(install, weak=False)
    app.worker_main(["worker", *sys.argv[1:]])
