"""Issue 18 on the promotion form: a target picker that inserts the exact name, the rule
checked while typing (the error's character marked, the doctor's warnings), each action
showing the fields of its type only (the others cleared on save), and every error at once,
each at its field with a summary linking to it."""

from __future__ import annotations

import re
from datetime import date
from html.parser import HTMLParser

import pytest
from playwright.sync_api import expect

from promotions.doctor import condition_warnings
from promotions.models import Promotion, PromotionAction
from promotions.services import target_name_literals
from rules import compile_rule
from tests.e2e import conftest as e2e
from tests.factories import CouponSeriesFactory, PromotionFactory, TargetGroupFactory

pytestmark = pytest.mark.django_db

ADD = "/admin/promotions/promotion/add/"
CHECK = "/admin/promotions/promotion/check-condition/"
FIELDS = "/admin/promotions/promotion/action-fields/"
LIVE = {
    "start": date(2026, 11, 1),
    "end": date(2027, 4, 30),
    "cycle": {"type": "fixed_calendar", "frequency": "monthly", "start": date(2026, 11, 1)},
}
HTMX = {"HTTP_HX_REQUEST": "true"}

browser = e2e.browser  # the session's Chromium (tests/e2e), for the browser journeys below


class Page(HTMLParser):
    """The elements of a page (tag, attributes, text inside), noting those inside
    <noscript> (what a browser with JavaScript does not show)."""

    def __init__(self, html: str):
        super().__init__()
        self.elements: list[dict] = []
        self._open: list[dict] = []
        self._noscript = 0
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        if tag == "noscript":
            self._noscript += 1
        element = {"tag": tag, "attrs": dict(attrs), "text": "", "noscript": self._noscript > 0}
        self.elements.append(element)
        if tag not in ("input", "br", "img", "meta", "link", "hr"):
            self._open.append(element)

    def handle_endtag(self, tag):
        if tag == "noscript":
            self._noscript -= 1
        for index in range(len(self._open) - 1, -1, -1):
            if self._open[index]["tag"] == tag:
                del self._open[index:]
                break

    def handle_data(self, data):
        for element in self._open:
            element["text"] += data

    def find(self, tag=None, shown_only=True, **attrs) -> list[dict]:
        return [
            e
            for e in self.elements
            if (tag is None or e["tag"] == tag)
            and not (shown_only and e["noscript"])
            and all(e["attrs"].get(k.replace("_", "-")) == v for k, v in attrs.items())
        ]

    def one(self, tag=None, **attrs) -> dict:
        found = self.find(tag, **attrs)
        assert len(found) == 1, (tag, attrs, found)
        return found[0]

    def names(self, shown_only=True) -> set[str]:
        return {
            e["attrs"]["name"]
            for e in self.find(shown_only=shown_only)
            if e["tag"] in ("input", "select", "textarea") and "name" in e["attrs"]
        }


def text(element) -> str:
    return " ".join(element["text"].split())


def form(**over):
    data = {
        "name": "Spend bonus",
        "description": "",
        "activity": "target_period_elapsed",
        "start": "2026-01-01",
        "end": "2027-12-31",
        "is_active": "on",
        "condition": 'currentEvent.targetAchieved("Spend") >= currentEvent.targetDefined("Spend")'
        " && currentEvent.isTargetAchievedEvent == true",
        "actions-TOTAL_FORMS": "1",
        "actions-INITIAL_FORMS": "0",
        "actions-MIN_NUM_FORMS": "0",
        "actions-MAX_NUM_FORMS": "1000",
        "actions-0-position": "0",
        "actions-0-type": "award_points",
        "actions-0-basis": "fixed",
        "actions-0-points": "100",
        "actions-0-rounding": "actual",
        "actions-0-points_type": "regular",
    }
    data.update(over)
    return data


