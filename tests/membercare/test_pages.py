"""Member-care pages, milestone insights and progress pages: what they show, and to whom.

Dates are built around today (the pages read the clock): a monthly milestone that started
three months ago has three completed cycles, the ongoing one and two upcoming.
"""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from enrolment.importing.jobs import import_job_run
from enrolment.models import Customer, Enrolment, ImportJob
from evaluation.models import Progress, TargetEvent, TargetEventType
from membercare.insights import Bar, column_chart, row_chart
from milestones.cycles import add_months
from milestones.selectors import org_today
from tests.evaluation.conftest import txn
from tests.factories import (
    AwardFactory,
    CustomerFactory,
    EnrolmentFactory,
    PromotionFactory,
    ReprocessRunFactory,
    TargetGroupFactory,
    target_data,
)

pytestmark = pytest.mark.django_db

SEARCH = "/care/"
MOBILE = "9000000001"


def text_of(html: str) -> str:
    """The visible words of an HTML fragment, whitespace collapsed."""
    html = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def section(body: str, target_id: int) -> str:
    start = body.index(">", body.index(f'id="mc-target-{target_id}"')) + 1
    return body[start : body.index("</section>", start)]


def cycles_of(body: str, target_id: int) -> dict[int, str]:
    """ordinal -> the cycle's <li> markup (its opening tag included)."""
    out = {}
    for block in section(body, target_id).split('<li class="mc-cycle ')[1:]:
        ordinal = int(re.search(r'data-ordinal="(\d+)"', block).group(1))
        out[ordinal] = '<li class="mc-cycle ' + block.split('<li class="mc-edge')[0]
    return out


def classes(block: str) -> set[str]:
    return set(re.match(r'<li class="([^"]+)"', block).group(1).split())


def fmt_day(d) -> str:
    return f"{d:%d %b %Y}"


# --- data -----------------------------------------------------------------------------------


@pytest.fixture
def months(org):
    """The first day of the milestone's months: three past, this one, two to come."""
    first = org_today(org).replace(day=1)
    return [add_months(first, k) for k in range(-3, 3)]


@pytest.fixture
def spend(make_group, months):
    return make_group(
        "Spend",
        start=months[0],
        end=add_months(months[0], 6) - timedelta(days=1),
        cycle={"type": "fixed_calendar", "frequency": "monthly", "start": months[0], "count": 6},
        targets=[
            {
                "name": "Monthly spend",
                "kpi": "gross_sales",
                "value": Decimal(1000),
                "sub_targets": [
                    {"name": "Spend 20%", "criteria": "percentage", "value": Decimal(20)},
                    {"name": "Spend 50%", "criteria": "percentage", "value": Decimal(50)},
                ],
            }
        ],
    )


def local(org, d, hour=11):
    return timezone.make_aware(
        timezone.datetime(d.year, d.month, d.day, hour), org.tzinfo
    ).isoformat()


@pytest.fixture
def tracked(org, spend, months, post, track, stores):
    """Cycle 1 achieved (300 on day 5, 900 on day 10), cycle 2 nothing, cycle 4 (now) 250."""
    now = timezone.now()
    post(
        txn(1, local(org, months[0] + timedelta(days=4)), 300),
        txn(2, local(org, months[0] + timedelta(days=9)), 900),
        txn(3, (now - timedelta(minutes=5)).isoformat(), 250),
    )
    track()
    customer = Customer.objects.get(mobile=MOBILE)
    customer.name, customer.email, customer.external_id = "Asha Rao", "asha@example.com", "C-77"
    customer.save()
    return customer


# --- who may open what ---------------------------------------------------------------------


def test_anonymous_people_are_sent_to_the_login_page(client, tracked, spend):
    for url in (SEARCH, f"/care/customers/{tracked.pk}/milestones/",
                f"/care/milestones/{spend.pk}/insights/"):  # fmt: skip
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/?next=")


