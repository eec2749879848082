"""The milestone configuration screens (admin): what they show and what they do.

Milestones are made through the service (as the API would), then the pages are driven with
the Django test client the way a browser submits them: disabled (read-only) fields are not
sent, everything else is posted back as rendered.
"""

import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.forms import CheckboxInput, MultipleChoiceField

from milestones.models import AuditEntry, Period, SubTarget, Target, TargetGroup, Template
from milestones.selectors import org_today
from milestones.services.target_groups import target_group_set_active
from tests.factories import StoreFactory, TargetGroupFactory, TillFactory, target_data

pytestmark = pytest.mark.django_db

HOME = "/admin/milestones/targetgroup/"
ADD = HOME + "add/"


# --- helpers --------------------------------------------------------------------------------


def make_group(org, user, name, *, start, end, kpi="gross_sales", unified="", targets=None,
               cycle=None, active=True, enrolment=None):  # fmt: skip
    """A milestone written through the service, as the API would: three till-achievement
    cycles, one target of 1000 on `kpi` unless told."""
    group = TargetGroupFactory(
        organisation=org,
        created_by=user,
        name=name,
        start=start,
        end=end,
        cycle=cycle or {"type": "till_achievement", "count": 3},
        unified_mode=unified,
        targets=targets or [target_data(f"{name} target", kpi=kpi)],
        enrolment=enrolment,
    )
    if not active:
        target_group_set_active(target_group=group, active=False, user=user)
        group.refresh_from_db()
    return group


def live(org, user, name, **kw):
    today = org_today(org)
    return make_group(org, user, name, start=today - timedelta(days=5), end=today + timedelta(days=60), **kw)  # fmt: skip


def upcoming(org, user, name, **kw):
    today = org_today(org)
    return make_group(org, user, name, start=today + timedelta(days=10), end=today + timedelta(days=120), **kw)  # fmt: skip


def ended(org, user, name, **kw):
    today = org_today(org)
    return make_group(org, user, name, start=today - timedelta(days=90), end=today - timedelta(days=30), **kw)  # fmt: skip


def listed_names(response, candidates) -> set[str]:
    """Which of the candidate milestone names appear as rows of the changelist."""
    body = response.content.decode()
    rows = re.findall(r"<tr[^>]*>.*?</tr>", body, flags=re.S)
    return {name for name in candidates for row in rows if f">{name}</a>" in row}


def row_of(response, name) -> str:
    body = response.content.decode()
    for row in re.findall(r"<tr[^>]*>.*?</tr>", body, flags=re.S):
        if f">{name}</a>" in row:
            return row
    raise AssertionError(f"{name} is not listed")


def rendered_post_data(response) -> dict:
    """What a browser would submit for the rendered config form (disabled fields are not sent)."""
    form, formset = response.context["form"], response.context["formset"]
    data = {}
    for f in (form, formset.management_form, *formset.forms):
        for bf in f:
            if bf.field.disabled:
                continue
            value = bf.value()
            if isinstance(bf.field.widget, CheckboxInput):
                if value:
                    data[bf.html_name] = "on"
                continue
            if value is None:
                if not isinstance(bf.field, MultipleChoiceField):
                    data[bf.html_name] = ""
            elif isinstance(value, (list, tuple)):
                data[bf.html_name] = [str(v) for v in value]
            elif isinstance(value, date):
                data[bf.html_name] = value.isoformat()
            else:
                data[bf.html_name] = str(value)
    return data


def scratch_post(org, **overrides) -> dict:
    """A complete 'build from scratch' submission: monthly cycles, one target, two sub-targets."""
    today = org_today(org)
    data = {
        "name": "Spend more",
        "description": "Spend 1000 a month",
        "start": (today + timedelta(days=1)).isoformat(),
        "end": (today + timedelta(days=100)).isoformat(),
        "till": TillFactory(organisation=org).code,
        "target_value_mode": "same_for_all",
        "unified_mode": "",
        "offset_days": "",
        "send_enrolment_trigger": "on",
        "cycle_type": "fixed_calendar",
        "cycle_frequency": "monthly",
        "cycle_days": "",
        "cycle_start": "",
        "cycle_count": "3",
        "periods": "",
        "enrolment_mode": "all_customers",
        "audience_group": "",
        "template": "",
        "targets-TOTAL_FORMS": "2",
        "targets-INITIAL_FORMS": "0",
        "targets-MIN_NUM_FORMS": "0",
        "targets-MAX_NUM_FORMS": "1000",
        "targets-0-name": "Spend 1000",
        "targets-0-kpi": "gross_sales",
        "targets-0-entity": "",
        "targets-0-value": "1000",
        "targets-0-period_values": "P2 = 1500",
        "targets-0-rule": "currentTxn.value >= 100",
        "targets-0-sub_1_name": "Spend 20%",
        "targets-0-sub_1_criteria": "percentage",
        "targets-0-sub_1_value": "20",
        "targets-0-sub_2_name": "Spend 500",
        "targets-0-sub_2_criteria": "absolute",
        "targets-0-sub_2_value": "500",
        "targets-0-sub_3_name": "",
        "targets-0-sub_3_criteria": "absolute",
        "targets-0-sub_3_value": "",
        # a second, untouched target block: ignored
        "targets-1-name": "",
        "targets-1-kpi": "",
        "targets-1-value": "",
        "targets-1-sub_1_name": "",
        "targets-1-sub_1_criteria": "absolute",
        "targets-1-sub_1_value": "",
    }
    data.update(overrides)
    return data


def page_text(response) -> str:
    return response.content.decode()


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


# --- home page: list, chips, search, filters ------------------------------------------------


