"""manage.py merge_customers --org SLUG [--dry-run] [--country CC]: one customer per person.

Lives in promotions because the merge (`promotions.merge`) moves every engine app's rows and
promotions is the app allowed to import them all (see that module).
"""

import json

from django.core.management.base import BaseCommand, CommandError

from enrolment.identifiers import is_region
from milestones.models import Organisation
from promotions.merge import customers_merge

SHOWN = 20


class Command(BaseCommand):
    help = (
        "Normalise every mobile of an organisation in its default_country (E.164) and merge "
        "the customers that then share one into the oldest: activities, progress (summed), "
        "target events, awards, enrolments and target values move; every merge is audited. "
        "--dry-run only reports."
    )

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="The organisation's slug.")
        parser.add_argument("--dry-run", action="store_true", help="Report; change nothing.")
        parser.add_argument(
            "--country",
            default=None,
            help="With --dry-run: what this country (ISO 3166 alpha-2) would merge, before "
            "setting it as the organisation's default_country.",
        )

    def handle(self, *args, org, dry_run=False, country=None, **options):
        organisation = Organisation.objects.filter(slug=org).first()
        if organisation is None:
            raise CommandError(f"No organisation with the slug {org!r}.")
        if country is not None:
            country = country.strip().upper()
            if not dry_run:
                raise CommandError("--country is for a dry run: set the organisation's "
                                   "default_country to merge for real.")  # fmt: skip
            if not is_region(country):
                raise CommandError(f"Unknown country {country!r}: use an ISO code such as IN.")
        report = customers_merge(organisation=organisation, dry_run=dry_run, country=country)
        plan = report.plan
        out = self.stdout.write
        if not plan.country:
            out(f"{organisation.slug}: no default_country, mobiles stay digits; nothing to do "
                "(set default_country, or try --dry-run --country IN).")  # fmt: skip
            return
        verb = "Would merge" if dry_run else "Merged"
        out(f"{organisation.slug}: country {plan.country}, {plan.customers:,} customers with a mobile.")  # fmt: skip
        people = len(report.merged)
        customers = sum(len(m["from"]) for m in report.merged)
        out(f"{verb} {customers:,} duplicate customer(s) into {people:,}.")
        for merged in report.merged[:SHOWN]:
            froms = ", ".join(f"#{i}" for i in merged["from"])
            out(f"  {merged['mobile']}: #{merged['into']} <- {froms} "
                f"{json.dumps(merged['rows'], sort_keys=True)}")  # fmt: skip
        if people > SHOWN:
            out(f"  ... and {people - SHOWN:,} more.")
        rewritten = "Would rewrite" if dry_run else "Rewrote"
        out(f"{rewritten} {report.renamed:,} other mobile(s) in E.164.")
        for cid, stored, form in plan.renames[: 3 if dry_run else 0]:
            out(f"  e.g. #{cid} {stored} -> {form}")
        if report.retry:
            out(f"{len(report.retry):,} number(s) changed while merging ({', '.join(report.retry[:5])}"
                f"{', ...' if len(report.retry) > 5 else ''}): run the command again.")  # fmt: skip
        if plan.invalid:
            out(f"{len(plan.invalid):,} mobile(s) are not possible numbers in {plan.country} "
                "and stay as they are:")  # fmt: skip
            for cid, stored, message in plan.invalid[:SHOWN]:
                out(f"  #{cid} {stored}: {message}")