def test_an_integration_user_is_refused_every_page(admin_client_for, integration, tracked, spend):
    client = admin_client_for(integration)
    for url in (SEARCH, f"/care/customers/{tracked.pk}/milestones/",
                f"/care/milestones/{spend.pk}/insights/", f"/care/milestones/{spend.pk}/imports/"):  # fmt: skip
        assert client.get(url).status_code == 403


def test_another_organisations_agent_cannot_see_the_customer(
    admin_client_for, other_member_care, tracked
):
    client = admin_client_for(other_member_care)
    assert client.get(f"/care/customers/{tracked.pk}/milestones/").status_code == 404
    found = client.get(SEARCH, {"q": MOBILE})
    assert found.status_code == 200
    assert f"No customer of your organisation has the mobile, email or external id “{MOBILE}”" in text_of(found.content.decode())  # fmt: skip


def test_another_organisations_configurer_cannot_see_the_insights(
    admin_client_for, other_configurer, spend
):
    client = admin_client_for(other_configurer)
    assert client.get(f"/care/milestones/{spend.pk}/insights/").status_code == 404
    assert client.get(f"/care/milestones/{spend.pk}/imports/").status_code == 404


def test_a_member_care_agent_reads_but_cannot_open_configuration_pages(
    admin_client_for, member_care, tracked, spend
):
    client = admin_client_for(member_care)
    page = client.get(f"/care/customers/{tracked.pk}/milestones/")
    assert page.status_code == 200
    assert spend.targets.get().name in text_of(page.content.decode())  # their target, shown
    for url in (f"/care/milestones/{spend.pk}/insights/", f"/care/milestones/{spend.pk}/imports/",
                "/admin/milestones/targetgroup/", "/admin/milestones/targetgroup/add/",
                f"/admin/milestones/targetgroup/{spend.pk}/change/"):  # fmt: skip
        assert client.get(url).status_code == 403, url


def test_the_milestones_page_offers_nothing_to_change(admin_client_for, member_care, tracked):
    body = admin_client_for(member_care).get(f"/care/customers/{tracked.pk}/milestones/")
    html = body.content.decode()
    content = html[html.index('id="content-main"') :]
    # the panes' filter box narrows what is shown; it changes nothing
    content = re.sub(r'<input type="search" id="mc-pane-filter"[^>]*>', "", content)
    assert "<form" not in content and "<input" not in content and "<button" not in content
    assert "Read-only." in text_of(content)
    assert admin_client_for(member_care).post(f"/care/customers/{tracked.pk}/milestones/").status_code == 405  # fmt: skip


# --- finding a customer --------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    ["90000 00001", "9000000001", "ASHA@example.com", "C-77"],
    ids=["mobile-with-spaces", "mobile", "email", "external-id"],
)
def test_an_agent_finds_a_customer_by_any_identifier(admin_client_for, member_care, tracked, query):
    response = admin_client_for(member_care).get(SEARCH, {"q": query})
    assert response.status_code == 302
    assert response["Location"] == f"/care/customers/{tracked.pk}/milestones/"


def test_searching_one_identifier_kind_ignores_the_others(admin_client_for, member_care, tracked):
    response = admin_client_for(member_care).get(SEARCH, {"q": "C-77", "by": "mobile"})
    assert response.status_code == 200
    assert "No customer of your organisation has the mobile “C-77”" in text_of(response.content.decode())  # fmt: skip


def test_the_search_page_explains_what_to_type(admin_client_for, member_care):
    text = text_of(admin_client_for(member_care).get(SEARCH).content.decode())
    assert "Mobile, email or external id" in text and "Find a customer" in text


# --- the Milestones page -------------------------------------------------------------------


def test_each_target_has_a_pane_with_its_name_duration_and_cycles(
    admin_client_for, member_care, tracked, spend, months
):
    html = admin_client_for(member_care).get(f"/care/customers/{tracked.pk}/milestones/").content.decode()  # fmt: skip
    pane = re.search(r'<a class="mc-pane is-selected"[^>]*>(.*?)</a>', html, re.S).group(1)
    end = add_months(months[0], 6) - timedelta(days=1)
    assert text_of(pane) == f"Monthly spend {fmt_day(months[0])} – {fmt_day(end)} 6 cycles"
    assert "Asha Rao" in text_of(html) and "asha@example.com" in html and "C-77" in html


