from django.db import migrations

TEMPLATES = [
    {
        "name": "Catalyze product sales",
        "description": "Boost the sales of one product: customers buy a quantity of it each month.",
        "payload": {
            "description": "Buy the featured product every month to earn a reward.",
            "target_value_mode": "same_for_all",
            "cycle": {"type": "fixed_calendar", "frequency": "monthly", "count": 3},
            "offset_days": 0,
            "leaderboard_enabled": False,
            "unified_mode": "",
            "enrolment": {"mode": "all_customers"},
            "targets": [
                {
                    "name": "Product quantity",
                    "kpi": "quantity",
                    "entity": "line_item",
                    "value": "5",
                    "rule": 'currentLineItem.sku == "SKU-FEATURED"',
                    "scope": {"stores": [], "zones": [], "concepts": []},
                    "sub_targets": [{"name": "Halfway there", "criteria": "absolute", "value": "3"}],
                }
            ],
        },
    },
    {
        "name": "Boost customer spend",
        "description": "Raise monthly spend: customers reach a gross-sales amount each month.",
        "payload": {
            "description": "Spend the target amount in a month to earn a reward.",
            "target_value_mode": "same_for_all",
            "cycle": {"type": "fixed_calendar", "frequency": "monthly", "count": 3},
            "offset_days": 0,
            "leaderboard_enabled": False,
            "unified_mode": "",
            "enrolment": {"mode": "all_customers"},
            "targets": [
                {
                    "name": "Monthly spend",
                    "kpi": "gross_sales",
                    "entity": "transaction",
                    "value": "10000",
                    "rule": "currentTxn.value >= 100",
                    "scope": {"stores": [], "zones": [], "concepts": []},
                    "sub_targets": [
                        {"name": "Spend 20%", "criteria": "percentage", "value": "20"},
                        {"name": "Spend 50%", "criteria": "percentage", "value": "50"},
                    ],
                }
            ],
        },
    },
]


def create(apps, schema_editor):
    Template = apps.get_model("milestones", "Template")
    for spec in TEMPLATES:
        Template.objects.update_or_create(organisation=None, name=spec["name"], defaults=spec)


def remove(apps, schema_editor):
    Template = apps.get_model("milestones", "Template")
    Template.objects.filter(organisation=None, name__in=[t["name"] for t in TEMPLATES]).delete()


class Migration(migrations.Migration):
    dependencies = [("milestones", "0002_configuration")]
    operations = [migrations.RunPython(create, remove)]
