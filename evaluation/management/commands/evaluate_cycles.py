from datetime import UTC

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from evaluation.cycle_end import evaluate_cycles
from evaluation.signals import cycles_evaluated, send_after_commit


def parse_as_of(value: str):
    """An ISO datetime, or an ISO date meaning that day's 00:00; naive values are UTC."""
    moment = parse_datetime(value)
    if moment is None:
        day = parse_date(value)
        if day is None:
            raise CommandError(f"--as-of must be an ISO date or datetime, got {value!r}.")
        moment = timezone.datetime(day.year, day.month, day.day)
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, UTC)
    return moment


class Command(BaseCommand):
    help = "Close every cycle whose end plus offset days is before --as-of (default now): write its period-elapsed events."

    def add_arguments(self, parser):
        parser.add_argument("--as-of", dest="as_of", default=None)

    def handle(self, *args, as_of=None, **options):
        try:
            moment = parse_as_of(as_of) if as_of else timezone.now()
        except ValueError as exc:
            raise CommandError(f"--as-of is not a valid date: {exc}")
        summary = evaluate_cycles(as_of=moment, inline=True)
        send_after_commit(cycles_evaluated, event_ids=list(summary.event_ids))
        self.stdout.write(
            f"Evaluated {summary.runs} cycle(s) in {summary.chunks} chunk(s): {summary.events} period-elapsed event(s) written (as of {moment.isoformat()})."
        )