def test_home_lists_own_milestones_with_status_chips(admin_client_for, configurer, other_configurer, org, other_org):  # fmt: skip
    live(org, configurer, "Live one")
    upcoming(org, configurer, "Later one", active=False)
    ended(org, configurer, "Old one")
    live(other_org, other_configurer, "Globex secret")
    page = admin_client_for(configurer).get(HOME)
    assert listed_names(page, ["Live one", "Later one", "Old one", "Globex secret"]) == {
        "Live one", "Later one", "Old one"}  # fmt: skip
    assert "ms-chip-live" in row_of(page, "Live one") and ">Active<" in row_of(page, "Live one")
    assert "ms-chip-upcoming" in row_of(page, "Later one")
    assert ">Inactive<" in row_of(page, "Later one")
    assert "ms-chip-ended" in row_of(page, "Old one")
    live_row, old_row = row_of(page, "Live one"), row_of(page, "Old one")
    group = TargetGroup.objects.get(name="Live one")
    assert f'<a href="{HOME}{group.pk}/change/">Edit</a>' in live_row
    assert f'<a href="{HOME}{group.pk}/clone/">Clone</a>' in live_row
    assert ">Clone</a>" not in old_row  # only Live/Upcoming milestones can be cloned
    assert "New milestone" in page_text(page)


def test_search_finds_milestones_by_name(admin_client_for, configurer, org):
    live(org, configurer, "Summer spend")
    live(org, configurer, "Winter visits")
    page = admin_client_for(configurer).get(HOME, {"q": "summer"})
    assert listed_names(page, ["Summer spend", "Winter visits"]) == {"Summer spend"}


def test_tracking_type_filter_separates_single_and_unified(admin_client_for, configurer, org):
    live(org, configurer, "Single one")
    live(org, configurer, "Unified one", unified="all", targets=[
        {"name": "U spend", "kpi": "gross_sales", "value": Decimal("100")},
        {"name": "U visits", "kpi": "transaction_count", "value": Decimal("3")},
    ])  # fmt: skip
    client = admin_client_for(configurer)
    names = ["Single one", "Unified one"]
    assert listed_names(client.get(HOME, {"tracking_type": "unified"}), names) == {"Unified one"}
    assert listed_names(client.get(HOME, {"tracking_type": "single"}), names) == {"Single one"}


def test_status_filter_uses_the_dates(admin_client_for, configurer, org):
    live(org, configurer, "Now")
    upcoming(org, configurer, "Soon")
    ended(org, configurer, "Past")
    client = admin_client_for(configurer)
    names = ["Now", "Soon", "Past"]
    assert listed_names(client.get(HOME, {"status": "live"}), names) == {"Now"}
    assert listed_names(client.get(HOME, {"status": "upcoming"}), names) == {"Soon"}
    assert listed_names(client.get(HOME, {"status": "ended"}), names) == {"Past"}


def test_activity_filter_separates_active_and_inactive(admin_client_for, configurer, org):
    live(org, configurer, "On")
    live(org, configurer, "Off", active=False)
    client = admin_client_for(configurer)
    assert listed_names(client.get(HOME, {"active": "1"}), ["On", "Off"]) == {"On"}
    assert listed_names(client.get(HOME, {"active": "0"}), ["On", "Off"]) == {"Off"}


def test_duration_filter_keeps_milestones_inside_the_dates(admin_client_for, configurer, org):
    today = org_today(org)
    make_group(org, configurer, "Inside", start=today + timedelta(days=10), end=today + timedelta(days=40))  # fmt: skip
    make_group(org, configurer, "Starts early", start=today, end=today + timedelta(days=40))
    make_group(org, configurer, "Ends late", start=today + timedelta(days=10), end=today + timedelta(days=90))  # fmt: skip
    client = admin_client_for(configurer)
    page = client.get(HOME, {"starts_after": (today + timedelta(days=5)).isoformat(),
                             "ends_before": (today + timedelta(days=50)).isoformat()})  # fmt: skip
    assert listed_names(page, ["Inside", "Starts early", "Ends late"]) == {"Inside"}
    only_start = client.get(HOME, {"starts_after": (today + timedelta(days=5)).isoformat()})
    assert listed_names(only_start, ["Inside", "Starts early", "Ends late"]) == {"Inside", "Ends late"}  # fmt: skip
    # the filter shows the chosen dates back; a bad date is the admin's "?e=1", not a crash
    assert f'value="{(today + timedelta(days=5)).isoformat()}"' in page_text(page)
    bad = client.get(HOME, {"starts_after": "not-a-date"})
    assert bad.status_code == 302 and bad["Location"].endswith("?e=1")


def test_kpi_filter_matches_any_target_of_the_milestone(admin_client_for, configurer, org):
    live(org, configurer, "Sales", kpi="gross_sales")
    live(org, configurer, "Visits", kpi="transaction_count")
    live(org, configurer, "Mixed", unified="any", targets=[
        {"name": "M qty", "kpi": "quantity", "value": Decimal("5")},
        {"name": "M visits", "kpi": "transaction_count", "value": Decimal("3")},
    ])  # fmt: skip
    client = admin_client_for(configurer)
    names = ["Sales", "Visits", "Mixed"]
    assert listed_names(client.get(HOME, {"kpi": "transaction_count"}), names) == {"Visits", "Mixed"}  # fmt: skip
    assert listed_names(client.get(HOME, {"kpi": "gross_sales"}), names) == {"Sales"}
    assert "Quantity" in row_of(client.get(HOME), "Mixed")


# --- actions --------------------------------------------------------------------------------


def run_action(client, action, groups, follow=True):
    return client.post(
        HOME,
        {"action": action, "_selected_action": [g.pk for g in groups], "index": 0},
        follow=follow,
    )


