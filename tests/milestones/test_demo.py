from decimal import Decimal

import pytest

from evaluation.models import Progress
from milestones.demo import load_demo
from milestones.models import Role, TargetGroup, User

pytestmark = pytest.mark.django_db


def test_demo_data_has_a_user_per_role_milestones_of_each_cycle_type_and_progress():
    logins = load_demo()
    assert {role for _, _, role, _ in logins} == {
        Role.CONFIGURER,
        Role.MEMBER_CARE,
        Role.INTEGRATION,
        "superuser",
    }
    assert User.objects.get(username="care").check_password("care-demo-pass")
    groups = TargetGroup.objects.filter(organisation__slug="demo")
    assert {g.cycle_type for g in groups} == {
        "fixed_calendar",
        "custom_periods",
        "cyclic",
        "till_achievement",
    }
    assert (
        groups.get(name="Demo: boost spend").targets.get().rule == "currentTxn.value >= 100"
    )  # from its template
    assert Progress.objects.filter(customer__mobile="9000000001").exists()
    load_demo()  # idempotent
    assert TargetGroup.objects.filter(organisation__slug="demo").count() == 5


def test_demo_data_shows_the_whole_loop_points_a_coupon_and_a_sub_target_message():
    from promotions.models import Award, Coupon, Message

    load_demo()
    points = Award.objects.filter(
        organisation__slug="demo", promotion__name__startswith="Demo: 200 points"
    )
    # Ravi and Meera reach the monthly spend target; Asha does not
    assert sorted(points.values_list("customer__name", "points")) == [
        ("Meera", Decimal(200)),
        ("Ravi", Decimal(200)),
    ]
    coupons = Coupon.objects.filter(series__code="DEMO-THANKS", customer__isnull=False)
    assert sorted(coupons.values_list("customer__name", flat=True)) == ["Meera", "Ravi"]
    bodies = list(Message.objects.filter(customer__name="Ravi").values_list("body", flat=True))
    code = coupons.get(customer__name="Ravi").code
    assert bodies == [
        f"Hi Ravi, you reached Half tank in Demo: catalyze petrol: your coupon is {code}."
    ]
    load_demo()  # idempotent: nothing paid twice
    assert points.count() == 2 and coupons.count() == 2