def test_the_information_pane_names_group_tracker_evaluation_type_and_kpi(
    admin_client_for, member_care, tracked, spend
):
    html = admin_client_for(member_care).get(f"/care/customers/{tracked.pk}/milestones/").content.decode()  # fmt: skip
    target = spend.targets.get()
    info = text_of(section(html, target.pk).split('<ol class="mc-timeline">')[0])
    assert info == (
        "Monthly spend Target group Spend Tracker type Single target Evaluation type Fixed "
        "KPI Gross sales · Transaction (bill)"
    )


def test_the_timeline_shows_each_cycle_with_status_colours_values_and_sub_target_dates(
    admin_client_for, member_care, tracked, spend, months, org
):
    html = admin_client_for(member_care).get(f"/care/customers/{tracked.pk}/milestones/").content.decode()  # fmt: skip
    target = spend.targets.get()
    timeline = section(html, target.pk)
    end = add_months(months[0], 6) - timedelta(days=1)
    assert f"Start {fmt_day(months[0])}" in text_of(timeline)
    assert text_of(timeline).endswith(f"End {fmt_day(end)}")
    cycles = cycles_of(html, target.pk)
    assert sorted(cycles) == [1, 2, 3, 4, 5, 6]
    statuses = {o: {c for c in classes(b) if c.startswith("mc-cycle--")} for o, b in cycles.items()}
    assert statuses == {1: {"mc-cycle--completed"}, 2: {"mc-cycle--completed"},
                        3: {"mc-cycle--completed"}, 4: {"mc-cycle--ongoing"},
                        5: {"mc-cycle--upcoming"}, 6: {"mc-cycle--upcoming"}}  # fmt: skip

    first = cycles[1]
    last_day = add_months(months[0], 1) - timedelta(days=1)
    words = text_of(first)
    assert "mc-result--achieved" in classes(first)
    assert f"{fmt_day(months[0])} – {fmt_day(last_day)}" in words
    assert f"Achieved on {fmt_day(months[0] + timedelta(days=9))}" in words
    assert "1,200 of 1,000 (120.0%)" in words
    assert 'style="width: 100' in first
    subs = re.findall(r'<li class="mc-sub( is-reached)?">(.*?)</li>', first, re.S)
    assert [(bool(r), text_of(s)) for r, s in subs] == [
        (True, f"{fmt_day(months[0] + timedelta(days=4))} Spend 20% on reaching 200 No action recorded"),
        (True, f"{fmt_day(months[0] + timedelta(days=9))} Spend 50% on reaching 500 No action recorded"),
    ]  # fmt: skip

    missed = cycles[2]
    assert "mc-result--missed" in classes(missed)
    assert "Not achieved" in text_of(missed) and "0 of 1,000 (0.0%)" in text_of(missed)
    assert text_of(missed).count("Not reached") == 2

    ongoing = cycles[4]
    assert "mc-result--progress" in classes(ongoing)
    assert "In progress" in text_of(ongoing) and "250 of 1,000 (25.0%)" in text_of(ongoing)
    assert 'style="width: 25.0%"' in ongoing
    today = timezone.now().astimezone(org.tzinfo)
    reached = (today - timedelta(minutes=5)).date()
    assert f"{fmt_day(reached)} Spend 20%" in text_of(ongoing)
    assert "1/2 sub-targets" in text_of(ongoing)

    upcoming = cycles[6]
    assert "mc-result--upcoming" in classes(upcoming)
    assert "Upcoming" in text_of(upcoming) and "0 of 1,000" in text_of(upcoming)


