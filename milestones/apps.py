from django.apps import AppConfig


class MilestonesConfig(AppConfig):
    name = "milestones"
    verbose_name = "Milestones"

    def ready(self):
        from django.db.models.signals import post_migrate

        post_migrate.connect(_install_schedules, sender=self)


def _install_schedules(sender, **kwargs):
    from milestones_site.schedules import install_periodic_tasks

    install_periodic_tasks(using=kwargs.get("using", "default"))
