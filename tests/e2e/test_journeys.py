"""Issue 18's numbered problems that are fixed, walked through in Chromium as the product's
users meet them, asserting what the pages show: (1) plain numbers, (6) one labelled time zone,
(7) deactivation asks first, (10) member care is the agent's home, (11) API docs a newcomer
can follow. Each journey saves screenshots as test-artifacts/screenshots/issue18-*.png.

One live server and the demo data (milestones.demo.load_demo, organisation "demo" in
Asia/Kolkata) for the whole module; each journey works on its own demo milestone.
"""

import re
from zoneinfo import ZoneInfo

from django.utils import formats, timezone
from playwright.sync_api import expect

from enrolment.models import Customer
from milestones.models import AuditEntry, TargetGroup
from milestones.services.target_groups import target_group_update
from promotions.models import Award

from .conftest import DEMO_PASSWORDS

KOLKATA = ZoneInfo("Asia/Kolkata")
SCIENTIFIC = re.compile(r"\d[eE][+-]?\d")  # 1E+4, 5E+1, 1.2E+4


def group_named(org, name: str) -> TargetGroup:
    return TargetGroup.objects.get(organisation=org, name=name)


def view_url(server, group, tab: str = "configuration") -> str:
    return f"{server.url}/admin/milestones/targetgroup/{group.pk}/view/?tab={tab}"


def row(page, label: str):
    """The value cell of a `<th>label</th><td>value</td>` row of the view page."""
    return page.locator(f'table.ms-props tr:has(> th:text-is("{label}")) > td')


# --- (1) numbers in scientific notation ----------------------------------------------------


def test_1_a_live_milestone_shows_plain_numbers_in_view_edit_and_history(
    demo, module_server, page_as, screenshot
):
    group = group_named(demo, "Demo: boost spend")  # Monthly spend 10000, sub-targets 20 % / 50 %
    target = group.targets.get()
    assert group.status() == "live"
    page = page_as("configurer")

    page.goto(view_url(module_server, group))
    content = page.locator("#content-main")
    expect(row(page, "Target value")).to_have_text(re.compile(r"^(10,000|10000)\b"))
    subs = row(page, "Sub-targets").locator("li")
    expect(subs).to_have_text(
        ["Spend 20%: 20% of the target (2000)", "Spend 50%: 50% of the target (5000)"]
    )
    assert not SCIENTIFIC.search(content.inner_text())
    screenshot(page, "issue18-01-plain-numbers-view")

    page.get_by_role("link", name="Edit", exact=True).click()
    expect(page).to_have_url(re.compile(rf"/targetgroup/{group.pk}/change/$"))
    values = page.locator("#content-main").evaluate(
        "el => [...el.querySelectorAll('input:not([type=hidden]), textarea')].map(i => i.value)"
    )
    assert "10000" in values and "50" in values and "20" in values, values
    assert not [v for v in values if SCIENTIFIC.search(v)], values
    screenshot(page, "issue18-02-plain-numbers-edit")

    # the configurer raises the target and the second sub-target (the service the form calls)
    subs_by_name = {s.name: s for s in target.sub_targets.all()}
    target_group_update(
        target_group=group, user=group.created_by, via_api=True,
        data={"targets": [{"id": target.pk, "value": 12000, "sub_targets": [
            {"id": subs_by_name["Spend 20%"].pk, "name": "Spend 20%", "criteria": "percentage", "value": 20},
            {"id": subs_by_name["Spend 50%"].pk, "name": "Spend 50%", "criteria": "percentage", "value": 60},
        ]}]},
    )  # fmt: skip

    page.goto(view_url(module_server, group, "history"))
    history = page.locator("#tab-history table.ms-history")
    changes = history.locator("tbody tr").first.locator("td").nth(3)
    expect(changes).to_contain_text("10000 → 12000")
    expect(changes).to_contain_text("60")
    text = history.inner_text()
    assert not SCIENTIFIC.search(text) and "10000.0000" not in text, text
    screenshot(page, "issue18-03-plain-numbers-history")

    page.goto(view_url(module_server, group))
    expect(row(page, "Target value")).to_have_text(re.compile(r"^(12,000|12000)\b"))
    expect(subs.nth(1)).to_have_text("Spend 50%: 60% of the target (7200)")


# --- (6) time zones mixed and mislabelled ---------------------------------------------------