def test_clicking_a_pane_link_shows_that_target(
    admin_client_for, member_care, tracked, spend, make_group, months, post, track
):
    other = make_group(
        "Visits",
        start=months[0],
        end=add_months(months[0], 6) - timedelta(days=1),
        cycle={"type": "cyclic", "frequency": "weekly", "start": months[0], "count": 4},
        targets=[{"name": "Weekly visits", "kpi": "transaction_count", "value": Decimal(3)}],
    )
    post(txn(9, (timezone.now() - timedelta(minutes=2)).isoformat(), 10))
    track()
    client = admin_client_for(member_care)
    visits, monthly = other.targets.get(), spend.targets.get()
    page = client.get(f"/care/customers/{tracked.pk}/milestones/", {"target": visits.pk})
    html = page.content.decode()
    assert re.search(rf'<section class="mc-detail" id="mc-target-{visits.pk}"[^>]*aria-label="Weekly visits">', html)  # fmt: skip
    assert f'id="mc-target-{monthly.pk}"' not in html  # one timeline drawn: the selected one
    info = text_of(section(html, visits.pk).split('<ol class="mc-timeline">')[0])
    assert "Evaluation type Cyclic" in info and "KPI Transaction count" in info
    pane = re.search(r'<a class="mc-pane is-selected"[^>]*>(.*?)</a>', html, re.S).group(1)
    assert text_of(pane).startswith("Weekly visits") and text_of(pane).endswith("4 cycles")
    assert cycles_of(html, visits.pk)[1].startswith('<li class="mc-cycle mc-cycle--ongoing')
    # the other pane's details come as a fragment when it is clicked
    detail_url = f"/care/customers/{tracked.pk}/milestones/{monthly.pk}/"
    assert f'href="?target={monthly.pk}" data-target="{monthly.pk}" data-detail-url="{detail_url}"' in html  # fmt: skip
    fragment = client.get(detail_url).content.decode()
    assert fragment.lstrip().startswith("{#") is False and "<html" not in fragment
    assert "Evaluation type Fixed" in text_of(section(fragment, monthly.pk))
    assert len(cycles_of(fragment, monthly.pk)) == 6


def test_a_target_fragment_is_refused_outside_the_customers_targets_and_organisation(
    admin_client_for,
    member_care,
    other_member_care,
    integration,
    tracked,
    spend,
    make_group,
    months,
):
    stranger = make_group(
        "Not enrolled",
        start=months[0],
        end=add_months(months[0], 6) - timedelta(days=1),
        cycle={"type": "fixed_calendar", "frequency": "monthly", "start": months[0], "count": 6},
        enrolment={"mode": "custom_list"},
    )
    url = f"/care/customers/{tracked.pk}/milestones/"
    assert admin_client_for(member_care).get(f"{url}{stranger.targets.get().pk}/").status_code == 404  # fmt: skip
    mine = f"{url}{spend.targets.get().pk}/"
    assert admin_client_for(other_member_care).get(mine).status_code == 404
    assert admin_client_for(integration).get(mine).status_code == 403


def test_a_period_agnostic_target_says_so_and_counts_cycles_up_to_its_maximum(
    admin_client_for, member_care, make_group, months, post, track, stores
):
    group = make_group(
        "Streak",
        start=months[0],
        end=add_months(months[0], 6) - timedelta(days=1),
        cycle={"type": "till_achievement", "count": 3, "start": months[0]},
        targets=[{"name": "Three buys", "kpi": "transaction_count", "value": Decimal(3)}],
    )
    now = timezone.now()
    post(*[txn(i, (now - timedelta(minutes=10 - i)).isoformat(), 5) for i in range(4)])
    track()
    customer = Customer.objects.get(mobile=MOBILE)
    html = admin_client_for(member_care).get(f"/care/customers/{customer.pk}/milestones/").content.decode()  # fmt: skip
    target = group.targets.get()
    assert "Evaluation type Period agnostic" in text_of(section(html, target.pk))
    assert "2 of up to 3 cycles" in text_of(html)
    cycles = cycles_of(html, target.pk)
    assert "mc-cycle--completed" in classes(cycles[1]) and "3 of 3" in text_of(cycles[1])
    assert "mc-cycle--ongoing" in classes(cycles[2]) and "– open" in text_of(cycles[2])


