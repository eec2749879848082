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