def test_deactivate_and_activate_actions_change_state(admin_client_for, configurer, org):
    a, b = live(org, configurer, "A"), upcoming(org, configurer, "B")
    client = admin_client_for(configurer)
    response = run_action(client, "deactivate", [a, b])
    a.refresh_from_db(), b.refresh_from_db()
    assert not a.is_active and not b.is_active
    assert "2 milestones deactivated." in messages_of(response)
    assert AuditEntry.objects.filter(object_id=a.pk, action="deactivate", user=configurer).exists()
    run_action(client, "activate", [a])
    a.refresh_from_db()
    assert a.is_active


def test_reactivating_an_ended_milestone_is_refused_and_changes_nothing(admin_client_for, configurer, org):  # fmt: skip
    old = ended(org, configurer, "Old", active=False)
    response = run_action(admin_client_for(configurer), "activate", [old])
    old.refresh_from_db()
    assert not old.is_active
    assert "Old: An ended milestone cannot be re-activated." in messages_of(response)
    assert 'class="error"' in page_text(response)


def test_clone_action_asks_for_a_name_and_clones_without_enrolment(admin_client_for, configurer, org):  # fmt: skip
    source = live(org, configurer, "Original", enrolment={"mode": "audience_group"})
    client = admin_client_for(configurer)
    response = run_action(client, "clone", [source], follow=False)
    assert response.status_code == 302 and response["Location"].endswith(f"/{source.pk}/clone/")
    page = client.get(response["Location"])
    assert "Enrolment is never copied" in page_text(page)
    response = client.post(response["Location"], {"name": "Copy", "enrolment_mode": "all_customers"})  # fmt: skip
    copy = TargetGroup.objects.get(organisation=org, name="Copy")
    assert response.status_code == 302 and response["Location"].endswith(f"/{copy.pk}/change/")
    assert copy.enrolment_mode == "all_customers"
    assert [t.name for t in copy.targets.all()] == ["Original target (Copy)"]
    assert copy.targets.get().kpi == "gross_sales"
    assert AuditEntry.objects.filter(object_id=copy.pk, action="clone").exists()


def test_clone_refuses_a_taken_name_and_writes_nothing(admin_client_for, configurer, org):
    source = live(org, configurer, "Original")
    live(org, configurer, "Taken")
    before = TargetGroup.objects.count()
    page = admin_client_for(configurer).post(
        f"{HOME}{source.pk}/clone/", {"name": "Taken", "enrolment_mode": "all_customers"}
    )
    assert "A milestone named &#x27;Taken&#x27; already exists" in page_text(page)
    assert TargetGroup.objects.count() == before


def test_clone_of_an_ended_milestone_is_refused(admin_client_for, configurer, org):
    old = ended(org, configurer, "Old")
    client = admin_client_for(configurer)
    response = client.get(f"{HOME}{old.pk}/clone/", follow=True)
    assert "Only a Live or Upcoming milestone can be cloned." in messages_of(response)
    assert client.post(f"{HOME}{old.pk}/clone/", {"name": "X", "enrolment_mode": "all_customers"}).status_code == 302  # fmt: skip
    assert not TargetGroup.objects.filter(name="X").exists()


def test_clone_action_needs_exactly_one_milestone(admin_client_for, configurer, org):
    a, b = live(org, configurer, "A"), live(org, configurer, "B")
    response = run_action(admin_client_for(configurer), "clone", [a, b])
    assert "Select exactly one milestone to clone." in messages_of(response)


def test_save_as_template_then_start_a_milestone_from_it(admin_client_for, configurer, org):
    group = live(org, configurer, "Visits", kpi="transaction_count")
    client = admin_client_for(configurer)
    response = run_action(client, "save_as_template", [group], follow=False)
    assert response["Location"].endswith(f"/{group.pk}/save-as-template/")
    client.post(response["Location"], {"name": "Visit template"})
    template = Template.objects.get(organisation=org, name="Visit template")
    assert template.payload["targets"][0]["kpi"] == "transaction_count"
    chooser = client.get(ADD)
    assert "Visit template" in page_text(chooser)
    assert "Catalyze product sales" in page_text(chooser) and "Boost customer spend" in page_text(chooser)  # fmt: skip
    # a second template with the same name is refused on the page
    again = client.post(response["Location"], {"name": "Visit template"})
    assert "A template named &#x27;Visit template&#x27; already exists." in page_text(again)


# --- create from scratch --------------------------------------------------------------------


def test_new_milestone_page_offers_scratch_and_the_templates(admin_client_for, configurer):
    page = admin_client_for(configurer).get(ADD)
    text = page_text(page)
    assert "?scratch=1" in text
    for template in Template.objects.filter(organisation__isnull=True):
        assert f"?template={template.pk}" in text


def test_scratch_form_shows_the_four_parts(admin_client_for, configurer):
    text = page_text(admin_client_for(configurer).get(ADD, {"scratch": 1}))
    for part in ("1. Milestone details", "2. Milestone cycles", "3. Customer enrolment",
                 "4. Targets", "Sub-targets", "Advanced settings"):  # fmt: skip
        assert part in text