@pytest.fixture
def live(org, configurer):
    """live(name, targets=[...]) -> a milestone live today (2026-11-30 here) with those targets."""

    def make(name, targets=None, **over):
        targets = [{"name": t, "kpi": "gross_sales", "value": 1000} for t in targets or [name]]
        return TargetGroupFactory(
            organisation=org, created_by=configurer, name=name, targets=targets, **{**LIVE, **over}
        )

    return make


# --- the target picker ---------------------------------------------------------------------


def test_the_picker_lists_the_organisations_targets_grouped_by_milestone(
    admin_client_for, configurer, other_configurer, live, make_group
):
    live("Spend club", targets=["Monthly spend", "Store visits"])
    make_group("Old club")  # ended in May
    TargetGroupFactory(organisation=other_configurer.organisation, name="Globex club")
    page = Page(admin_client_for(configurer).get(ADD).content.decode())

    groups = page.find("optgroup")
    assert [g["attrs"]["label"] for g in groups] == ["Spend club (Live)", "Old club (Ended)"]
    options = [text(o) for o in page.find("option")]
    page.one("select", id="pa-target")
    assert "Monthly spend" in options and "Store visits" in options and "Old club" in options
    assert "Globex club target" not in options
    assert page.one("label", **{"for": "pa-target"})
    insert = page.one("button", id="pa-insert")
    assert insert["attrs"]["data-insert-into"] == "id_condition"


def test_the_inserted_expression_names_the_exact_target_even_with_quotes_in_its_name(
    admin_client_for, configurer, live
):
    tricky = 'Spend "gold" \\ tier'
    live("Club", targets=[tricky, "Monthly spend"])
    page = Page(admin_client_for(configurer).get(ADD).content.decode())
    values = {text(o): o["attrs"]["value"] for o in page.find("option") if "value" in o["attrs"]}
    assert values["Monthly spend"] == '"Monthly spend"'
    snippets = [o["attrs"]["value"] for o in page.find("option") if "%s" in o["attrs"]["value"]]
    assert "currentEvent.targetAchieved(%s)" in snippets
    for snippet in snippets:  # what the Insert button writes, for each way offered
        expression = snippet.replace("%s", values[tricky])
        compile_rule(expression)  # valid as written
        assert target_name_literals(expression, tricky), expression  # names that very target
    rule = compile_rule(f"currentEvent.targetAchieved({values[tricky]}) > 0")
    assert rule.target_names == {tricky}


def test_the_sub_targets_are_offered_to_insert_as_the_trigger_that_fired(
    admin_client_for, configurer, org, live
):
    subs = [{"name": "Halfway", "criteria": "percentage", "value": 50}]
    TargetGroupFactory(
        organisation=org, name="Club", targets=[{"name": "Spend", "kpi": "gross_sales",
                                                 "value": 1000, "sub_targets": subs}], **LIVE
    )  # fmt: skip
    page = Page(admin_client_for(configurer).get(ADD).content.decode())
    option = page.one("option", value='"Halfway"')
    assert text(option) == "Halfway (of Spend)"
    button = page.one("button", id="pa-insert-sub")
    assert button["attrs"]["data-insert-what"] == "pa-sub-target"
    expression = button["attrs"]["data-insert-template"].replace("%s", option["attrs"]["value"])
    assert expression == 'currentEvent.targetMilestoneTrigger.contains("Halfway")'
    codes = [w.code for w in condition_warnings(organisation=org, condition=expression)]
    assert "unknown_sub_target" not in codes


def test_a_unified_milestone_is_offered_by_its_own_name(admin_client_for, configurer, live):
    live("All in", targets=["Spend", "Visits"], unified_mode="all")
    page = Page(admin_client_for(configurer).get(ADD).content.decode())
    labels = [text(o) for o in page.find("option")]
    assert "All in (the whole milestone)" in labels


# --- the live check under the rule box -------------------------------------------------------


def check(client, condition, activity="target_period_elapsed", url=CHECK):
    response = client.post(url, {"condition": condition, "activity": activity}, **HTMX)
    assert response.status_code == 200, response.content[:500]
    return response.content.decode()


