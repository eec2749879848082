"""The simulation's crossing test, without event objects, decides what tracking's
`events.crossings` decides, for any step of any target value and sub-targets."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from evaluation.config_cache import GroupConfig, TargetConfig
from evaluation.events import crossings
from milestones.models import Organisation, SubTarget, Target, TargetGroup
from simulations.fold import crossed, stored

amounts = st.decimals(min_value=0, max_value=10_000, places=4, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(
    defined=amounts,
    old=amounts,
    step=st.decimals(min_value=-500, max_value=5_000, places=4, allow_nan=False),
    subs=st.lists(
        st.tuples(
            st.sampled_from(["percentage", "absolute"]),
            st.decimals(min_value=Decimal("0.0001"), max_value=100, places=4),
        ),
        max_size=4,
    ),  # fmt: skip
    reached_before=st.booleans(),
    award_switch=st.booleans(),
)
def test_crossed_decides_what_crossings_writes(
    defined, old, step, subs, reached_before, award_switch
):
    group = TargetGroup(id=7, name="G")
    target = Target(id=3, name="T", kpi="gross_sales", entity="transaction", value=defined,
                    target_group=group)  # fmt: skip
    sub_targets = [
        SubTarget(id=i + 1, target=target, name=f"S{i}", criteria=c, value=v)
        for i, (c, v) in enumerate(subs)
    ]
    tcfg = TargetConfig(target=target, group=GroupConfig(group=group, periods=[]), rule=None,
                        subs=sub_targets)  # fmt: skip
    org = Organisation(id=1, award_when_target_achieved=award_switch)
    achieved_at = "earlier" if reached_before else None
    new = old + step
    written, reached = crossings(
        org=org, customer_id=5, tcfg=tcfg, ordinal=1, defined=defined, old=old, new=new,
        at=None, achieved_at=achieved_at,
    )  # fmt: skip
    subs_passed, reached_too = crossed(tcfg, defined, old, new, achieved_at)
    assert reached_too == reached
    assert [s.id for s in subs_passed] == [e.sub_target_id for e in written if e.sub_target_id]


def test_stored_keeps_four_places_as_the_row_does():
    assert stored(Decimal("12.5")) == Decimal("12.5")
    assert stored(Decimal("0.00005")) in (Decimal("0.0001"), Decimal("0.0000"))
    assert stored(0) == 0
