from django.core.management.base import BaseCommand

from evaluation.repair import overflow_repair


class Command(BaseCommand):
    help = (
        "Find progress values that overflowed before amounts were capped, refuse the "
        "activities over the caps and rebuild the customers' progress (--dry-run: report only)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true")

    def handle(self, *args, dry_run=False, **options):
        report = overflow_repair(dry_run=dry_run)
        verb = "Would refuse" if dry_run else "Refused"
        self.stdout.write(
            f"{report.progress_rows} overflowed progress row(s), {len(report.customers)} "
            f"customer(s), {len(report.groups)} milestone(s). {verb} "
            f"{len(report.refused_activities)} activity(ies); unconsumed events closed "
            f"unpaid: {report.events_closed}; consumed events cleared: {report.events_cleared}."
        )