def test_the_live_check_says_a_valid_condition_is_valid(admin_client_for, configurer, live):
    live("Spend")
    html = check(admin_client_for(configurer), form()["condition"])
    assert "The condition is valid" in html
    assert "pa-warning" not in html


def test_the_live_check_marks_the_character_at_the_error_position(
    admin_client_for, configurer, live
):
    live("Spend")
    rule = 'currentEvent.targetAchieved("Spend") >> 1'
    html = check(admin_client_for(configurer), rule)
    assert "The condition is valid" not in html
    position = int(re.search(r"position (\d+)\)", html).group(1))
    assert position == rule.index(">>") + 1
    marked = re.search(r"<pre[^>]*>(.*?)</pre>", html, re.S).group(1)
    assert marked == ("currentEvent.targetAchieved(&quot;Spend&quot;) &gt;<mark>&gt;</mark> 1")
    assert f"line 1, column {position + 1}" in html


def test_the_live_check_marks_an_unknown_target_where_it_is_written(
    admin_client_for, configurer, live
):
    live("Spend")
    rule = 'currentEvent.targetAchieved("Spnd") > 0'
    html = check(admin_client_for(configurer), rule)
    assert "Unknown target &#x27;Spnd&#x27;" in html
    marked = re.search(r"<pre[^>]*>(.*?)</pre>", html, re.S).group(1)
    assert marked == "currentEvent.targetAchieved(<mark>&quot;Spnd&quot;</mark>) &gt; 0"


def test_an_error_at_the_end_of_the_rule_marks_the_end(admin_client_for, configurer, live):
    live("Spend")
    html = check(admin_client_for(configurer), 'currentEvent.targetAchieved("Spend") >')
    assert re.search(r'&gt;<mark class="pa-end"[^>]*> </mark></pre>', html)


def test_the_live_check_shows_the_doctors_warnings(admin_client_for, configurer, org, live):
    org.award_when_target_achieved = True
    org.save()
    live("Spend")
    html = check(
        admin_client_for(configurer),
        'currentEvent.targetAchieved("Spend") >= currentEvent.targetDefined("Spend")',
    )
    assert "The condition is valid" in html
    warning = Page(html).one("li", data_code="pays_twice")
    assert "pay at the achievement and again at the cycle end" in text(warning)
    # the same rule on another activity hears no cycle end: no warning
    assert "pays_twice" not in check(
        admin_client_for(configurer),
        'currentEvent.targetAchieved("Spend") >= currentEvent.targetDefined("Spend")',
        activity="sub_target_reached",
    )


def test_the_live_check_escapes_what_is_typed(admin_client_for, configurer):
    html = check(admin_client_for(configurer), '"<script>alert(1)</script>" ==')
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_the_live_check_reads_names_in_the_users_organisation_only(
    admin_client_for, other_configurer, live
):
    live("Spend")  # acme's
    html = check(admin_client_for(other_configurer), 'currentEvent.targetAchieved("Spend") > 0')
    assert "Unknown target" in html


@pytest.mark.parametrize("url", [CHECK, FIELDS])
def test_member_care_cannot_use_the_form_endpoints(admin_client_for, member_care, client, url):
    assert admin_client_for(member_care).post(url, {"condition": "true"}).status_code == 403
    client.logout()
    assert client.post(url, {"condition": "true"}).status_code == 302  # to the sign-in page


@pytest.mark.parametrize("url", [CHECK, FIELDS])
def test_the_form_endpoints_answer_only_posts(admin_client_for, configurer, url):
    assert admin_client_for(configurer).get(url).status_code == 405


# --- actions: the fields of the chosen type --------------------------------------------------


