"""The milestone create/edit form a configurer enjoys (issue 18, items 2, 4, 5, 7, 8 and the
live checks): fields that follow the choice and are cleared when hidden, pickers, every error
at once at its field, the live parts (cycles, rule, thresholds) as htmx fragments, grids,
read-only fields as text, dropping the cycles a shorter live milestone no longer holds, and
"Re-process now".

Pages are driven with the Django test client the way a browser (or htmx) posts them.
"""

import re
from datetime import timedelta
from decimal import Decimal

import pytest

from enrolment.models import TargetGroupAudience
from evaluation.models import ReprocessRun
from milestones.models import Period, Target, TargetGroup
from milestones.selectors import org_today
from milestones.services.target_groups import target_group_create, target_group_set_active
from tests.factories import (
    ActivityFactory,
    AudienceGroupFactory,
    EventTypeFactory,
    StoreFactory,
    TargetGroupFactory,
    TillFactory,
    target_data,
)
from tests.milestones.test_admin_config import rendered_post_data

pytestmark = pytest.mark.django_db

HOME = "/admin/milestones/targetgroup/"
ADD = HOME + "add/?scratch=1"


def html(response) -> str:
    return response.content.decode()


def text_of(response) -> str:
    """The page as words (tags dropped, spaces folded)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html(response)))


def new_post(org, **over) -> dict:
    """A complete create in the new shape: monthly cycles, one gross-sales target."""
    today = org_today(org)
    data = {
        "name": "Spend more",
        "start": (today + timedelta(days=1)).isoformat(),
        "end": (today + timedelta(days=100)).isoformat(),
        "till": TillFactory(organisation=org).code,
        "target_value_mode": "same_for_all",
        "send_enrolment_trigger": "on",
        "cycle_type": "fixed_calendar",
        "cycle_frequency": "monthly",
        "cycle_count": "3",
        "enrolment_mode": "all_customers",
        "targets-TOTAL_FORMS": "1",
        "targets-INITIAL_FORMS": "0",
        "targets-MIN_NUM_FORMS": "0",
        "targets-MAX_NUM_FORMS": "1000",
        "targets-0-name": "Spend 1000",
        "targets-0-kpi": "gross_sales",
        "targets-0-value": "1000",
    }
    data.update(over)
    return data


def fragment(client, url, data, part, **extra):
    """What htmx posts when a live part of the form is redrawn."""
    return client.post(url, {**data, "_part": part, **extra}, HTTP_HX_REQUEST="true")


def group_of(org, user, name, *, starts_in=1, days=150, cycle=None, targets=None, **data):
    today = org_today(org)
    group, _ = target_group_create(
        organisation=org, user=user, via_api=True,
        data={"name": name, "start": today + timedelta(days=starts_in),
              "end": today + timedelta(days=starts_in + days), "till_code": TillFactory(organisation=org).code,
              "cycle": cycle or {"type": "fixed_calendar", "frequency": "monthly", "count": 3},
              "targets": targets or [target_data(f"{name} target")], **data},
    )  # fmt: skip
    return group


# --- fields follow the choice, and what is hidden is cleared ----------------------------------


@pytest.mark.parametrize(
    "kpi, shown, hidden",
    [
        ("gross_sales", ["entity"], ["event_name", "attribute", "points_type", "source_target_group", "extended_field"]),
        ("event_sum", ["event_name", "attribute"], ["entity", "points_type", "extended_field"]),
        ("points", ["points_type"], ["event_name", "attribute", "entity", "source_target_group"]),
        ("milestones_achieved", ["source_target_group"], ["event_name", "points_type"]),
        ("extended_field_count", ["entity", "extended_field", "extended_field_value"], ["event_name"]),
        ("transaction_count", [], ["entity", "event_name", "points_type", "extended_field"]),
    ],
)  # fmt: skip
def test_a_target_shows_only_the_fields_of_its_kpi(admin_client_for, configurer, org, kpi, shown, hidden):  # fmt: skip
    client = admin_client_for(configurer)
    block = html(fragment(client, ADD, new_post(org, **{"targets-0-kpi": kpi}), "target", _prefix="targets-0"))  # fmt: skip
    assert block.lstrip().startswith(
        '<fieldset class="module aligned ms-target" id="target-targets-0"'
    )
    for name in shown:
        assert f'name="targets-0-{name}"' in block, name
    for name in hidden:
        assert f'name="targets-0-{name}"' not in block, name


def test_the_kpi_select_redraws_its_target_with_htmx(admin_client_for, configurer):
    page = html(admin_client_for(configurer).get(ADD))
    kpi = re.search(r'<select[^>]*name="targets-0-kpi"[^>]*>', page).group(0)
    assert 'hx-post="/admin/milestones/targetgroup/add/?scratch=1"' in kpi
    assert 'hx-target="#tracking-targets-0"' in kpi
    assert "&quot;_part&quot;: &quot;tracking&quot;" in kpi
    # what it posts back: the tracking fields, and (out of band) the event help and rule check
    client = admin_client_for(configurer)
    answer = html(fragment(client, ADD, {"targets-TOTAL_FORMS": "1", "targets-INITIAL_FORMS": "0", "targets-0-kpi": "event_sum", "targets-0-rule": "currentEvent.x >"}, "tracking", _prefix="targets-0"))  # fmt: skip
    assert answer.lstrip().startswith('<div class="ms-grid" id="tracking-targets-0">')
    assert 'name="targets-0-attribute"' in answer and 'name="targets-0-value"' not in answer
    assert '<div id="event-help-targets-0" class="ms-event-help" aria-live="polite" hx-swap-oob="true">' in answer  # fmt: skip
    assert '<div id="rule-check-targets-0" class="ms-rule-check" aria-live="polite" hx-swap-oob="true">' in answer  # fmt: skip


def test_hidden_fields_are_cleared_on_save_even_without_javascript(admin_client_for, configurer, org):  # fmt: skip
    """Issue 18, item 4: a gross-sales target saved with an event name and a points type."""
    response = admin_client_for(configurer).post(ADD, new_post(org, **{
        "targets-0-event_name": "Review", "targets-0-points_type": "regular",
        "targets-0-attribute": "stars", "cycle_days": "45",
        "enrolment_mode": "all_customers", "audience_group": "7",
    }))  # fmt: skip
    assert response.status_code == 302, text_of(response)
    group = TargetGroup.objects.get(name="Spend more")
    target = group.targets.get()
    assert (target.event_name, target.points_type, target.attribute) == ("", "", "")
    assert group.cycle_days is None and group.cycle_frequency == "monthly"
    assert not TargetGroupAudience.objects.filter(target_group=group).exists()


def test_number_of_days_shows_only_with_every_n_days(admin_client_for, configurer, org):
    client = admin_client_for(configurer)
    monthly = html(fragment(client, ADD, new_post(org), "cycles"))
    assert monthly.lstrip().startswith('<div id="ms-cycles"')
    assert 'name="cycle_days"' not in monthly and 'name="cycle_frequency"' in monthly
    days = html(fragment(client, ADD, new_post(org, cycle_frequency="days"), "cycles"))
    assert 'name="cycle_days"' in days
    till = html(fragment(client, ADD, new_post(org, cycle_type="till_achievement"), "cycles"))
    assert 'name="cycle_frequency"' not in till and 'name="cycle_count"' in till
    custom = html(fragment(client, ADD, new_post(org, cycle_type="custom_periods"), "cycles"))
    assert 'name="period_1_start"' in custom and 'name="cycle_count"' not in custom
    assert "+ Add cycle" in custom


def test_the_audience_group_picker_shows_with_its_mode_and_lists_our_groups(admin_client_for, configurer, org, other_org):  # fmt: skip
    ours = AudienceGroupFactory(organisation=org, name="Gold members")
    AudienceGroupFactory(organisation=other_org, name="Globex VIPs")
    client = admin_client_for(configurer)
    everyone = html(fragment(client, ADD, new_post(org), "enrolment"))
    assert 'name="audience_group"' not in everyone
    picker = html(
        fragment(client, ADD, new_post(org, enrolment_mode="audience_group"), "enrolment")
    )
    assert re.search(r'<select[^>]*name="audience_group"', picker)
    assert f'<option value="{ours.pk}">Gold members (list, 0 members)</option>' in picker
    assert "Globex VIPs" not in picker
    response = client.post(ADD, new_post(org, enrolment_mode="audience_group", audience_group=str(ours.pk)))  # fmt: skip
    assert response.status_code == 302, text_of(response)
    link = TargetGroupAudience.objects.get(target_group__name="Spend more")
    assert link.audience_group == ours


def test_another_organisations_audience_group_is_refused_at_the_picker(admin_client_for, configurer, org, other_org):  # fmt: skip
    theirs = AudienceGroupFactory(organisation=other_org, name="Globex VIPs")
    page = admin_client_for(configurer).post(ADD, new_post(org, enrolment_mode="audience_group", audience_group=str(theirs.pk)))  # fmt: skip
    assert page.status_code == 200
    assert page.context["form"].errors["audience_group"] == ["Choose one of your organisation's audience groups."]  # fmt: skip
    assert not TargetGroup.objects.filter(name="Spend more").exists()


def test_the_till_picker_offers_tills_only(admin_client_for, configurer, org):
    TillFactory(organisation=org, code="T1")
    StoreFactory(organisation=org, code="S1", name="Main street")
    till = re.search(r'<select[^>]*name="till".*?</select>', html(admin_client_for(configurer).get(ADD)), re.S).group(0)  # fmt: skip
    assert 'value="T1"' in till and 'value="S1"' not in till


def test_zones_and_concepts_are_listed_once_as_filterable_checkboxes(admin_client_for, configurer, org):  # fmt: skip
    for code, zone, concept in [("S1", "North", "Food"), ("S2", "South", "Food"), ("S3", "North", "Fashion"), ("S4", "North", "Food")]:  # fmt: skip
        StoreFactory(organisation=org, code=code, zone=zone, concept=concept)
    page = admin_client_for(configurer).get(ADD)
    target = page.context["formset"].forms[0]
    assert [v for v, _ in target.fields["scope_zones"].choices] == ["North", "South"]
    assert [v for v, _ in target.fields["scope_concepts"].choices] == ["Fashion", "Food"]
    text = html(page)
    assert text.count('name="targets-0-scope_zones" value="North"') == 1
    assert re.search(r'<input type="checkbox" name="targets-0-scope_stores" value="S3"', text)
    assert '<input type="search" class="ms-filter" data-filter-for="id_targets-0-scope_zones" aria-label="Filter the zones"' in text  # fmt: skip


def test_the_milestone_achieved_picker_lists_only_milestones_that_qualify(admin_client_for, configurer, org):  # fmt: skip
    weekly = group_of(org, configurer, "Weekly visits", starts_in=1, days=60, cycle={"type": "fixed_calendar", "frequency": "weekly"})  # fmt: skip
    group_of(org, configurer, "Yearly", starts_in=1, days=60, cycle={"type": "till_achievement", "count": 2})  # fmt: skip
    off = group_of(org, configurer, "Switched off", starts_in=1, days=60, cycle={"type": "fixed_calendar", "frequency": "weekly"})  # fmt: skip
    target_group_set_active(target_group=off, active=False, user=configurer)
    group_of(org, configurer, "Too long", starts_in=1, days=400, cycle={"type": "fixed_calendar", "frequency": "weekly"})  # fmt: skip
    today = org_today(org)
    data = new_post(org, start=(today + timedelta(days=1)).isoformat(), end=(today + timedelta(days=90)).isoformat(),  # fmt: skip
                    cycle_count="", **{"targets-0-kpi": "milestones_achieved"})  # fmt: skip
    block = html(fragment(admin_client_for(configurer), ADD, data, "target", _prefix="targets-0"))
    options = re.findall(r'<option value="(\d+)"[^>]*>([^<]+)</option>', re.search(r'name="targets-0-source_target_group".*?</select>', block, re.S).group(0))  # fmt: skip
    assert options == [(str(weekly.pk), "Weekly visits")]


def test_the_event_name_picks_from_the_catalogue_and_warns_about_an_unknown_name(admin_client_for, configurer, org):  # fmt: skip
    EventTypeFactory(organisation=org, name="Review", attributes=["stars"])
    client = admin_client_for(configurer)
    data = new_post(org, **{"targets-0-kpi": "event_count", "targets-0-event_name": "review"})
    block = html(fragment(client, ADD, data, "target", _prefix="targets-0"))
    assert re.search(r'<input type="text" name="targets-0-event_name"[^>]*list="events-targets-0"', block)  # fmt: skip
    assert '<datalist id="events-targets-0"><option value="Review"></datalist>' in block
    assert "“review” has never been received" in block and "Did you mean “Review”?" in block
    known = html(fragment(client, ADD, {**data, "targets-0-event_name": "Review"}, "event", _prefix="targets-0"))  # fmt: skip
    assert known.lstrip().startswith('<div id="event-help-targets-0"') and "never been received" not in known  # fmt: skip
    customer = html(fragment(client, ADD, new_post(org, **{"targets-0-kpi": "customer_event_count"}), "target", _prefix="targets-0"))  # fmt: skip
    select = re.search(r'<select name="targets-0-event_name".*?</select>', customer, re.S).group(0)
    assert '<option value="points_redemption">points redemption</option>' in select


# --- every error at once, at its field ----------------------------------------------------------


def test_five_mistakes_show_five_errors_each_at_its_field_with_a_summary(admin_client_for, configurer, org):  # fmt: skip
    """Issue 18, item 5: five mistakes at once showed one."""
    group_of(org, configurer, "Taken")
    data = new_post(org, name="Taken", cycle_count="101", offset_days="lots", **{
        "targets-0-rule": "currentTxn.value >=",
        "targets-0-sub_1_name": "Half", "targets-0-sub_1_criteria": "percentage",
        "targets-0-sub_1_value": "500",
    })  # fmt: skip
    page = admin_client_for(configurer).post(ADD, data)
    assert page.status_code == 200 and not TargetGroup.objects.filter(name="Taken").count() > 1
    form, target = page.context["form"], page.context["formset"].forms[0]
    assert "A milestone named 'Taken' already exists" in form.errors["name"][0]
    assert form.errors["offset_days"] == ["Enter a whole number."]
    assert "between 1 and 100, got 101" in form.errors["cycle_count"][0]
    assert "rule Syntax error" in target.errors["rule"][0] or "rule Expected" in target.errors["rule"][0]  # fmt: skip
    assert "a percentage cannot exceed 100" in target.errors["sub_1_value"][0]
    text = html(page)
    assert "Please correct 5 errors</strong>" in text
    for href in ("#id_name", "#id_offset_days", "#id_cycle_count", "#id_targets-0-rule", "#id_targets-0-sub_1_value"):  # fmt: skip
        assert f'<a href="{href}">' in text, href
    for name in ("name", "offset_days", "cycle_count", "targets-0-rule", "targets-0-sub_1_value"):
        tag = re.search(rf'<(?:input|textarea)[^>]*name="{name}"[^>]*>', text).group(0)
        assert 'aria-invalid="true"' in tag, tag
        assert re.search(rf'aria-describedby="[^"]*id_{name}_error', tag), tag
        assert f'id="id_{name}_error"' in text


def test_a_rule_error_sits_at_the_rule_box_with_its_position_marked(admin_client_for, configurer, org):  # fmt: skip
    page = admin_client_for(configurer).post(ADD, new_post(org, **{"targets-0-rule": "currentTxn.foo > 1"}))  # fmt: skip
    text = html(page)
    rule_row = text[text.index('id="id_targets-0-rule_row"') :]
    assert rule_row.index("Unknown attribute &#x27;foo&#x27;") < rule_row.index("</textarea>")
    assert '<pre class="ms-rule-copy"' in rule_row
    assert 'currentTxn.<mark class="ms-rule-at" title="Here">f</mark>oo &gt; 1' in rule_row
    assert "at character 12" in rule_row


def test_a_date_that_does_not_parse_still_lets_the_rest_be_checked(admin_client_for, configurer, org):  # fmt: skip
    page = admin_client_for(configurer).post(ADD, new_post(org, start="31/02/2026", **{"targets-0-kpi": "quantity", "targets-0-sub_1_name": "Half", "targets-0-sub_1_criteria": "percentage", "targets-0-sub_1_value": "50"}))  # fmt: skip
    form, target = page.context["form"], page.context["formset"].forms[0]
    # the form's own error, not the service's view of a blank date
    assert form.errors["start"] == ["Enter a valid date."]
    assert "only for gross and net sales" in target.errors["sub_1_criteria"][0]


def test_the_api_lists_every_problem_of_a_create_too(api, configurer, org):
    group_of(org, configurer, "Taken")
    today = org_today(org)
    response = api(configurer).post("/api/v1/target-groups/", {
        "name": "Taken", "start": today.isoformat(), "end": (today + timedelta(days=60)).isoformat(),
        "till_code": "T1", "cycle": {"type": "fixed_calendar", "frequency": "days"},
        "targets": [{"name": "X", "kpi": "event_count", "value": 1}],
    }, format="json")  # fmt: skip
    assert response.status_code == 400
    body = response.json()
    assert set(body) >= {"name", "cycle", "targets"}, body


# --- live checks ---------------------------------------------------------------------------------


def test_the_rule_is_checked_while_typing(admin_client_for, configurer, org):
    client = admin_client_for(configurer)
    bad = html(fragment(client, ADD, new_post(org, **{"targets-0-rule": "currentTxn.value >="}), "rule", _prefix="targets-0"))  # fmt: skip
    assert bad.lstrip().startswith('<div id="rule-check-targets-0" class="ms-rule-check" aria-live="polite">')  # fmt: skip
    assert "but the rule ended — at character 20 (the end of the rule)" in bad
    assert 'currentTxn.value &gt;=<mark class="ms-rule-at" title="Here"> </mark>' in bad
    line_item = new_post(org, **{"targets-0-rule": "currentLineItem.quantity > 1"})
    assert "need the line-item entity" in html(fragment(client, ADD, line_item, "rule", _prefix="targets-0"))  # fmt: skip
    fine = html(fragment(client, ADD, {**line_item, "targets-0-entity": "line_item"}, "rule", _prefix="targets-0"))  # fmt: skip
    assert "✓ The rule is valid for activities tracked on the line item." in fine


def test_the_cycles_are_listed_with_their_dates_in_the_organisations_time_zone(admin_client_for, configurer, org):  # fmt: skip
    data = new_post(org, name="Winter", start="2027-01-01", end="2027-03-31", cycle_count="")
    preview = fragment(admin_client_for(configurer), ADD, data, "preview")
    text = text_of(preview)
    assert html(preview).lstrip().startswith('<div id="ms-cycle-preview"')
    assert "Starts (Asia/Kolkata) Ends (Asia/Kolkata)" in text
    assert "Winter P1 01 Jan 2027 00:00 31 Jan 2027 23:59:59" in text
    assert "Winter P3 01 Mar 2027 00:00 31 Mar 2027 23:59:59" in text and "3 cycles." in text
    # the per-cycle value grids of the targets follow (out of band)
    assert 'id="cv-targets-0" class="ms-cycle-values" hx-swap-oob="true"' in html(preview)
    assert 'name="targets-0-cv_3"' in html(preview)
    refused = text_of(fragment(admin_client_for(configurer), ADD, {**data, "cycle_count": "5"}, "preview"))  # fmt: skip
    assert "Cycle 5 would end on 2027-05-31, after the milestone ends on 2027-03-31" in refused


def test_sub_target_thresholds_are_shown_in_values(admin_client_for, configurer, org):
    data = new_post(org, **{"targets-0-value": "10000", "targets-0-sub_1_name": "Half",
                            "targets-0-sub_1_criteria": "percentage", "targets-0-sub_1_value": "50",
                            "targets-0-sub_2_name": "Start", "targets-0-sub_2_criteria": "absolute",
                            "targets-0-sub_2_value": "1500"})  # fmt: skip
    outputs = html(fragment(admin_client_for(configurer), ADD, data, "thresholds", _prefix="targets-0"))  # fmt: skip
    assert re.search(r'<output id="reached-targets-0-1" class="ms-reached" hx-swap-oob="true"[^>]*>5,000 ', outputs)  # fmt: skip
    assert re.search(r'<output id="reached-targets-0-2"[^>]*>1,500</output>', outputs)


# --- grids and "add" buttons ----------------------------------------------------------------------


def test_per_cycle_values_are_a_grid_of_the_cycles(admin_client_for, configurer, org):
    group = group_of(org, configurer, "Grid", targets=[target_data("Grid spend", value=1000, period_values={"P2": Decimal(1500)})])  # fmt: skip
    client = admin_client_for(configurer)
    page = client.get(f"{HOME}{group.pk}/change/")
    text = text_of(page)
    p2 = group.periods.get(ordinal=2)
    assert f"Grid P2 {p2.start:%d %b %Y} 00:00 {p2.end:%d %b %Y} 23:59:59" in text
    assert re.search(r'name="targets-0-cv_2"[^>]*value="1500"', html(page))
    assert "P2 = 1500" not in html(page)
    data = rendered_post_data(page)
    data.update({"targets-0-cv_2": "", "targets-0-cv_3": "2000"})
    assert client.post(f"{HOME}{group.pk}/change/", data).status_code == 302
    assert Target.objects.get(name="Grid spend").cycle_values == {"3": "2000"}


def test_custom_periods_are_rows_of_dates_with_an_add_cycle_button(admin_client_for, configurer, org):  # fmt: skip
    today = org_today(org)
    d = [(today + timedelta(days=n)).isoformat() for n in (1, 10, 20, 30)]
    client = admin_client_for(configurer)
    data = new_post(org, cycle_type="custom_periods", cycle_frequency="", cycle_count="",
                    period_1_start=d[0], period_1_end=d[1], period_1_name="Early bird",
                    period_2_start="", period_2_end="", period_2_name="")  # fmt: skip
    grown = html(fragment(client, ADD, {**data, "_add": "period"}, "cycles"))
    assert re.search(r'<input type="date" name="period_3_start"[^>]*autofocus', grown)
    data.update(period_2_start=d[2], period_2_end=d[3])
    assert client.post(ADD, data).status_code == 302
    group = TargetGroup.objects.get(name="Spend more")
    assert [(p.name, p.start.isoformat(), p.end.isoformat()) for p in group.periods.all()] == [
        ("Early bird", d[0], d[1]), ("Spend more P2", d[2], d[3])]  # fmt: skip


def test_a_period_error_is_shown_at_its_row(admin_client_for, configurer, org):
    today = org_today(org)
    data = new_post(org, cycle_type="custom_periods", cycle_frequency="", cycle_count="",
                    period_1_start="", period_1_end="", period_1_name="",
                    period_2_start=(today + timedelta(days=9)).isoformat(),
                    period_2_end=(today + timedelta(days=2)).isoformat(), period_2_name="Late")  # fmt: skip
    form = admin_client_for(configurer).post(ADD, data).context["form"]
    assert "Period 1 (Late) ends on" in form.errors["period_2_end"][0]


def test_add_sub_target_and_add_target_bring_one_more_row(admin_client_for, configurer, org):
    client = admin_client_for(configurer)
    assert "sub_1_name" not in html(client.get(ADD))  # no fixed blank rows any more
    subs = html(fragment(client, ADD, {**new_post(org), "_add": "sub:targets-0"}, "subs", _prefix="targets-0"))  # fmt: skip
    assert subs.lstrip().startswith('<div id="subs-targets-0"')
    assert re.search(r'<input type="text" name="targets-0-sub_1_name"[^>]*autofocus', subs)
    added = html(fragment(client, ADD, {**new_post(org), "_add": "target"}, "newtarget"))
    assert '<fieldset class="module aligned ms-target" id="target-targets-1">' in added
    assert '<input type="hidden" name="targets-TOTAL_FORMS" value="2" id="id_targets-TOTAL_FORMS" hx-swap-oob="true">' in added  # fmt: skip


def test_without_javascript_the_form_redraws_for_a_choice_and_saves_nothing(admin_client_for, configurer, org):  # fmt: skip
    client = admin_client_for(configurer)
    page = client.post(ADD, {**new_post(org, **{"targets-0-kpi": "points"}), "_refresh": "1"})
    assert page.status_code == 200 and not TargetGroup.objects.exists()
    assert 'name="targets-0-points_type"' in html(page) and "Please correct" not in html(page)
    page = client.post(ADD, {**new_post(org), "_add": "sub:targets-0"})
    assert 'name="targets-0-sub_1_name"' in html(page) and not TargetGroup.objects.exists()


def test_an_unknown_part_or_target_is_a_clear_400(admin_client_for, configurer, org):
    client = admin_client_for(configurer)
    response = fragment(client, ADD, new_post(org), "target", _prefix="targets-99")
    assert response.status_code == 400 and b"Unknown part of the form." in response.content
    assert fragment(client, ADD, new_post(org), "nonsense").status_code == 400
    assert not TargetGroup.objects.exists()


# --- read-only fields, shortening a live milestone --------------------------------------------------


def live_group(org, user, name="Running", count=5, **kw):
    today = org_today(org)
    return group_of(org, user, name, starts_in=-5, days=5 * 31,
                    cycle={"type": "fixed_calendar", "frequency": "monthly", "start": today - timedelta(days=5), "count": count}, **kw)  # fmt: skip


def test_a_live_milestone_shows_its_locked_fields_as_text_never_disabled(admin_client_for, configurer, org):  # fmt: skip
    group = live_group(org, configurer)
    page = html(admin_client_for(configurer).get(f"{HOME}{group.pk}/change/"))
    form = page[page.index('id="targetgroup_form"') :]
    assert " disabled" not in form
    assert f'<div class="readonly ms-readonly">{group.start:%d %b %Y}</div>' in form
    assert '<div class="readonly ms-readonly">Fixed calendar window</div>' in form
    assert '<div class="readonly ms-readonly">Monthly</div>' in form


def test_shortening_a_live_milestone_offers_to_drop_the_cycles_that_no_longer_fit(admin_client_for, configurer, org):  # fmt: skip
    group = live_group(org, configurer, targets=[target_data("Running spend", period_values={"P4": Decimal(2000), "P2": Decimal(1500)})])  # fmt: skip
    p3, p4 = group.periods.get(ordinal=3), group.periods.get(ordinal=4)
    kept_ids = list(group.periods.filter(ordinal__lte=3).values_list("pk", flat=True))
    client = admin_client_for(configurer)
    url = f"{HOME}{group.pk}/change/"
    data = rendered_post_data(client.get(url))
    data["end"] = p3.end.isoformat()
    offered = html(fragment(client, url, data, "preview"))
    assert '<div id="ms-drop-cycles" hx-swap-oob="true">' in offered
    assert "Drop cycles Running P4, Running P5 that end after the new end date" in offered
    refused = client.post(url, data)
    assert "The cycles Running P4, Running P5 end after the new end date" in refused.context["form"].errors["end"][0]  # fmt: skip
    assert group.periods.count() == 5
    data["drop_cycles"] = "on"
    response = client.post(url, data, follow=True)
    assert response.redirect_chain, text_of(response)
    group.refresh_from_db()
    assert group.end == p3.end and group.cycle_count == 3
    # the cycles kept stay the same rows (their progress with them)
    assert list(group.periods.values_list("pk", flat=True)) == kept_ids
    assert not Period.objects.filter(pk=p4.pk).exists()
    assert Target.objects.get(name="Running spend").cycle_values == {"2": "1500"}
    assert any("were dropped" in str(m) for m in response.context["messages"])


def test_a_started_cycle_is_never_dropped(admin_client_for, configurer, org):
    group = live_group(org, configurer)
    client = admin_client_for(configurer)
    url = f"{HOME}{group.pk}/change/"
    data = rendered_post_data(client.get(url))
    data.update(end=(org_today(org) + timedelta(days=1)).isoformat(), drop_cycles="on")
    page = client.post(url, data)
    p1 = group.periods.get(ordinal=1)
    assert f"would cut the cycle Running P1, which has already started: the milestone can end no earlier than {p1.end}" in page.context["form"].errors["end"][0]  # fmt: skip
    assert group.periods.count() == 5 and TargetGroup.objects.get(pk=group.pk).end == group.end


# --- "Re-process now" ----------------------------------------------------------------------------------


def rule_change(client, group):
    url = f"{HOME}{group.pk}/change/"
    data = rendered_post_data(client.get(url))
    data["targets-0-rule"] = "currentTxn.value >= 20"
    return client.post(url, data, follow=True)


def test_a_save_that_changes_what_counts_offers_re_process_now(admin_client_for, configurer, org):  # fmt: skip
    group = live_group(org, configurer)
    ActivityFactory(customer__organisation=org, status="done")
    client = admin_client_for(configurer)
    page = html(rule_change(client, group))
    assert "manage.py reprocess" not in page
    assert f'<form method="post" action="{HOME}{group.pk}/reprocess/" class="ms-inline-form">' in page  # fmt: skip
    assert "Re-process now</button>" in page
    response = client.post(f"{HOME}{group.pk}/reprocess/")
    run = ReprocessRun.objects.get(target_group=group)
    assert response.status_code == 302 and response["Location"] == f"/care/runs/reprocess/{run.pk}/"


def test_re_process_now_is_not_offered_without_stored_activities(admin_client_for, configurer, org):  # fmt: skip
    group = live_group(org, configurer)
    ActivityFactory(customer__organisation=org, status="pending")  # not tracked: nothing stored
    assert "Re-process now" not in html(rule_change(admin_client_for(configurer), group))


def test_re_process_now_refuses_an_inactive_milestone_and_other_people(admin_client_for, configurer, member_care, other_configurer, org):  # fmt: skip
    group = live_group(org, configurer)
    target_group_set_active(target_group=group, active=False, user=configurer)
    response = admin_client_for(configurer).post(f"{HOME}{group.pk}/reprocess/", follow=True)
    assert any("activate it before re-processing" in str(m) for m in response.context["messages"])
    assert admin_client_for(configurer).get(f"{HOME}{group.pk}/reprocess/").status_code == 405
    assert admin_client_for(member_care).post(f"{HOME}{group.pk}/reprocess/").status_code == 403
    assert (
        admin_client_for(other_configurer).post(f"{HOME}{group.pk}/reprocess/").status_code == 404
    )
    assert not ReprocessRun.objects.exists()


# --- roles and organisations ------------------------------------------------------------------------------


def test_the_live_parts_check_role_and_organisation(admin_client_for, configurer, member_care, other_configurer, org):  # fmt: skip
    group = TargetGroupFactory(organisation=org, created_by=configurer, name="Ours")
    data = new_post(org)
    assert fragment(admin_client_for(member_care), ADD, data, "cycles").status_code == 403
    assert fragment(admin_client_for(other_configurer), f"{HOME}{group.pk}/change/", data, "cycles").status_code == 404  # fmt: skip
    assert not TargetGroup.objects.filter(name="Spend more").exists()


def test_the_api_drops_the_cycles_of_a_shorter_live_milestone_when_asked(api, configurer, org):
    group = live_group(org, configurer)
    p2 = group.periods.get(ordinal=2)
    url = f"/api/v1/target-groups/{group.pk}/"
    refused = api(configurer).patch(url, {"end": p2.end.isoformat()}, format="json")
    assert refused.status_code == 400 and "drop_cycles" in refused.json()["end"][0]
    dropped = api(configurer).patch(url, {"end": p2.end.isoformat(), "drop_cycles": True}, format="json")  # fmt: skip
    assert dropped.status_code == 200, dropped.json()
    assert [p["name"] for p in dropped.json()["periods"]] == ["Running P1", "Running P2"]