def test_6_times_on_the_view_page_and_the_awards_ledger_are_in_the_organisations_zone(
    demo, module_server, page_as, screenshot
):
    group = group_named(demo, "Demo: festive seasons")
    page = page_as("configurer")

    page.goto(view_url(module_server, group, "information"))
    expect(page.locator("#tz-label")).to_have_text("Times in Asia/Kolkata")
    created = timezone.localtime(group.created_at, KOLKATA)
    in_utc = timezone.localtime(group.created_at, ZoneInfo("UTC"))
    expect(row(page, "Created on")).to_have_text(f"{created:%d %b %Y %H:%M} (Asia/Kolkata)")
    assert f"{in_utc:%H:%M}" not in row(page, "Created on").inner_text()
    screenshot(page, "issue18-04-times-view-information")

    page.goto(view_url(module_server, group, "history"))
    history = page.locator("#tab-history table.ms-history")
    expect(history.locator("thead th").first).to_have_text("When (Asia/Kolkata)")
    entry = AuditEntry.objects.filter(object_id=group.pk).order_by("-created_at").first()
    expect(history.locator("tbody tr").first.locator("td").first).to_have_text(
        f"{timezone.localtime(entry.created_at, KOLKATA):%d %b %Y %H:%M:%S}"
    )

    awards = list(Award.objects.filter(organisation=demo).order_by("-awarded_at", "-id"))
    assert awards, "the demo's promotions paid nothing"
    page.goto(f"{module_server.url}/admin/promotions/award/")
    expect(page.locator("#tz-label")).to_have_text("Times in Asia/Kolkata")
    table = page.locator("#result_list")
    expect(table.locator("thead")).to_contain_text("Awarded at")
    for award in awards:
        id_cell = page.locator("th.field-id", has_text=re.compile(rf"^{award.pk}$"))
        cells = table.locator("tbody tr").filter(has=id_cell)
        shown = formats.localize(timezone.localtime(award.awarded_at, KOLKATA))
        utc = formats.localize(timezone.localtime(award.awarded_at, ZoneInfo("UTC")))
        expect(cells.locator("td.field-awarded_at")).to_have_text(shown)
        assert shown != utc
    screenshot(page, "issue18-05-times-awards-ledger")


# --- (7) dead ends: deactivation in one click -------------------------------------------------


def test_7_deactivating_asks_for_confirmation_and_no_keeps_it_active(
    demo, module_server, page_as, screenshot
):
    group = group_named(demo, "Demo: 5 visits in 30 days")
    assert group.is_active
    page = page_as("configurer")
    page.goto(view_url(module_server, group))
    chips = page.locator("h1 .ms-chip")

    page.get_by_role("button", name="Deactivate").click()
    expect(page.locator("h1")).to_have_text("Deactivate Demo: 5 visits in 30 days?")
    expect(page.locator("#content-main")).to_contain_text("A deactivated milestone tracks nothing")
    expect(page.get_by_role("button", name="Yes, deactivate")).to_be_visible()
    screenshot(page, "issue18-06-deactivate-asks")
    group.refresh_from_db()
    assert group.is_active  # asking changed nothing

    page.get_by_role("link", name="No, keep it active").click()
    expect(page).to_have_url(re.compile(rf"/targetgroup/{group.pk}/view/$"))
    expect(chips.nth(1)).to_have_text("Active")
    expect(page.get_by_role("button", name="Deactivate")).to_be_visible()
    group.refresh_from_db()
    assert group.is_active

    page.get_by_role("button", name="Deactivate").click()
    page.get_by_role("button", name="Yes, deactivate").click()
    expect(page.locator("ul.messagelist")).to_contain_text("1 milestone deactivated.")
    expect(chips.nth(1)).to_have_text("Inactive")
    group.refresh_from_db()
    assert not group.is_active
    screenshot(page, "issue18-07-deactivated")

    page.get_by_role("button", name="Activate").click()  # activating needs no confirmation
    expect(chips.nth(1)).to_have_text("Active")
    group.refresh_from_db()
    assert group.is_active


# --- (10) agents land on the admin index, bare 403, flat pane list ---------------------------