def test_changing_an_actions_type_renders_only_that_types_fields(
    admin_client_for, configurer, org, other_org
):
    CouponSeriesFactory(organisation=org, code="WELCOME")
    CouponSeriesFactory(organisation=other_org, code="GLOBEX")
    client = admin_client_for(configurer)
    data = {"actions-2-type": "issue_coupon", "actions-2-points": "100", "actions-2-position": "2"}
    response = client.post(FIELDS, data, HTTP_HX_TRIGGER_NAME="actions-2-type", **HTMX)
    assert response.status_code == 200
    page = Page(response.content.decode())
    assert page.one("div", id="actions-2-fields")["attrs"]["data-type"] == "issue_coupon"
    # only the series: htmx would make <noscript> inputs real ones, so there is none
    assert page.names(shown_only=False) == {"actions-2-series"}
    assert {text(o) for o in page.find("option")} == {"---------", "WELCOME"}


def test_what_was_typed_in_an_action_stays_when_its_type_changes_back(admin_client_for, configurer):
    data = {"actions-0-type": "award_points", "actions-0-basis": "fixed",
            "actions-0-points": "250", "actions-0-points_type": "promotional"}  # fmt: skip
    response = admin_client_for(configurer).post(
        FIELDS, data, HTTP_HX_TRIGGER_NAME="actions-0-type", **HTMX
    )
    page = Page(response.content.decode())
    assert page.one("input", name="actions-0-points")["attrs"]["value"] == "250"
    selected = [o for o in page.find("option") if "selected" in o["attrs"]]
    assert {text(o) for o in selected} >= {"Fixed points", "Promotional"}


def test_a_new_points_action_starts_with_the_default_rounding_and_points_type(
    admin_client_for, configurer
):
    """The row's rounding and points type were not shown before the type was chosen: they
    come with their defaults, not blank."""
    data = {"actions-1-type": "award_points"}
    response = admin_client_for(configurer).post(
        FIELDS, data, HTTP_HX_TRIGGER_NAME="actions-1-type", **HTMX
    )
    page = Page(response.content.decode())
    selected = {text(o) for o in page.find("option") if "selected" in o["attrs"]}
    assert selected == {"---------", "Actual (keep decimals)", "Regular"}  # basis: to choose


def test_an_actions_points_read_as_plain_numbers(admin_client_for, configurer, org):
    promotion = PromotionFactory(
        organisation=org, actions=[{"type": "award_points", "basis": "fixed", "points": 10000}]
    )
    html = (
        admin_client_for(configurer)
        .get(f"/admin/promotions/promotion/{promotion.pk}/change/")
        .content.decode()
    )
    assert Page(html).one("input", name="actions-0-points")["attrs"]["value"] == "10000"


def test_a_message_action_shows_the_subject_for_an_email_only(admin_client_for, configurer):
    client = admin_client_for(configurer)

    def shown(channel):
        data = {"actions-0-type": "send_message", "actions-0-channel": channel}
        response = client.post(FIELDS, data, HTTP_HX_TRIGGER_NAME="actions-0-channel", **HTMX)
        return Page(response.content.decode()).names()

    assert shown("email") == {"actions-0-channel", "actions-0-subject", "actions-0-template"}
    assert shown("sms") == {"actions-0-channel", "actions-0-template"}


def test_a_points_action_shows_the_amount_of_its_basis(admin_client_for, configurer):
    client = admin_client_for(configurer)

    def shown(basis):
        data = {"actions-0-type": "award_points", "actions-0-basis": basis}
        response = client.post(FIELDS, data, HTTP_HX_TRIGGER_NAME="actions-0-basis", **HTMX)
        return Page(response.content.decode()).names()

    common = {"actions-0-basis", "actions-0-rounding", "actions-0-expiry_days",
              "actions-0-points_type"}  # fmt: skip
    assert shown("fixed") == common | {"actions-0-points"}
    assert shown("percent_of_achieved") == common | {"actions-0-percent"}