def test_create_from_scratch_writes_cycles_targets_and_sub_targets(admin_client_for, configurer, org):  # fmt: skip
    StoreFactory(organisation=org, code="T1", is_till=True)
    StoreFactory(organisation=org, code="S1", zone="North")
    client = admin_client_for(configurer)
    response = client.post(ADD + "?scratch=1", scratch_post(
        org, till="T1", leaderboard_enabled="on", **{"targets-0-scope_stores": ["S1"]}))  # fmt: skip
    group = TargetGroup.objects.get(organisation=org, name="Spend more")
    assert response.status_code == 302 and response["Location"].endswith(f"/{group.pk}/view/")
    assert group.till.code == "T1" and group.leaderboard_enabled and group.is_active
    assert group.created_by == configurer and group.created_by_role == "configurer"
    assert group.cycle_type == "fixed_calendar" and group.cycle_count == 3
    periods = list(group.periods.all())
    start = org_today(org) + timedelta(days=1)
    assert [p.name for p in periods] == ["Spend more P1", "Spend more P2", "Spend more P3"]
    assert periods[0].start == start
    target = group.targets.get()
    assert (target.name, target.kpi, target.entity) == ("Spend 1000", "gross_sales", "transaction")
    assert target.value == Decimal("1000") and target.cycle_values == {"2": "1500"}
    assert target.rule == "currentTxn.value >= 100" and target.scope_stores == ["S1"]
    assert sorted((s.name, s.criteria, s.value) for s in target.sub_targets.all()) == [
        ("Spend 20%", "percentage", Decimal("20")), ("Spend 500", "absolute", Decimal("500"))]  # fmt: skip
    assert AuditEntry.objects.filter(object_id=group.pk, action="create", user=configurer).exists()


def test_create_with_a_different_duration_for_each_cycle(admin_client_for, configurer, org):
    today = org_today(org)
    d = [(today + timedelta(days=n)).isoformat() for n in (1, 10, 20, 30)]
    periods = f"{d[0]}, {d[1]}, Early bird\n{d[2]}, {d[3]}"
    admin_client_for(configurer).post(ADD + "?scratch=1", scratch_post(
        org, cycle_type="custom_periods", cycle_frequency="", cycle_count="", periods=periods,
        **{"targets-0-period_values": ""}))  # fmt: skip
    group = TargetGroup.objects.get(name="Spend more")
    assert [(p.name, p.start.isoformat(), p.end.isoformat()) for p in group.periods.all()] == [
        ("Early bird", d[0], d[1]), ("Spend more P2", d[2], d[3])]  # fmt: skip


REFUSALS = [
    pytest.param(
        {"cycle_count": "101"},
        "The number of cycles must be between 1 and 100, got 101.",
        id="101-cycles",
    ),  # fmt: skip
    pytest.param(
        {"name": "Taken"},
        "A milestone named &#x27;Taken&#x27; already exists: milestone names are unique.",
        id="duplicate-name",
    ),  # fmt: skip
    pytest.param(
        {"targets-0-kpi": "quantity"},
        "Target 1 (Spend 1000), sub-target 1 (Spend 20%): percentage sub-targets are only for gross and net sales; use an absolute value.",
        id="percentage-on-quantity",
    ),  # fmt: skip
    pytest.param(
        {"targets-0-rule": "currentTxn.value >="}, "Target 1 (Spend 1000): rule ", id="bad-rule"
    ),  # fmt: skip
    pytest.param(
        {
            "cycle_type": "till_achievement",
            "target_value_mode": "per_customer",
            "enrolment_mode": "custom_list",
        },
        "Till target achievement cycles need the same target for all customers",
        id="till-achievement-per-customer",
    ),  # fmt: skip
    pytest.param(
        {"start": "2000-01-01"},
        "A milestone can start at most 6 months in the past",
        id="backdated-too-far",
    ),  # fmt: skip
    pytest.param(
        {
            "targets-0-name": "",
            "targets-0-kpi": "",
            "targets-0-value": "",
            "targets-0-rule": "",
            "targets-0-period_values": "",
            "targets-0-sub_1_name": "",
            "targets-0-sub_1_value": "",
            "targets-0-sub_2_name": "",
            "targets-0-sub_2_value": "",
        },
        "A milestone needs at least one target.",
        id="no-target",
    ),  # fmt: skip
]


@pytest.mark.parametrize("overrides, message", REFUSALS)
def test_a_refused_create_shows_the_message_and_writes_nothing(admin_client_for, configurer, org, overrides, message):  # fmt: skip
    live(org, configurer, "Taken")
    counts = (TargetGroup.objects.count(), Target.objects.count(), Period.objects.count(),
              SubTarget.objects.count())  # fmt: skip
    page = admin_client_for(configurer).post(ADD + "?scratch=1", scratch_post(org, **overrides))
    assert page.status_code == 200
    text = page_text(page)
    assert re.search(r"Please correct \d+ errors?</strong>", text)  # the summary, with links
    assert message in text
    assert counts == (TargetGroup.objects.count(), Target.objects.count(),
                      Period.objects.count(), SubTarget.objects.count())  # fmt: skip
    # what was typed is still there
    assert 'value="Spend 1000"' in text or "needs at least one target" in text


def test_a_target_error_is_shown_on_that_target(admin_client_for, configurer, org):
    data = scratch_post(org, **{"targets-1-name": "Second", "targets-1-kpi": "quantity",
                                "targets-1-value": "5", "targets-1-sub_1_name": "Half",
                                "targets-1-sub_1_criteria": "percentage",
                                "targets-1-sub_1_value": "50"})  # fmt: skip
    page = admin_client_for(configurer).post(ADD + "?scratch=1", data)
    forms = page.context["formset"].forms
    assert forms[0].non_field_errors() == []
    # at the sub-target's criteria (issue 18: every error at its field)
    assert "percentage sub-targets are only for gross and net sales" in str(forms[1].errors["sub_1_criteria"])  # fmt: skip
    assert not TargetGroup.objects.exists()


def test_a_malformed_value_is_refused_by_the_form(admin_client_for, configurer, org):
    page = admin_client_for(configurer).post(ADD + "?scratch=1", scratch_post(
        org, periods="", **{"targets-0-period_values": "P2 is fifteen hundred"}))  # fmt: skip
    assert "write one cycle per line, as P2 = 1500." in page_text(page)
    assert not TargetGroup.objects.exists()


# --- create from a template -----------------------------------------------------------------