def test_a_customer_in_no_milestone_is_told_so(admin_client_for, member_care, org):
    customer = CustomerFactory(organisation=org, mobile="9111111111", name="Nobody")
    html = admin_client_for(member_care).get(f"/care/customers/{customer.pk}/milestones/").content.decode()  # fmt: skip
    assert "Nobody is not part of any milestone." in text_of(html)


def test_actions_from_the_awards_ledger_are_listed_under_their_sub_target(
    admin_client_for, member_care, tracked, spend, monkeypatch
):
    events = TargetEvent.objects.filter(customer=tracked)
    sub_event = events.get(type=TargetEventType.SUB_TARGET_ACHIEVED, sub_target__name="Spend 20%", cycle_ordinal=1)  # fmt: skip
    achieved = events.get(type=TargetEventType.TARGET_ACHIEVED, cycle_ordinal=1)

    def lookup(event_ids):  # the shape of promotions.selectors.actions_for_events
        return {
            sub_event.pk: [{"type": "award_points", "promotion": "Welcome bonus", "status": "done",
                            "points": Decimal("50.0000"), "points_type": "regular"}],
            achieved.pk: [{"type": "issue_coupon", "promotion": "Gold", "status": "failed",
                           "coupon_code": "", "error": "the series ran out"},
                          {"type": "send_message", "promotion": "Gold", "status": "done",
                           "message": "Well done, Asha!"}],
        }  # fmt: skip

    monkeypatch.setattr("promotions.selectors.actions_for_events", lookup)
    html = admin_client_for(member_care).get(f"/care/customers/{tracked.pk}/milestones/").content.decode()  # fmt: skip
    first = cycles_of(html, spend.targets.get().pk)[1]
    assert "Spend 20% on reaching 200 50 regular points — Welcome bonus" in text_of(first)
    assert (
        "Other actions in this cycle Coupon — Gold (failed: the series ran out) "
        "Message: Well done, Asha! — Gold"
    ) in text_of(first)
    assert '<li class="mc-action mc-action--failed">Coupon — Gold' in first


# --- bounded queries -----------------------------------------------------------------------


def _customer_in(org, user, *, groups: int, cycles: int, mobile: str, prefix: str) -> Customer:
    """A customer in `groups` monthly milestones of `cycles` cycles, with progress and two
    sub-targets reached in every cycle (rows written in bulk, as tracking would leave them)."""
    customer = CustomerFactory(organisation=org, mobile=mobile)
    start = org_today(org).replace(day=1)
    for g in range(groups):
        group = TargetGroupFactory(
            organisation=org,
            created_by=user,
            name=f"{prefix} {g}",
            start=start,
            end=add_months(start, cycles) - timedelta(days=1),
            cycle={"type": "fixed_calendar", "frequency": "monthly", "count": cycles},
            enrolment={"mode": "custom_list"},
            targets=[target_data(f"{prefix} target {g}", sub_targets=[
                {"name": "A", "criteria": "percentage", "value": Decimal(20)},
                {"name": "B", "criteria": "percentage", "value": Decimal(50)}])],
        )  # fmt: skip
        EnrolmentFactory(target_group=group, customer=customer)
        target = group.targets.get()
        subs = list(target.sub_targets.all())
        progress, events = [], []
        for p in group.periods.all():
            progress.append(Progress(organisation=org, target=target, customer=customer,
                                     cycle_ordinal=p.ordinal, period=p, cycle_start=p.starts_at,
                                     cycle_end=p.ends_at, target_value=1000, achieved=600))  # fmt: skip
            for s in subs:
                events.append(TargetEvent(organisation=org, type=TargetEventType.SUB_TARGET_ACHIEVED,
                                          dedupe_key=f"{prefix}-{g}-{p.ordinal}-{s.pk}",
                                          customer=customer, target_group=group, target=target,
                                          sub_target=s, cycle_ordinal=p.ordinal,
                                          occurred_at=p.starts_at + timedelta(days=2)))  # fmt: skip
        Progress.objects.bulk_create(progress)
        TargetEvent.objects.bulk_create(events)
    return customer


