from django.core.management.base import BaseCommand, CommandError

from evaluation.reprocess import reprocess_execute, reprocess_start
from milestones.models import TargetGroup


class Command(BaseCommand):
    help = "Replay stored activities for one milestone (target group id); prints progress."

    def add_arguments(self, parser):
        parser.add_argument("target_group_id", type=int)

    def handle(self, *args, target_group_id, **options):
        group = (
            TargetGroup.objects.select_related("organisation").filter(pk=target_group_id).first()
        )
        if group is None:
            raise CommandError(f"No milestone with id {target_group_id}.")
        if not group.is_active:
            raise CommandError(
                f"Milestone {group.name!r} is inactive: activate it first; an inactive milestone tracks nothing."
            )
        run = reprocess_start(target_group=group, queue=False)

        def progress(done, total):
            self.stdout.write(f"  {done}/{total} customers")

        run = reprocess_execute(run_id=run.id, progress=progress)
        self.stdout.write(
            f"Re-processed {group.name!r}: {run.processed} customer(s), status {run.status}."
        )
