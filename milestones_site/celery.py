import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "milestones_site.settings")

app = Celery("milestones_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
