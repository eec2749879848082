from django.apps import AppConfig


class SiteConfig(AppConfig):
    """The project itself: installs the periodic schedules after every `migrate`."""

    name = "milestones_site"
    verbose_name = "Site"

    def ready(self):
        from django.apps import apps
        from django.db.models.signals import post_migrate

        # once per migrate, after django-celery-beat's tables exist (this app has no models,
        # so Django sends it no post_migrate of its own)
        post_migrate.connect(_install_schedules, sender=apps.get_app_config("django_celery_beat"))


def _install_schedules(sender, **kwargs):
    from .schedules import install_periodic_tasks

    install_periodic_tasks(using=kwargs.get("using", "default"))