def test_starting_from_a_template_prefills_every_value(admin_client_for, configurer):
    template = Template.objects.get(organisation__isnull=True, name="Boost customer spend")
    page = admin_client_for(configurer).get(ADD, {"template": template.pk})
    form, formset = page.context["form"], page.context["formset"]
    assert form["cycle_type"].value() == "fixed_calendar"
    assert form["cycle_frequency"].value() == "monthly" and form["cycle_count"].value() == 3
    assert form["description"].value() == "Spend the target amount in a month to earn a reward."
    target = formset.forms[0]
    assert target["name"].value() == "Monthly spend" and target["kpi"].value() == "gross_sales"
    assert (
        target["value"].value() == "10000" and target["rule"].value() == "currentTxn.value >= 100"
    )
    text = page_text(page)
    assert 'value="Spend 20%"' in text and 'value="Spend 50%"' in text
    assert "currentTxn.value &gt;= 100" in text and 'value="10000"' in text
    # pre-filled, not locked: every value stays editable
    assert not any(bf.field.disabled for bf in form) and not any(bf.field.disabled for bf in target)


def test_a_template_milestone_keeps_the_edits(admin_client_for, configurer, org):
    template = Template.objects.get(organisation__isnull=True, name="Boost customer spend")
    TillFactory(organisation=org)
    client = admin_client_for(configurer)
    data = rendered_post_data(client.get(ADD, {"template": template.pk}))
    today = org_today(org)
    data.update({
        "name": "Spring spend", "start": (today + timedelta(days=1)).isoformat(),
        "end": (today + timedelta(days=120)).isoformat(), "cycle_count": "2",
        "targets-0-value": "7500", "targets-0-sub_2_value": "60",
    })  # fmt: skip
    response = client.post(ADD, data)
    assert response.status_code == 302, page_text(response)
    group = TargetGroup.objects.get(name="Spring spend")
    assert group.cycle_count == 2 and group.periods.count() == 2
    target = group.targets.get()
    # the unchanged template target name gets the milestone's name, as through the API
    assert target.name == "Monthly spend (Spring spend)"
    assert target.value == Decimal("7500") and target.rule == "currentTxn.value >= 100"
    assert sorted((s.name, s.criteria, s.value) for s in target.sub_targets.all()) == [
        ("Spend 20%", "percentage", Decimal("20")), ("Spend 50%", "percentage", Decimal("60"))]  # fmt: skip
    # the same template again, with the same milestone-free target names, does not collide
    data.update({"name": "Summer spend"})
    assert client.post(ADD, data).status_code == 302
    assert Target.objects.filter(name="Monthly spend (Summer spend)").exists()


def test_an_unknown_or_foreign_template_is_refused(admin_client_for, configurer, other_org):
    theirs = Template.objects.create(organisation=other_org, name="Globex only", payload={})
    response = admin_client_for(configurer).get(ADD, {"template": theirs.pk}, follow=True)
    assert f"Unknown template &#x27;{theirs.pk}&#x27;." in page_text(response)
    assert "Globex only" not in page_text(response)


# --- edit -----------------------------------------------------------------------------------


def with_subs(name, kpi="gross_sales"):
    return [{"name": name, "kpi": kpi, "value": Decimal("1000"), "rule": "currentTxn.value >= 10",
             "sub_targets": [{"name": "Quarter", "criteria": "percentage", "value": Decimal("25")}]}]  # fmt: skip


def test_editing_a_started_milestone_shows_the_locked_fields_read_only(admin_client_for, configurer, org):  # fmt: skip
    group = live(org, configurer, "Running", targets=with_subs("Running spend"))
    page = admin_client_for(configurer).get(f"{HOME}{group.pk}/change/")
    form = page.context["form"]
    locked = {bf.name for bf in form if bf.field.disabled}
    assert {"name", "start", "target_value_mode", "cycle_type", "cycle_count", "cycle_start"} <= locked  # fmt: skip
    assert {"description", "end", "leaderboard_enabled", "offset_days"}.isdisjoint(locked)
    text = page_text(page)
    # read-only fields render as text, not as disabled inputs (issue 18, item 7)
    assert '<div class="readonly ms-readonly">Running</div>' in text
    assert not re.search(r'<input(?![^>]*type="hidden")[^>]*name="name"', text)
    assert '<div class="readonly ms-readonly">Percentage of the target</div>' in text
    assert not re.search(r'<select[^>]*name="targets-0-sub_1_criteria"', text)
    assert "This milestone has started" in text


def test_an_upcoming_milestone_keeps_its_dates_and_cycles_editable(admin_client_for, configurer, org):  # fmt: skip
    group = upcoming(org, configurer, "Later")
    form = admin_client_for(configurer).get(f"{HOME}{group.pk}/change/").context["form"]
    assert not form.fields["start"].disabled and not form.fields["cycle_count"].disabled
    assert form.fields["name"].disabled