def test_the_message_fields_offer_the_placeholders_to_insert(admin_client_for, configurer):
    data = {"actions-0-type": "send_message", "actions-0-channel": "sms"}
    response = admin_client_for(configurer).post(
        FIELDS, data, HTTP_HX_TRIGGER_NAME="actions-0-type", **HTMX
    )
    page = Page(response.content.decode())
    values = [o["attrs"]["value"] for o in page.find("option")]
    assert "{customer.name}" in values and "{coupon.code}" in values
    button = page.one("button", data_insert_into="id_actions-0-template")
    assert button["attrs"]["data-insert-what"] == "actions-0-placeholder"


@pytest.mark.parametrize(
    "trigger", ["", "name", "actions-x-type", "actions-0-points", "foo-0-type"]
)
def test_the_action_fields_endpoint_refuses_an_unknown_row(admin_client_for, configurer, trigger):
    response = admin_client_for(configurer).post(
        FIELDS, {"actions-0-type": "issue_coupon"}, HTTP_HX_TRIGGER_NAME=trigger, **HTMX
    )
    assert response.status_code == 400


def test_nonsense_in_a_row_is_shown_back_not_a_server_error(admin_client_for, configurer):
    data = {"actions-0-type": "award_points", "actions-0-basis": "fixed\x00",
            "actions-0-points": "1E+999999", "actions-0-series": "<b>9</b>",
            "actions-0-position": "-x"}  # fmt: skip
    response = admin_client_for(configurer).post(
        FIELDS, data, HTTP_HX_TRIGGER_NAME="actions-0-basis", **HTMX
    )
    assert response.status_code == 200
    page = Page(response.content.decode())
    assert "actions-0-points" in page.names()  # an unknown basis: both amounts
    assert page.one("input", name="actions-0-points")["attrs"]["value"] == "1E+999999"


def test_an_existing_action_shows_only_the_fields_of_its_type(admin_client_for, configurer, org):
    series = CouponSeriesFactory(organisation=org, code="WELCOME")
    promotion = PromotionFactory(
        organisation=org, actions=[{"type": "issue_coupon", "series": series}]
    )
    html = (
        admin_client_for(configurer)
        .get(f"/admin/promotions/promotion/{promotion.pk}/change/")
        .content.decode()
    )
    page = Page(html)
    shown = {n for n in page.names() if n.startswith("actions-0-")}
    assert shown == {"actions-0-position", "actions-0-type", "actions-0-series",
                     "actions-0-id", "actions-0-promotion", "actions-0-DELETE"}  # fmt: skip
    # without JavaScript (nothing re-renders the row) the other types' fields are listed too
    without_js = {n for n in page.names(shown_only=False) if n.startswith("actions-0-")}
    assert without_js - shown >= {"actions-0-points", "actions-0-channel", "actions-0-template"}
    assert "actions-0-series" not in without_js - shown


