from django.apps import AppConfig


class SiteConfig(AppConfig):
    """The project itself: installs the periodic schedules after every `migrate`."""

    name = "milestones_site"
    verbose_name = "Site"

    def ready(self):
        from django.db.models.signals import post_migrate

        post_migrate.connect(_install_schedules, sender=self)


def _install_schedules(sender, **kwargs):
    from .schedules import install_periodic_tasks

    install_periodic_tasks(using=kwargs.get("using", "default"))