def test_the_milestones_page_query_count_does_not_grow_with_cycles(
    admin_client_for, member_care, configurer, org, django_assert_max_num_queries
):
    small = _customer_in(org, configurer, groups=1, cycles=2, mobile="9100000001", prefix="Small")
    big = _customer_in(org, configurer, groups=20, cycles=12, mobile="9100000002", prefix="Big")
    client = admin_client_for(member_care)
    client.get(SEARCH)  # the session and the user are loaded as on any later page
    with CaptureQueriesContext(connection) as few:
        response = client.get(f"/care/customers/{small.pk}/milestones/")
    assert text_of(response.content.decode()).count("2/2 sub-targets") == 2
    with django_assert_max_num_queries(len(few)):
        response = client.get(f"/care/customers/{big.pk}/milestones/")
    html = response.content.decode()
    assert html.count('<a class="mc-pane') == 20 and html.count('<li class="mc-cycle ') == 12
    assert text_of(html).count("600 of 1,000 (60.0%)") == 12
    # 13: the session, the user, its organisation (the time zone every page is shown in), ...
    assert len(few) <= 13, [q["sql"] for q in few.captured_queries]
    # a pane's details (clicked): the same reads, whichever target and however many cycles
    last = Enrolment.objects.filter(customer=big).order_by("-target_group_id").first()
    url = f"/care/customers/{big.pk}/milestones/{last.target_group.targets.get().pk}/"
    with django_assert_max_num_queries(len(few)):
        fragment = client.get(url)
    assert fragment.content.decode().count('<li class="mc-cycle ') == 12


# --- insights ------------------------------------------------------------------------------


def test_insights_show_enrolment_rates_distribution_and_sub_target_reach(
    admin_client_for, configurer, tracked, spend, org, months, post, track
):
    # a second customer: 600 in the first cycle (60%), nothing since
    post(txn(20, local(org, months[0] + timedelta(days=2)), 600, mobile="9000000002"))
    track()
    html = admin_client_for(configurer).get(f"/care/milestones/{spend.pk}/insights/", {"cycle": 1}).content.decode()  # fmt: skip
    text = text_of(html)
    assert re.search(r'id="ins-enrolled">2<', html)
    assert "Enrolled customers" in text and "6 Cycles" in text
    rates = re.findall(r"<tr class=\"ins-row-(\w+)[^\"]*\"><td>([^<]+)</td><td>[^<]+</td><td>([^<]+)</td><td>([^<]+)</td>", html)  # fmt: skip
    assert [(s, a, r) for s, _, a, r in rates[:4]] == [
        ("completed", "1 of 2", "50.0%"), ("completed", "0 of 2", "0.0%"),
        ("completed", "0 of 2", "0.0%"), ("ongoing", "0 of 2", "0.0%")]  # fmt: skip
    buckets = dict(re.findall(r'<tr class="ins-bucket-(\w+)"><th>[^<]+</th><td>(\d+)</td>', html))
    assert buckets == {"b0": "0", "b25": "0", "b50": "1", "b75": "0", "hit": "1"}
    assert "Spend 20% 20% of the target 2 (100.0%)" in text
    assert "Spend 50% 50% of the target 2 (100.0%)" in text
    assert html.count('<svg class="ins-chart') == 4
    assert 'aria-label="Achievement rate per cycle: Monthly spend"' in html
    assert "The leaderboard is not enabled for this milestone." in text