def test_10_an_agent_signs_in_to_member_care_and_a_refusal_links_home(
    module_server, new_page, screenshot
):
    page = new_page()  # a fresh browser: the agent signs in through the login page
    page.goto(f"{module_server.url}/admin/login/")
    page.get_by_label("Username").fill("care")
    page.get_by_label("Password").fill(DEMO_PASSWORDS["care"])
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{module_server.url}/care/")
    expect(page.locator("h1")).to_have_text("Find a customer")
    care_link = page.locator("#header").get_by_role("link", name="Member care")
    expect(care_link).to_have_attribute("href", "/care/")
    screenshot(page, "issue18-08-agent-lands-on-member-care")

    response = page.goto(f"{module_server.url}/admin/milestones/targetgroup/")
    assert response.status == 403
    content = page.locator("#content-main")
    expect(page.locator("h1")).to_have_text("This page is not open to your role")
    expect(content).to_contain_text("You are signed in as care, with the role Member care.")
    expect(content).to_contain_text(
        "As a member-care agent you find customers and read their milestone timelines"
    )
    expect(page.locator("#header").get_by_role("link", name="Member care")).to_be_visible()
    screenshot(page, "issue18-09-branded-403")
    content.get_by_role("link", name="Go to your start page").click()
    expect(page).to_have_url(f"{module_server.url}/care/")
    expect(page.locator("h1")).to_have_text("Find a customer")


def test_10_care_panes_are_grouped_by_milestone_and_the_filter_box_filters_them(
    demo, module_server, page_as, screenshot
):
    meera = Customer.objects.get(organisation=demo, mobile__endswith="9000000003")
    page = page_as("care")
    page.goto(f"{module_server.url}/care/")
    page.get_by_label("Mobile, email or external id").fill(meera.mobile)
    page.get_by_role("button", name="Find").click()
    expect(page.locator(".mc-customer-name")).to_have_text("Meera")

    groups = page.locator("section.mc-pane-group")
    names = sorted(TargetGroup.objects.filter(organisation=demo).values_list("name", flat=True))
    expect(groups).to_have_count(len(names))
    assert sorted(groups.locator("h3").all_inner_texts()) == names  # one heading per milestone
    petrol = groups.filter(has_text="Demo: catalyze petrol")
    expect(petrol.locator("a.mc-pane .mc-pane-name")).to_have_text(["Petrol litres (demo)"])
    expect(groups.filter(has_text="Demo: festive seasons").locator(".mc-pane-name")).to_have_text(
        ["Festive net sales (demo)"]
    )
    screenshot(page, "issue18-10-care-panes-grouped")

    box = page.get_by_label("Filter by milestone or target")
    box.fill("petrol")
    expect(page.locator("a.mc-pane:visible .mc-pane-name")).to_have_text(["Petrol litres (demo)"])
    expect(page.locator("section.mc-pane-group:visible h3")).to_have_text(["Demo: catalyze petrol"])
    screenshot(page, "issue18-11-care-panes-filtered")
    box.fill("festive")  # a milestone's name matches all its panes
    expect(page.locator("a.mc-pane:visible .mc-pane-name")).to_have_text(["Festive net sales (demo)"])  # fmt: skip
    box.fill("no such thing")
    expect(page.locator("a.mc-pane:visible")).to_have_count(0)
    expect(page.locator(".mc-pane-none")).to_have_text("No milestone or target matches.")
    box.fill("")
    expect(page.locator("a.mc-pane:visible")).to_have_count(len(names))
    expect(page.locator(".mc-pane-none")).to_be_hidden()


# --- (11) the API docs ------------------------------------------------------------------------


def test_11_the_api_docs_show_a_quickstart_with_a_curl_example(module_server, new_page, screenshot):
    page = new_page()  # no sign-in: the docs are public
    page.goto(f"{module_server.url}/api/docs/")
    info = page.locator(".swagger-ui .info")
    expect(info.get_by_role("heading", name="Quickstart")).to_be_visible()
    expect(info).to_contain_text("Tracking is asynchronous.")
    first_batch = info.locator("pre", has_text="/api/v1/activities/")
    expect(first_batch).to_contain_text('curl -sS -X POST "$BASE/api/v1/activities/"')
    expect(first_batch).to_contain_text('-H "Authorization: Token $TOKEN"')
    expect(info.locator("pre", has_text="/milestones/")).to_contain_text("curl -sS")
    screenshot(page, "issue18-12-api-docs-quickstart")
