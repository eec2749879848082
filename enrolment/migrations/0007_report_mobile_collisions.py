"""Report (never change) the customers that would become one person once mobiles are read in
E.164 (issue 16): for an organisation with a default_country, the customers whose mobiles
normalise to the same number; for one without, the mobiles that are another customer's
number with a country code in front (919000000077 beside 9000000077), and the country that
would merge them. `manage.py merge_customers --org SLUG [--dry-run]` does the merging."""

import logging

from django.db import migrations

log = logging.getLogger("enrolment.migrations")
SHOWN = 20


def _say(line: str) -> None:
    log.warning(line)
    print(line)  # noqa: T201 - a migration's report is for the person running migrate


def report_collisions(apps, schema_editor):
    import phonenumbers

    from enrolment.identifiers import mobile_collisions

    Organisation = apps.get_model("milestones", "Organisation")
    Customer = apps.get_model("enrolment", "Customer")
    for org in Organisation.objects.order_by("slug"):
        rows = (
            Customer.objects.filter(organisation_id=org.id, mobile__isnull=False)
            .order_by("created_at", "id")
            .values_list("id", "mobile")
        )
        country = (org.default_country or "").upper()
        if country:
            groups = mobile_collisions(rows.iterator(chunk_size=5000), country)
            if groups:
                _say(f"{org.slug} ({country}): {len(groups)} mobile(s) name several customers; "
                     f"run `manage.py merge_customers --org {org.slug}`:")  # fmt: skip
                for form, ids in list(groups.items())[:SHOWN]:
                    _say(f"  {form}: customers {', '.join(f'#{i}' for i in ids)}")
            continue
        stored = dict((mobile, cid) for cid, mobile in rows.iterator(chunk_size=5000))
        likely: dict[str, list[str]] = {}
        for mobile, cid in stored.items():
            if not mobile.isdigit() or len(mobile) < 11:
                continue
            try:
                number = phonenumbers.parse("+" + mobile, None)
            except phonenumbers.NumberParseException:
                continue
            national = str(number.national_number)
            region = phonenumbers.region_code_for_number(number)
            if national in stored and region and phonenumbers.is_possible_number(number):
                likely.setdefault(region, []).append(
                    f"#{stored[national]} {national} and #{cid} {mobile}"
                )
        for region, pairs in sorted(likely.items()):
            _say(f"{org.slug} (no default_country): {len(pairs)} pair(s) look like one person "
                 f"in {region}; set default_country {region} and run `manage.py merge_customers "
                 f"--org {org.slug}` (try --dry-run first):")  # fmt: skip
            for pair in pairs[:SHOWN]:
                _say(f"  {pair}")


class Migration(migrations.Migration):
    dependencies = [
        ("enrolment", "0006_audience_refresh_status"),
        ("milestones", "0004_organisation_default_country"),
    ]

    operations = [migrations.RunPython(report_collisions, migrations.RunPython.noop, elidable=True)]