def test_edit_saves_the_editable_fields_and_ignores_the_locked_ones(admin_client_for, configurer, org):  # fmt: skip
    group = live(org, configurer, "Running", targets=with_subs("Running spend"))
    client = admin_client_for(configurer)
    data = rendered_post_data(client.get(f"{HOME}{group.pk}/change/"))
    new_end = group.end + timedelta(days=30)
    data.update({
        "end": new_end.isoformat(), "description": "Now longer", "leaderboard_enabled": "on",
        "targets-0-value": "1200", "targets-0-sub_1_value": "30",
        "targets-0-rule": "currentTxn.value >= 20",
        # a tampered request: locked fields and a changed sub-target criteria
        "name": "Renamed", "start": (group.start - timedelta(days=1)).isoformat(),
        "cycle_count": "7", "targets-0-sub_1_criteria": "absolute",
    })  # fmt: skip
    response = client.post(f"{HOME}{group.pk}/change/", data)
    assert response.status_code == 302, page_text(response)
    group.refresh_from_db()
    assert group.name == "Running" and group.cycle_count == 3
    assert group.end == new_end and group.description == "Now longer" and group.leaderboard_enabled
    target = group.targets.get()
    assert target.value == Decimal("1200") and target.rule == "currentTxn.value >= 20"
    sub = target.sub_targets.get()
    assert (sub.criteria, sub.value) == ("percentage", Decimal("30"))
    entry = AuditEntry.objects.filter(object_id=group.pk, action="update").get()
    assert entry.user == configurer and "end" in entry.changes
    # the rule changed what is counted, but there are no stored activities: nothing to
    # re-process, so no "Re-process now" (test_config_form_screens.py has the button)
    assert not any("re-process" in m for m in messages_of(client.get(f"{HOME}{group.pk}/view/")))


def test_edit_adds_a_target_and_removes_a_sub_target(admin_client_for, configurer, org):
    group = upcoming(org, configurer, "Later", targets=with_subs("Later spend"))
    client = admin_client_for(configurer)
    data = rendered_post_data(client.get(f"{HOME}{group.pk}/change/"))
    data.update({"targets-0-sub_1_delete": "on", "targets-1-name": "Later visits",
                 "targets-1-kpi": "transaction_count", "targets-1-value": "4"})  # fmt: skip
    assert client.post(f"{HOME}{group.pk}/change/", data).status_code == 302
    assert [t.name for t in group.targets.all()] == ["Later spend", "Later visits"]
    assert not SubTarget.objects.filter(target__target_group=group).exists()


def test_a_refused_edit_shows_the_message_and_changes_nothing(admin_client_for, configurer, org):
    group = live(org, configurer, "Running", targets=with_subs("Running spend"))
    client = admin_client_for(configurer)
    data = rendered_post_data(client.get(f"{HOME}{group.pk}/change/"))
    data.update({"targets-0-kpi": "quantity", "targets-0-value": "9"})
    page = client.post(f"{HOME}{group.pk}/change/", data)
    assert "percentage sub-targets are only for gross and net sales" in page_text(page)
    target = group.targets.get()
    assert (target.kpi, target.value) == ("gross_sales", Decimal("1000"))
    assert not AuditEntry.objects.filter(object_id=group.pk, action="update").exists()


# --- view -----------------------------------------------------------------------------------


def test_view_configuration_tab_shows_details_cycles_enrolment_and_targets(admin_client_for, configurer, org):  # fmt: skip
    StoreFactory(organisation=org, code="S9", zone="North")
    today = org_today(org)
    group = make_group(org, configurer, "Quarterly", start=today, end=today + timedelta(days=200),
                       cycle={"type": "fixed_calendar", "frequency": "monthly", "count": 2},
                       targets=[{"name": "Quarterly spend", "kpi": "net_sales", "value": Decimal("5000"),
                                 "scope": {"stores": ["S9"]}, "rule": "currentTxn.value >= 100",
                                 "period_values": {"P2": Decimal("6000")},
                                 "sub_targets": [{"name": "Fifth", "criteria": "percentage", "value": Decimal("20")}]}])  # fmt: skip
    text = page_text(admin_client_for(configurer).get(f"{HOME}{group.pk}/view/"))
    for expected in ("Milestone details", "Fixed calendar window", "Monthly", "Quarterly P1",
                     "Quarterly P2", "All customers", "Net sales", "5000", "Stores: S9",
                     "currentTxn.value &gt;= 100", "Fifth: 20% of the target (1000)",
                     "Quarterly P2 = 6000"):  # fmt: skip
        assert expected in text, expected
    p1 = group.periods.get(ordinal=1)
    assert p1.start.strftime("%d %b %Y") in text and p1.end.strftime("%d %b %Y") in text


def test_view_information_tab_shows_ids_and_who_created_it(admin_client_for, configurer, org):
    group = live(org, configurer, "Info", unified="all", targets=[
        {"name": "Info A", "kpi": "gross_sales", "value": Decimal("1")},
        {"name": "Info B", "kpi": "quantity", "value": Decimal("2")},
    ])  # fmt: skip
    text = page_text(admin_client_for(configurer).get(f"{HOME}{group.pk}/view/", {"tab": "information"}))  # fmt: skip
    assert f"<td>{group.pk}</td>" in text
    for target in group.targets.all():
        assert f"{target.name}: {target.pk}" in text
    assert "alice (configurer)" in text
    assert "Info A" not in text.split("Target IDs")[0]  # the configuration tab is not shown


def test_view_history_tab_lists_the_audit_rows(admin_client_for, configurer, org):
    group = live(org, configurer, "Audited")
    target_group_set_active(target_group=group, active=False, user=configurer)
    client = admin_client_for(configurer)
    text = page_text(client.get(f"{HOME}{group.pk}/view/", {"tab": "history"}))
    assert "<td>create</td>" in text and "<td>deactivate</td>" in text
    assert "is_active: True → False" in text
    # the admin's own history link leads to the same rows
    assert client.get(f"{HOME}{group.pk}/history/")["Location"].endswith("?tab=history")