def test_the_fields_that_do_not_apply_are_cleared_on_save(admin_client_for, configurer, org, live):
    live("Spend")
    series = CouponSeriesFactory(organisation=org, code="WELCOME")
    data = form(**{
        "actions-0-type": "issue_coupon", "actions-0-series": str(series.pk),
        "actions-0-points": "100", "actions-0-template": "Hi {customer.name}",
        "actions-0-channel": "sms", "actions-0-expiry_days": "oops",
    })  # fmt: skip
    response = admin_client_for(configurer).post(ADD, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    action = PromotionAction.objects.get()
    assert (action.type, action.series_id) == ("issue_coupon", series.pk)
    assert (action.basis, action.points, action.expiry_days) == ("", None, None)
    assert (action.rounding, action.points_type) == ("", "")
    assert (action.channel, action.template) == ("", "")


def test_a_new_promotion_opens_with_one_blank_action_that_is_not_saved_if_left_blank(
    admin_client_for, configurer, live
):
    live("Spend")
    client = admin_client_for(configurer)
    page = Page(client.get(ADD).content.decode())
    assert page.one("input", name="actions-TOTAL_FORMS")["attrs"]["value"] == "1"
    assert page.one("div", id="actions-0-fields")["attrs"]["data-type"] == ""
    assert "actions-0-points" in page.names(shown_only=False)  # without JavaScript: listed
    # as a browser posts it: without JavaScript every field, with it the shown ones only
    untouched = {"actions-1-position": "0", "actions-1-type": "",
                 "actions-1-rounding": "actual", "actions-1-points_type": "regular"}  # fmt: skip
    response = client.post(ADD, form(**{"actions-TOTAL_FORMS": "2", **untouched}))
    assert response.status_code == 302
    shown_only = {"actions-1-position": "0", "actions-1-type": ""}
    response = client.post(ADD, form(name="Second", **{"actions-TOTAL_FORMS": "2", **shown_only}))
    assert response.status_code == 302
    assert PromotionAction.objects.count() == 2  # the first action of each
    # something typed in a row without a type is not dropped: the type is asked for
    typed = {**shown_only, "actions-1-points": "5"}
    response = client.post(ADD, form(name="Third", **{"actions-TOTAL_FORMS": "2", **typed}))
    assert response.context["inline_admin_formsets"][0].formset.errors[1] == {
        "type": ["This field is required."]
    }


def test_an_email_keeps_its_subject_and_an_sms_does_not(admin_client_for, configurer, live):
    live("Spend")
    client = admin_client_for(configurer)
    message = {"actions-0-type": "send_message", "actions-0-subject": "Well done",
               "actions-0-template": "Hi {customer.name}"}  # fmt: skip
    assert client.post(ADD, form(**message, **{"actions-0-channel": "email"})).status_code == 302
    assert (
        client.post(ADD, form(name="Second", **message, **{"actions-0-channel": "sms"})).status_code
        == 302
    )
    subjects = dict(PromotionAction.objects.values_list("channel", "subject"))
    assert subjects == {"email": "Well done", "sms": ""}


# --- every error at once, each at its field --------------------------------------------------


def test_every_error_shows_at_once_at_its_field_with_a_summary_linking_to_it(
    admin_client_for, configurer, live
):
    live("Spend")
    rule = 'currentEvent.targetAchieved("Spend") >> 1'
    data = form(**{
        "name": "", "end": "2025-01-01", "condition": rule,
        "actions-TOTAL_FORMS": "2",
        "actions-0-basis": "fixed", "actions-0-points": "",
        "actions-1-position": "1", "actions-1-type": "issue_coupon",
    })  # fmt: skip
    response = admin_client_for(configurer).post(ADD, data)
    assert response.status_code == 200
    assert not Promotion.objects.exists()
    page = Page(response.content.decode())

    summary = page.one("div", id="error-summary")
    assert summary["attrs"]["role"] == "alert"
    links = {
        a["attrs"]["href"]: text(a)
        for a in page.find("a")
        if a["attrs"].get("href", "").startswith("#") and a["attrs"]["href"] != "#"
    }
    wanted = {
        "#id_name": "Name: This field is required.",
        "#id_end": "End: The end date is before the start date.",
        "#id_actions-0-points": "Action 1, points: Fixed points need the number of points.",
        "#id_actions-1-series": "Action 2, coupon series: Choose the coupon series to issue from.",
    }
    for href, label in wanted.items():
        assert links.get(href) == label, (href, links)
    assert links["#id_condition"] == (
        "Condition: Expected a value, a name or '(', found '>' (at position 38)"
    )
    assert "There are 5 problems" in text(summary)

    for field_id in ("id_name", "id_end", "id_actions-0-points", "id_actions-1-series"):
        element = page.one(id=field_id)
        assert element["attrs"]["aria-invalid"] == "true", field_id
        assert f"{field_id}_error" in element["attrs"]["aria-describedby"].split()
        assert page.one("ul", id=f"{field_id}_error")["attrs"]["class"] == "errorlist"

    box = page.one("textarea", id="id_condition")
    assert box["attrs"]["aria-invalid"] == "true"
    assert "id_condition_check" in box["attrs"]["aria-describedby"].split()
    at_the_box = page.one("div", id="id_condition_check")
    position = rule.index(">>") + 1
    assert f"(position {position})" in text(at_the_box)
    assert "&gt;<mark>&gt;</mark> 1" in response.content.decode()


def test_a_promotion_name_taken_in_the_organisation_is_an_error_at_the_field(
    admin_client_for, configurer, org, other_org, live
):
    live("Spend")
    PromotionFactory(organisation=org, name="Spend bonus")
    PromotionFactory(organisation=other_org, name="Other bonus")
    client = admin_client_for(configurer)
    response = client.post(ADD, form())
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["name"] == [
        "Another promotion of the organisation has this name."
    ]
    assert client.post(ADD, form(name="Other bonus")).status_code == 302


def test_the_change_form_shows_the_doctors_warnings_for_the_saved_condition(
    admin_client_for, configurer, org, live
):
    org.award_when_target_achieved = True
    org.save()
    live("Spend")
    promotion = PromotionFactory(
        organisation=org,
        end=date(2027, 12, 31),
        condition='currentEvent.targetAchieved("Spend") >= currentEvent.targetDefined("Spend")',
    )
    html = (
        admin_client_for(configurer)
        .get(f"/admin/promotions/promotion/{promotion.pk}/change/")
        .content.decode()
    )
    check_area = Page(html).one("div", id="id_condition_check")
    assert "The condition is valid" in text(check_area)
    assert "again at the cycle end" in text(check_area)


# --- in a real browser -----------------------------------------------------------------------


@pytest.fixture
def signed_in_page(request, live_server, configurer):
    """signed_in_page(path) -> a Chromium page signed in as the configurer, at `path`."""
    chromium = request.getfixturevalue("browser")
    contexts = []

    def open_at(path):
        context = chromium.new_context(viewport={"width": 1400, "height": 1000}, locale="en-US")
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        e2e.log_in(page, live_server.url, configurer.username, path)
        return page

    yield open_at
    for context in contexts:
        context.close()


def shot(page, name: str) -> None:
    e2e.SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(e2e.SCREENSHOTS / f"{name}.png"), full_page=True)


