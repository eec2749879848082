"""The profiles of the rule language, their attributes and where each may be used."""

from __future__ import annotations

from dataclasses import dataclass

# Static types used by validation: "number", "string", "bool", "list", "map", "dyn".


@dataclass(frozen=True, slots=True)
class Attribute:
    name: str  # as written in rules (camelCase)
    type: str
    keys: tuple[str, ...]  # keys looked up, in order, in the context's dict
    doc: str


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    attributes: dict[str, Attribute]
    methods: dict[str, str]  # method name -> result type (receiver-style calls)
    doc: str


def _attrs(*rows: tuple[str, str, tuple[str, ...], str]) -> dict[str, Attribute]:
    return {name: Attribute(name, typ, keys, doc) for name, typ, keys, doc in rows}


TXN = "currentTxn"
LINE_ITEM = "currentLineItem"
EVENT = "currentEvent"
CUSTOMER = "currentCustomer"

PROFILES: dict[str, Profile] = {
    TXN: Profile(
        TXN,
        _attrs(
            ("value", "number", ("value", "gross"), "bill amount (the gross amount)"),
            ("gross", "number", ("gross", "value"), "gross amount, before discounts"),
            ("discount", "number", ("discount",), "discount on the bill"),
            ("net", "number", ("net",), "net amount (gross - discount)"),
            ("store", "string", ("store", "store_code", "storeCode"), "store code"),
            ("zone", "string", ("zone",), "zone of the store"),
            ("concept", "string", ("concept",), "concept of the store"),
            ("billNumber", "string", ("billNumber", "bill_number"), "bill number"),
            (
                "lineItemCount",
                "number",
                ("lineItemCount", "line_item_count"),
                "number of line items in the bill",
            ),
            (
                "extendedFields",
                "map",
                ("extendedFields", "extended_fields"),
                "transaction extended fields (name -> value)",
            ),
        ),
        {},
        "the transaction being tracked",
    ),
    LINE_ITEM: Profile(
        LINE_ITEM,
        _attrs(
            ("sku", "string", ("sku", "item_code", "itemCode"), "item code"),
            ("category", "string", ("category",), "item category"),
            ("quantity", "number", ("quantity", "qty"), "quantity"),
            ("value", "number", ("value", "gross"), "line amount (the gross amount)"),
            ("gross", "number", ("gross", "value"), "gross amount, before discounts"),
            ("discount", "number", ("discount",), "discount on the line"),
            ("net", "number", ("net",), "net amount (gross - discount)"),
            (
                "extendedFields",
                "map",
                ("extendedFields", "extended_fields"),
                "line-item extended fields (name -> value)",
            ),
        ),
        {},
        "the line item being tracked (line-item entity only)",
    ),
    EVENT: Profile(
        EVENT,
        _attrs(
            ("name", "string", ("name",), "event name, e.g. a behavioural event's name"),
            ("attributes", "map", ("attributes",), "event attributes (name -> value)"),
            (
                "isTargetAchievedEvent",
                "bool",
                ("is_target_achieved_event", "isTargetAchievedEvent"),
                "true for the immediate 'target achieved' event, false at the cycle's end",
            ),
            (
                "isNearMissEvent",
                "bool",
                ("is_near_miss_event", "isNearMissEvent"),
                "true for a near-miss event: close to the target near the cycle's end",
            ),
            (
                "milestoneValueDefined",
                "number",
                ("milestone_value_defined", "milestoneValueDefined"),
                "value of the sub-target that triggered the event (null if none)",
            ),
            (
                "targetMilestoneTrigger",
                "list",
                ("target_milestone_trigger", "targetMilestoneTrigger"),
                "names of the sub-targets that triggered the event",
            ),
            ("targetName", "string", ("target_name", "targetName"), "the event's target"),
            ("targetPeriod", "string", ("target_period", "targetPeriod"), "the cycle's name"),
        ),
        {
            "targetAchieved": "number",
            "targetDefined": "number",
            "targetExists": "bool",
            "targetGaps": "number",
        },
        "the activity being evaluated (behavioural or target event)",
    ),
    CUSTOMER: Profile(
        CUSTOMER,
        _attrs(
            ("mobile", "string", ("mobile",), "mobile number"),
            ("email", "string", ("email",), "email address"),
            ("externalId", "string", ("externalId", "external_id"), "external id"),
            ("name", "string", ("name",), "name"),
            ("attributes", "map", ("attributes",), "customer attributes (name -> value)"),
        ),
        {},
        "the customer",
    ),
}

PURPOSES = ("target", "promotion")

#: Profiles available in a target's rule box, by tracked entity.
ENTITY_PROFILES: dict[str | None, frozenset[str]] = {
    None: frozenset(PROFILES),
    "transaction": frozenset((TXN, CUSTOMER)),
    "line_item": frozenset((TXN, LINE_ITEM, CUSTOMER)),
    "event": frozenset((EVENT, CUSTOMER)),
    "customer_event": frozenset((EVENT, CUSTOMER)),
    "points": frozenset((TXN, EVENT, CUSTOMER)),
    "milestone": frozenset((EVENT, CUSTOMER)),
}

ENTITY_LABELS = {
    "transaction": "transactions",
    "line_item": "line items",
    "event": "behavioural events",
    "customer_event": "customer-level events",
    "points": "points",
    "milestone": "milestones achieved",
}

TENDER_MESSAGE = (
    "Tender-based rules are not supported in the rule box of milestones. For use cases "
    "related to tender-based rules, please reach out to a member of the product team."
)

LINE_ITEM_MESSAGE = (
    "Line-item rules (currentLineItem) need the line-item entity: select line item as the "
    "target's entity to write rules on currentLineItem"
)


def is_tender_name(name: str) -> bool:
    """Whether a profile or attribute name refers to tenders (payment modes)."""
    lowered = name.lower()
    return "tender" in lowered or lowered.startswith("payment")
