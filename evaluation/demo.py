"""Demo activities, so the member-care timeline and the insights have something to show."""

from datetime import timedelta

from django.utils import timezone

from .ingest import activities_ingest
from .models import Activity, ActivityStatus, ActivityType
from .tracking import activities_track


def load_demo_activities(sender=None, organisation=None, stage="activity", **kwargs) -> None:
    """milestones.signals.demo_loaded (stage "activity"): a few weeks of activities for the
    demo milestones."""
    if stage != "activity":
        return
    org = organisation
    if Activity.objects.filter(organisation=org, external_id__startswith="demo-").exists():
        return
    now = timezone.now()
    items = []
    for n, (mobile, _name) in enumerate(
        [("9000000001", "Asha"), ("9000000002", "Ravi"), ("9000000003", "Meera")]
    ):
        for k in range(3 + 2 * n):
            items.append({
                "id": f"demo-{mobile}-{k}", "type": ActivityType.TRANSACTION, "customer": {"mobile": mobile},
                "occurred_at": now - timedelta(hours=6 * (k + 1)), "store": "S1", "bill_number": f"D{n}{k}",
                "gross": 1500 + 250 * k, "discount": 100, "net": 1400 + 250 * k,
                "line_items": [{"sku": "P-1", "category": "petrol", "quantity": 10 + k, "gross": 1500 + 250 * k, "net": 1400 + 250 * k}],
            })  # fmt: skip
        items.append({"id": f"demo-{mobile}-review", "type": ActivityType.EVENT, "customer": {"mobile": mobile},
                      "occurred_at": now - timedelta(hours=2), "name": "Review", "attributes": {"stars": 5}})  # fmt: skip
    activities_ingest(organisation=org, items=items)
    from enrolment.models import Customer

    for mobile, name in [("9000000001", "Asha"), ("9000000002", "Ravi"), ("9000000003", "Meera")]:
        Customer.objects.filter(organisation=org, mobile=mobile).update(name=name)
    pending = list(
        Activity.objects.filter(organisation=org, status=ActivityStatus.PENDING).values_list(
            "id", flat=True
        )
    )
    activities_track(activity_ids=pending)