@pytest.mark.django_db(transaction=True)
def test_a_configurer_writes_a_promotion_with_the_picker_the_live_check_and_typed_actions(
    signed_in_page, org, live
):
    live("Spend club", targets=["Monthly spend", "Store visits"])
    CouponSeriesFactory(organisation=org, code="WELCOME", codes=["A1", "A2"])
    page = signed_in_page(ADD)
    page.get_by_label("Name:").fill("Spend bonus")
    page.get_by_label("Start:").fill("2026-01-01")
    page.get_by_label("End:").fill("2027-12-31")

    # the target picker inserts the exact expression where the cursor is
    box = page.locator("#id_condition")
    box.fill(" && currentEvent.isTargetAchievedEvent == true")
    box.press("Control+Home")
    page.get_by_label("Target", exact=True).select_option(label="Monthly spend")
    page.get_by_label("as", exact=True).select_option(
        label="it is reached: targetAchieved >= targetDefined"
    )
    page.get_by_role("button", name="Insert", exact=True).click()
    reached = 'currentEvent.targetAchieved("Monthly spend") >= currentEvent.targetDefined("Monthly spend")'  # noqa: E501
    expect(box).to_have_value(reached + " && currentEvent.isTargetAchievedEvent == true")
    check_area = page.locator("#id_condition_check")
    expect(check_area).to_contain_text("The condition is valid")

    # a mistake while typing: the error under the box, its character marked
    box.press("Control+End")
    box.type(" >> 1")
    expect(check_area.locator("mark")).to_have_text(">")
    expect(check_area).to_contain_text("Expected a value")
    expect(box).to_have_attribute("aria-invalid", "true")
    shot(page, "promotion-form-01-rule-error-marked")
    for _ in range(5):
        box.press("Backspace")
    expect(check_area).to_contain_text("The condition is valid")
    expect(box).to_have_attribute("aria-invalid", "false")

    # an action shows the fields of its type only (a new promotion opens with one blank)
    row = page.locator("#actions-0")
    expect(row).to_contain_text("Choose the type: its fields appear here.")
    row.get_by_label("Type:").select_option(label="Issue a coupon")
    expect(row.get_by_label("Coupon series:")).to_be_visible()
    expect(row.get_by_label("Points:")).to_have_count(0)
    row.get_by_label("Type:").select_option(label="Award points")
    expect(row.get_by_label("Coupon series:")).to_have_count(0)
    row.get_by_label("Basis:").select_option(label="Fixed points")
    expect(row.get_by_label("Percent:")).to_have_count(0)
    row.get_by_label("Points:").fill("250")
    shot(page, "promotion-form-02-points-action")
    e2e.axe_check(page, "a11y-promotion-form")

    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")
    promotion = Promotion.objects.get(name="Spend bonus")
    assert promotion.condition == reached + " && currentEvent.isTargetAchievedEvent == true"
    action = promotion.actions.get()
    assert (action.type, action.basis, action.points, action.series_id) == (
        "award_points",
        "fixed",
        250,
        None,
    )


