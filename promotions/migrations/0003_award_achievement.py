"""Awards know the achievement they paid for (customer, target, cycle, trigger), unique per promotion
and action: an achievement is paid at most once, whatever event carries it again."""

from django.db import migrations, models


def backfill(apps, schema_editor):
    from evaluation.models import achievement_key

    Award = apps.get_model("promotions", "Award")
    batch = []
    for award in Award.objects.select_related("event").iterator(chunk_size=2000):
        e = award.event
        award.achievement = achievement_key(
            e.type, e.target_id, e.target_group_id, e.customer_id, e.cycle_ordinal, e.sub_target_id
        )
        batch.append(award)
        if len(batch) >= 2000:
            Award.objects.bulk_update(batch, ["achievement"])
            batch = []
    Award.objects.bulk_update(batch, ["achievement"])


class Migration(migrations.Migration):
    dependencies = [
        ("promotions", "0002_consume_failure"),
        ("evaluation", "0007_target_event_scoping_copies"),
    ]

    operations = [
        migrations.AddField(
            model_name="award",
            name="achievement",
            field=models.CharField(default="", max_length=200),
            preserve_default=False,
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="award",
            name="achievement",
            field=models.CharField(
                help_text="What was paid for: the customer, target, cycle and trigger (target reached, sub-target S reached, cycle end), as TargetEvent.achievement spells it.",
                max_length=200,
            ),
        ),
        migrations.AddConstraint(
            model_name="award",
            constraint=models.UniqueConstraint(
                fields=("promotion", "achievement", "action_index"),
                name="award_once_per_achievement",
            ),
        ),
    ]