def test_the_view_page_deactivates_and_refuses_to_reactivate_an_ended_one(admin_client_for, configurer, org):  # fmt: skip
    group, old = live(org, configurer, "Running"), ended(org, configurer, "Over", active=False)
    client = admin_client_for(configurer)
    asked = client.post(f"{HOME}{group.pk}/set-active/", {"active": "0"})
    group.refresh_from_db()
    assert group.is_active and asked.status_code == 200  # one click asks first
    page = page_text(asked)
    assert "Deactivate Running?" in page and "tracks nothing" in page
    assert 'name="confirm" value="yes"' in page and f'href="{HOME}{group.pk}/view/"' in page
    client.post(f"{HOME}{group.pk}/set-active/", {"active": "0", "confirm": "yes"})
    group.refresh_from_db()
    assert not group.is_active
    response = client.post(f"{HOME}{old.pk}/set-active/", {"active": "1"}, follow=True)
    old.refresh_from_db()
    assert not old.is_active
    assert "Over: An ended milestone cannot be re-activated." in messages_of(response)
    assert client.get(f"{HOME}{group.pk}/set-active/").status_code == 405


# --- roles and organisations ----------------------------------------------------------------


def config_urls(group):
    return [HOME, ADD, ADD + "?scratch=1", f"{HOME}{group.pk}/view/", f"{HOME}{group.pk}/change/",
            f"{HOME}{group.pk}/clone/", f"{HOME}{group.pk}/save-as-template/",
            "/admin/milestones/template/", "/admin/milestones/auditentry/"]  # fmt: skip


def test_member_care_cannot_reach_the_configuration_screens(admin_client_for, configurer, member_care, org):  # fmt: skip
    group = live(org, configurer, "Private")
    client = admin_client_for(member_care)
    for url in config_urls(group):
        assert client.get(url).status_code == 403, url
    assert client.post(f"{HOME}{group.pk}/set-active/", {"active": "0"}).status_code == 403
    assert client.post(ADD + "?scratch=1", scratch_post(org, name="Sneaky")).status_code == 403
    run_action(client, "deactivate", [group], follow=False)
    group.refresh_from_db()
    assert group.is_active and not TargetGroup.objects.filter(name="Sneaky").exists()
    index = page_text(client.get("/admin/"))
    assert "targetgroup" not in index and "Milestones (target groups)" not in index


def test_integration_accounts_are_sent_to_the_login_page(admin_client_for, configurer, integration, org):  # fmt: skip
    group = live(org, configurer, "Private")
    client = admin_client_for(integration)
    for url in config_urls(group):
        response = client.get(url)
        assert response.status_code == 302 and "/admin/login/" in response["Location"], url


def test_another_organisations_milestone_never_shows(admin_client_for, configurer, other_configurer, other_org):  # fmt: skip
    theirs = live(other_org, other_configurer, "Globex plan")
    client = admin_client_for(configurer)
    assert "Globex plan" not in page_text(client.get(HOME))
    for suffix in ("view/", "change/", "clone/", "save-as-template/"):
        response = client.get(f"{HOME}{theirs.pk}/{suffix}")
        assert response.status_code == 404, suffix
        assert "Globex plan" not in page_text(response)
    assert client.post(f"{HOME}{theirs.pk}/set-active/", {"active": "0"}).status_code == 404
    assert client.post(f"{HOME}{theirs.pk}/clone/", {"name": "Stolen", "enrolment_mode": "all_customers"}).status_code == 404  # fmt: skip
    run_action(client, "deactivate", [theirs])
    theirs.refresh_from_db()
    assert theirs.is_active and not TargetGroup.objects.filter(name="Stolen").exists()


def test_a_milestone_achieved_source_can_only_be_one_of_my_own(admin_client_for, configurer, other_configurer, org, other_org):  # fmt: skip
    # both qualify as a source (fixed calendar window, active): issue 18 lists only those
    weekly = {"type": "fixed_calendar", "frequency": "weekly"}
    mine = live(org, configurer, "Mine", cycle=weekly)
    theirs = live(other_org, other_configurer, "Theirs", cycle=weekly)
    page = admin_client_for(configurer).get(ADD, {"scratch": 1})
    choices = [str(label) for _, label in page.context["formset"].forms[0].fields["source_target_group"].choices]  # fmt: skip
    assert "Mine" in choices and "Theirs" not in choices
    assert mine and theirs


def test_templates_list_built_ins_and_our_own_only(admin_client_for, configurer, other_org):
    Template.objects.create(organisation=other_org, name="Globex template", payload={})
    text = page_text(admin_client_for(configurer).get("/admin/milestones/template/"))
    assert "Boost customer spend" in text and "Catalyze product sales" in text
    assert "Globex template" not in text
    assert "Use this template" in text


def test_the_audit_trail_is_scoped_to_the_organisation(admin_client_for, configurer, other_configurer, org, other_org):  # fmt: skip
    live(org, configurer, "Ours")
    live(other_org, other_configurer, "Theirs")
    text = page_text(admin_client_for(configurer).get("/admin/milestones/auditentry/"))
    assert "Ours" in text and "Theirs" not in text


def test_operations_see_every_organisation_and_the_status_filter_uses_each_timezone(client, configurer, other_configurer, org, other_org):  # fmt: skip
    from milestones.models import User

    live(org, configurer, "Acme now")
    ended(other_org, other_configurer, "Globex past")
    client.force_login(User.objects.create_superuser("ops", "ops@example.com", "ops-pass-1234"))
    names = ["Acme now", "Globex past"]
    assert listed_names(client.get(HOME), names) == set(names)
    assert listed_names(client.get(HOME, {"status": "ended"}), names) == {"Globex past"}
    assert listed_names(client.get(HOME, {"status": "live", "_facets": "1"}), names) == {"Acme now"}  # fmt: skip
    # an operations account has no organisation to create milestones in
    response = client.get(ADD, follow=True)
    assert any("belongs to no organisation" in m for m in messages_of(response))