def test_insights_count_the_awards_paid_in_each_cycle(admin_client_for, configurer, tracked, spend):
    promotion = PromotionFactory(
        organisation=spend.organisation, name="Gold", start=spend.start, end=spend.end,
        condition="currentEvent.isTargetAchievedEvent == true", actions=[],
    )  # fmt: skip
    events = list(TargetEvent.objects.filter(customer=tracked, target_group=spend).order_by("id"))
    for i, (event, status, points) in enumerate([(events[0], "done", 50), (events[1], "done", 70),
                                                 (events[2], "failed", None)]):  # fmt: skip
        AwardFactory(event=event, promotion=promotion, action_index=i, status=status, points=points)
    html = admin_client_for(configurer).get(f"/care/milestones/{spend.pk}/insights/").content.decode()  # fmt: skip
    awards = html[html.index('class="ins-awards') :]
    rows = re.findall(r"<tr><td>([^<]+)</td><td>(\d+)</td><td>([^<]+)</td></tr>", awards)
    by_cycle = {ordinal: (n, pts) for ordinal, (_, n, pts) in enumerate(rows, start=1)}
    cycle = events[0].cycle_ordinal
    assert all(e.cycle_ordinal == cycle for e in events[:3])
    assert by_cycle[cycle] == ("2", "120")  # the failed one is not paid
    assert 'aria-label="Awards paid per cycle"' in awards


def test_insights_default_to_the_ongoing_cycle(admin_client_for, configurer, tracked, spend):
    html = admin_client_for(configurer).get(f"/care/milestones/{spend.pk}/insights/").content.decode()  # fmt: skip
    name = spend.periods.get(ordinal=4).name
    assert f"{name} Cycle shown below" in text_of(html)
    buckets = dict(re.findall(r'<tr class="ins-bucket-(\w+)"><th>[^<]+</th><td>(\d+)</td>', html))
    assert buckets == {"b0": "0", "b25": "1", "b50": "0", "b75": "0", "hit": "0"}


def test_the_leaderboard_lists_the_top_customers_of_the_cycle_with_shared_ranks(
    admin_client_for, configurer, make_group, months, post, track, org, stores
):
    group = make_group(
        "Board",
        start=months[0],
        end=add_months(months[0], 6) - timedelta(days=1),
        cycle={"type": "fixed_calendar", "frequency": "monthly", "start": months[0], "count": 6},
        leaderboard_enabled=True,
    )
    base = months[0] + timedelta(days=3)
    amounts = [500, 900, 900, 1200] + [10 * i for i in range(1, 10)]
    post(*[txn(i, local(org, base, 8 + i % 10), a, mobile=f"90000001{i:02d}") for i, a in enumerate(amounts)])  # fmt: skip
    track()
    html = admin_client_for(configurer).get(f"/care/milestones/{group.pk}/insights/", {"cycle": 1}).content.decode()  # fmt: skip
    board = html[html.index('class="ins-table ins-board"') :]
    rows = re.findall(r"<tr([^>]*)><td>(\d+)</td><td>([^<]+)</td><td>([^<]+)</td>", board)
    assert len(rows) == 10
    assert [(r, a) for _, r, _, a in rows[:5]] == [
        ("1", "1,200"), ("2", "900"), ("2", "900"), ("4", "500"), ("5", "90")]  # fmt: skip
    first = Customer.objects.get(mobile="9000000103")
    assert rows[0][2] == f"Customer #{first.pk}" and "ins-board-achieved" in rows[0][0]
    assert "ins-board-achieved" not in rows[1][0]
    # the two customers on 900 are listed in the order they got there (bills at 9:00 and 10:00)
    assert [c for _, _, c, _ in rows[1:3]] == [
        f"Customer #{Customer.objects.get(mobile=m).pk}" for m in ("9000000101", "9000000102")]  # fmt: skip


