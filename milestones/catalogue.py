"""The KPI catalogue and the limits of a milestone's configuration.

What each KPI can be tracked on, the customer-level events, and how big a milestone may
be: read alike by the configuration rules (`milestones.services.target_groups`), the admin
forms and the API's serializers, so a limit is written once.
"""

from .models import Entity, Kpi

MAX_CYCLES = 100
MAX_CYCLE_DAYS = 3660  # "every N days": N at most
MAX_TARGETS = 50
MAX_OFFSET_DAYS = 365  # days between a cycle's end and its evaluation
BACKDATE_MONTHS = 6  # how far in the past a milestone made in the screens may start

#: What each KPI may be tracked on; the first is the default.
KPI_ENTITIES: dict[str, tuple[str, ...]] = {
    Kpi.GROSS_SALES: (Entity.TRANSACTION, Entity.LINE_ITEM),
    Kpi.NET_SALES: (Entity.TRANSACTION, Entity.LINE_ITEM),
    Kpi.QUANTITY: (Entity.LINE_ITEM, Entity.TRANSACTION),
    Kpi.TRANSACTION_COUNT: (Entity.TRANSACTION,),
    Kpi.DAYS_OF_ACTIVITY: (Entity.TRANSACTION,),
    Kpi.EXTENDED_FIELD_COUNT: (Entity.TRANSACTION, Entity.LINE_ITEM),
    Kpi.EXTENDED_FIELD_SUM: (Entity.TRANSACTION, Entity.LINE_ITEM),
    Kpi.POINTS: (Entity.POINTS,),
    Kpi.EVENT_COUNT: (Entity.EVENT,),
    Kpi.EVENT_DAYS: (Entity.EVENT,),
    Kpi.EVENT_SUM: (Entity.EVENT,),
    Kpi.EVENT_DAILY_MAX_SUM: (Entity.EVENT,),
    Kpi.CUSTOMER_EVENT_COUNT: (Entity.CUSTOMER_EVENT,),
    Kpi.CUSTOMER_EVENT_DAYS: (Entity.CUSTOMER_EVENT,),
    Kpi.MILESTONES_ACHIEVED: (Entity.MILESTONE,),
}
#: The customer-level events a `customer_event_*` KPI (and a customer_event activity) names.
CUSTOMER_EVENTS = (
    "points_redemption",
    "coupon_redemption",
    "return",
    "points_transfer",
    "transaction_update",
    "profile_update",
    "promised_points_conversion",
    "redemption_reversal",
    "referral",
)
#: KPIs whose sub-targets may be a percentage of the target.
PERCENTAGE_KPIS = (Kpi.GROSS_SALES, Kpi.NET_SALES)

#: What tracking counts may not change once a milestone has started: the progress and the
#: payouts made so far would stop meaning what they meant.
LOCKED_WHEN_LIVE = {
    "kpi": "the KPI (kpi)",
    "entity": "what it is tracked on (entity)",
    "event_name": "the event name (event_name)",
}
#: A change of any of these to an existing target changes what the stored activities count
#: for: the edit suggests re-processing them.
REPROCESS_FIELDS = ("rule", "scope_stores", "scope_zones", "scope_concepts", "kpi", "entity")