@pytest.mark.parametrize("template_name", ["Catalyze product sales", "Boost customer spend"])
def test_each_built_in_template_creates_a_milestone_once_named_and_dated(admin_client_for, configurer, org, template_name):  # fmt: skip
    template = Template.objects.get(organisation__isnull=True, name=template_name)
    TillFactory(organisation=org)
    client = admin_client_for(configurer)
    data = rendered_post_data(client.get(ADD, {"template": template.pk}))
    today = org_today(org)
    data.update({"name": "From template", "start": today.isoformat(),
                 "end": (today + timedelta(days=120)).isoformat()})  # fmt: skip
    response = client.post(ADD, data)
    assert response.status_code == 302, page_text(response)
    group = TargetGroup.objects.get(name="From template")
    payload_target = template.payload["targets"][0]
    target = group.targets.get()
    assert (target.kpi, target.entity, target.rule) == (
        payload_target["kpi"], payload_target["entity"], payload_target["rule"])  # fmt: skip
    assert group.periods.count() == template.payload["cycle"]["count"]
    assert target.sub_targets.count() == len(payload_target["sub_targets"])


# --- the form helpers -----------------------------------------------------------------------


def test_service_messages_land_next_to_what_they_are_about(org):
    from django.core.exceptions import ValidationError

    from milestones.forms import MilestoneForm, TargetForm, apply_service_errors

    form = MilestoneForm({"name": "X"}, organisation=org)
    form.is_valid()
    targets = [TargetForm({}, organisation=org, prefix=f"t{i}") for i in range(2)]
    for t in targets:
        t.is_valid()
    left = apply_service_errors(ValidationError({
        "cycle": ["Bad cycle."], "enrolment": ["Bad enrolment."], "till_code": ["Unknown till."],
        "targets": ["Target 2: no target with id 9 in this milestone.", "The target name 'a' is used twice."],
        "non_field_errors": ["Only a Live or Upcoming milestone can be cloned."], "other": ["Odd."],
    }), form, targets)  # fmt: skip
    assert "Bad cycle." in form.errors["cycle_type"]
    assert "Bad enrolment." in form.errors["enrolment_mode"]
    assert form.errors["till"] == ["Unknown till."]
    assert form.non_field_errors() == ["Only a Live or Upcoming milestone can be cloned.", "other: Odd."]  # fmt: skip
    assert targets[1].non_field_errors() == ["Target 2: no target with id 9 in this milestone."]
    assert targets[0].non_field_errors() == [] and left == ["The target name 'a' is used twice."]


def test_periods_and_per_cycle_values_are_parsed_from_lines():
    from django.core.exceptions import ValidationError

    from milestones.forms import parse_period_values, parse_periods

    assert parse_periods("2026-01-01, 2026-01-10, Sale, part 1\n\n2026-01-11,2026-01-31") == [
        {"start": date(2026, 1, 1), "end": date(2026, 1, 10), "name": "Sale, part 1"},
        {"start": date(2026, 1, 11), "end": date(2026, 1, 31)},
    ]
    assert parse_period_values("P2 = 1500\nSpring P3: 2000.5") == {
        "P2": Decimal("1500"), "Spring P3": Decimal("2000.5")}  # fmt: skip
    with pytest.raises(ValidationError, match="dates must be written YYYY-MM-DD"):
        parse_periods("01/01/2026, 31/01/2026")
    with pytest.raises(ValidationError, match="is not a number"):
        parse_period_values("P2 = lots")


def test_numbers_are_plain_in_the_edit_form_and_the_history(admin_client_for, configurer, org):
    """Issue 18, item 1: 10000 was shown as 1E+4, a 50 % sub-target as 5E+1, and the history
    as '5E+1' and 10000.0000."""
    group = live(org, configurer, "Plain", targets=[target_data("Plain spend", kpi="gross_sales", value=Decimal(10000), sub_targets=[{"name": "Half", "criteria": "percentage", "value": Decimal(50)}])])  # fmt: skip
    client = admin_client_for(configurer)
    page = client.get(f"{HOME}{group.pk}/change/")
    html = page.content.decode()
    assert re.search(r'name="targets-0-value"[^>]*value="10000"', html), html
    assert re.search(r'name="targets-0-sub_1_value"[^>]*value="50"', html)
    assert "E+" not in html
    data = rendered_post_data(page)
    data.update({"targets-0-value": "12000", "targets-0-sub_1_value": "60"})
    assert client.post(f"{HOME}{group.pk}/change/", data).status_code == 302
    html = page_text(client.get(f"{HOME}{group.pk}/view/?tab=history"))
    history = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html[html.index("ms-history") :]))
    assert "value: 10000 → 12000" in history
    assert "&#x27;60&#x27;" in history  # the sub-target's new value, plain
    assert "E+" not in history and "10000.0000" not in history


def test_the_view_page_shows_every_time_in_the_organisations_time_zone(admin_client_for, configurer, org):  # fmt: skip
    """Issue 18, item 6: "Created on 12:24 (Asia/Kolkata)" was 12:24 UTC; history was UTC."""
    from datetime import UTC, datetime

    group = live(org, configurer, "Zoned")
    stamp = datetime(2026, 11, 30, 6, 54, tzinfo=UTC)  # 12:24 in Kolkata
    type(group).objects.filter(pk=group.pk).update(created_at=stamp, updated_at=stamp)
    AuditEntry.objects.filter(object_id=group.pk).update(created_at=stamp)
    client = admin_client_for(configurer)
    info = page_text(client.get(f"{HOME}{group.pk}/view/?tab=information"))
    assert "Created on</th><td>30 Nov 2026 12:24 (Asia/Kolkata)" in info
    assert "Last changed</th><td>30 Nov 2026 12:24 (Asia/Kolkata)" in info
    assert "06:54" not in info and "(UTC)" not in info
    history = page_text(client.get(f"{HOME}{group.pk}/view/?tab=history"))
    assert "When (Asia/Kolkata)" in history and "30 Nov 2026 12:24:00" in history