def test_the_svg_charts_are_drawn_from_the_numbers():
    svg = column_chart(
        [Bar("Jan", 50, "50%"), Bar("Feb", 100, "100%")], title="Rate", max_value=100
    )
    heights = [int(h) for h in re.findall(r'class="ins-bar"[^>]* height="(\d+)"', svg)]
    assert heights[1] == 2 * heights[0] > 0
    assert "<title>Rate</title>" in svg and ">50%</text>" in svg and ">Feb</text>" in svg
    rows = row_chart([Bar("<b>x</b>", 0), Bar("y", 3)], title="Dist")
    widths = [int(w) for w in re.findall(r'class="ins-bar"[^>]* width="(\d+)"', rows)]
    assert widths[0] == 0 and widths[1] > 0
    assert "&lt;b&gt;x&lt;/b&gt;" in rows and "<b>" not in rows


# --- uploads and progress pages ------------------------------------------------------------


def test_a_configurer_uploads_a_custom_list_and_is_sent_to_its_progress_page(
    admin_client_for, configurer, make_group, months, django_capture_on_commit_callbacks
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    group = make_group(
        "Listed",
        start=months[3],
        end=add_months(months[3], 2) - timedelta(days=1),
        cycle={"type": "fixed_calendar", "frequency": "monthly", "start": months[3], "count": 2},
        enrolment={"mode": "custom_list"},
        target_value_mode="per_customer",
    )
    client = admin_client_for(configurer)
    form = client.get(f"/care/milestones/{group.pk}/imports/")
    assert "Upload a custom list" in text_of(form.content.decode())
    csv = SimpleUploadedFile("list.csv", b"mobile,P1,P2\n9000000001,100,200\n", "text/csv")
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = client.post(f"/care/milestones/{group.pk}/imports/", {"file": csv, "identifier_type": "mobile", "send_trigger": "on"})  # fmt: skip
    job = ImportJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/care/imports/{job.pk}/"
    assert len(queued) == 1  # the import task, queued after commit
    import_job_run(import_id=job.pk)  # as the worker would
    job.refresh_from_db()
    assert job.status == "done" and job.newly_enrolled == 1
    html = client.get(response["Location"]).content.decode()
    assert f'data-status-url="/api/v1/imports/{job.pk}/"' in html
    assert "Customers enrolled" in html and "membercare/progress.js" in html
    listing = text_of(client.get(f"/care/milestones/{group.pk}/imports/").content.decode())
    assert "list.csv Done 1 / 1 1 0" in listing


def test_an_upload_to_a_milestone_not_enrolled_by_list_is_refused(
    admin_client_for, configurer, spend
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client = admin_client_for(configurer)
    csv = SimpleUploadedFile("list.csv", b"mobile,P1\n9000000001,100\n", "text/csv")
    response = client.post(f"/care/milestones/{spend.pk}/imports/", {"file": csv, "identifier_type": "mobile"})  # fmt: skip
    assert response.status_code == 200 and not ImportJob.objects.exists()
    assert "custom lists are uploaded only to milestones enrolled by custom list" in text_of(response.content.decode())  # fmt: skip


def test_a_run_progress_page_polls_the_runs_status_in_the_api(
    admin_client_for, configurer, member_care, spend, other_configurer
):
    run = ReprocessRunFactory(target_group=spend, status="running", total=40, processed=10)
    client = admin_client_for(configurer)
    html = client.get(f"/care/runs/reprocess/{run.pk}/").content.decode()
    assert f'data-status-url="/api/v1/reprocess-runs/{run.pk}/"' in html
    assert f"Reprocessing #{run.pk} — Spend" in text_of(html)
    assert "Running 10 / 40 customers" in text_of(html)
    body = client.get(f"/api/v1/reprocess-runs/{run.pk}/").json()  # what the bar reads
    assert (body["status"], body["total"], body["processed"]) == ("running", 40, 10)
    assert client.get("/care/runs/nonsense/1/").status_code == 404
    assert admin_client_for(member_care).get(f"/care/runs/reprocess/{run.pk}/").status_code == 403
    assert admin_client_for(other_configurer).get(f"/care/runs/reprocess/{run.pk}/").status_code == 404  # fmt: skip
