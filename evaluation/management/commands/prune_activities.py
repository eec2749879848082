from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from common.numbers import grouped
from evaluation.partitions import export_path, is_partitioned, prune_execute, prune_plan


class Command(BaseCommand):
    help = (
        "Drop whole months (UTC) of stored activities older than N months that no live or "
        "re-processable milestone still needs; refuses, changing nothing, when one does. On "
        "PostgreSQL a month's partition is detached and dropped; on SQLite its rows are deleted."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than", type=int, required=True, metavar="N",
            help="Months to keep besides the current one: with 3 in December, August and "
            "earlier go.",
        )  # fmt: skip
        parser.add_argument(
            "--export", metavar="DIR",
            help="Write each month to DIR/activities-YYYY-MM.csv before dropping it.",
        )  # fmt: skip
        parser.add_argument(
            "--dry-run", action="store_true", help="List the months and what would happen."
        )

    def handle(self, *args, older_than, export, dry_run, **options):
        if older_than < 1:
            raise CommandError("--older-than takes a number of months, at least 1.")
        export_dir = Path(export) if export else None
        if export_dir and not dry_run:
            try:
                export_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise CommandError(f"Cannot use {export_dir} for the export: {exc}") from None
            if not (export_dir.is_dir() and _writable(export_dir)):
                raise CommandError(f"Cannot write the export to {export_dir}.")
        plan = prune_plan(older_than=older_than)
        how = "partitions" if is_partitioned() else "rows"
        if not plan.months:
            self.stdout.write(f"Nothing older than {plan.cutoff:%Y-%m-%d} (UTC) to prune.")
            return
        for month in plan.months:
            what = f"drop partition {month.partition}" if month.partition else "delete rows"
            if month.needed_by:
                what = "needed by " + _names(month.needed_by)
            elif export_dir:
                what += f", export to {export_path(export_dir, month)}"
            self.stdout.write(f"{month.label}  {_count(month.rows)}  {what}")
        if plan.refused:
            message = (
                "Refused, nothing was dropped: "
                + "; ".join(
                    f"{m.label} is still needed by {_names(m.needed_by)}" for m in plan.refused
                )
                + ". A milestone needs the months of its dates until it ends, and always while "
                "it is active (it may be re-processed). Deactivate the ended milestones that "
                f"need them, or keep more months: --older-than {plan.smallest_allowed} or more."
            )
            if dry_run:
                self.stdout.write(f"Would be refused. {message}")
                return
            raise CommandError(message)
        if dry_run:
            self.stdout.write(f"Dry run: nothing dropped ({how}).")
            return

        def report(month, path):
            saved = f", exported to {path}" if path else ""
            self.stdout.write(f"Pruned {month.label}: {_count(month.rows)}{saved}.")

        prune_execute(plan, export_dir=export_dir, report=report)
        self.stdout.write(
            f"Done: {len(plan.months)} month(s) pruned; their idempotency keys are kept, so a "
            "replay of an old id is still a duplicate."
        )


def _count(rows: int) -> str:
    return f"{grouped(rows)} {'activity' if rows == 1 else 'activities'}"


def _names(groups) -> str:
    return ", ".join(
        f"{g.organisation.name} / {g.name!r} (id {g.id}, {'active' if g.is_active else 'inactive'}, "
        f"{g.start:%Y-%m-%d} to {g.end:%Y-%m-%d})"
        for g in groups
    )


def _writable(directory: Path) -> bool:
    probe = directory / ".prune-activities-probe"
    try:
        probe.write_text("")
        probe.unlink()
    except OSError:
        return False
    return True