@pytest.mark.django_db(transaction=True)
def test_a_refused_save_lists_every_error_and_each_link_takes_the_focus_to_its_field(
    signed_in_page, org, live
):
    live("Spend club", targets=["Monthly spend"])
    page = signed_in_page(ADD)
    page.get_by_label("Start:").fill("2026-06-01")
    page.get_by_label("End:").fill("2026-01-01")
    page.locator("#id_condition").fill('currentEvent.targetAchieved("Monthly spnd") > 0')
    page.get_by_role("button", name="Add another Promotion action").click()  # a second one
    page.locator("#actions-1").get_by_label("Type:").select_option(label="Issue a coupon")
    page.get_by_role("button", name="Save", exact=True).click()

    summary = page.locator("#error-summary")
    expect(summary).to_be_focused()
    expect(summary.locator("li")).to_have_count(4)
    expect(page.locator("#id_condition_check mark")).to_have_text('"Monthly spnd"')
    shot(page, "promotion-form-03-every-error")
    e2e.axe_check(page, "a11y-promotion-form-errors")
    summary.get_by_role("link", name="Action 2, coupon series").click()
    expect(page.locator("#id_actions-1-series")).to_be_focused()
    summary.get_by_role("link", name="Condition").click()
    expect(page.locator("#id_condition")).to_be_focused()
    assert not Promotion.objects.exists()


def test_an_operations_account_edits_a_promotion_with_its_organisations_targets(client, org, live):
    from milestones.models import User

    live("Spend club", targets=["Monthly spend"])
    promotion = PromotionFactory(
        organisation=org,
        end=date(2027, 12, 31),
        condition='currentEvent.targetExists("Monthly spend")',
    )
    ops = User.objects.create_superuser("ops", "ops@example.com", "pw-ops-12345")
    client.force_login(ops)
    url = f"/admin/promotions/promotion/{promotion.pk}/change/"
    page = Page(client.get(url).content.decode())
    assert [text(o) for o in page.find("option", value='"Monthly spend"')] == ["Monthly spend"]
    assert "The condition is valid" in text(page.one("div", id="id_condition_check"))
    # the live check reads the names of the promotion's organisation (ops have none)
    check_url = page.one("textarea", id="id_condition")["attrs"]["hx-post"]
    assert "Unknown target" in check(client, 'currentEvent.targetExists("Spnd")', url=check_url)
    assert "Unknown target" not in check(client, 'currentEvent.targetExists("Spnd")')
    assert client.get(ADD).status_code == 200
