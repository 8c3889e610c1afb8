"""Every metric's written definition, in one place, versioned.

Pages show the definition beside the number, downloads carry it in their data dictionary,
goals refer to a metric by its key. Changing how a metric is computed means changing its
text here and raising its `version` (and DEFINITIONS_VERSION), so a published figure can
always be read against the definition it was computed with.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from flask_babel import lazy_gettext as _l

DEFINITIONS_VERSION = 1


class Unit(enum.StrEnum):
    COUNT = "count"
    SHARE = "share"  # a fraction from 0 to 1, shown as a percentage
    HOURS = "hours"

    @property
    def title(self) -> str:
        return str(UNIT_TITLES[self])


UNIT_TITLES = {
    Unit.COUNT: _l("number"),
    Unit.SHARE: _l("percentage"),
    Unit.HOURS: _l("hours"),
}


@dataclass(frozen=True)
class Metric:
    key: str
    title: object
    definition: object
    unit: Unit
    version: int = 1
    # Higher is better (True), lower is better (False), or neither (None: a volume).
    higher_is_better: bool | None = None
    # A goal can be set on it (distributions such as decline reasons cannot).
    goal: bool = True


# Shown once above every table of referral metrics: what is counted.
REFERRAL_SCOPE_NOTE = _l(
    "Counted over referrals sent in the chosen period (by the date they were sent, in the "
    "city's time zone); referrals marked entered in error are left out."
)

METRICS: tuple[Metric, ...] = (
    Metric(
        "referrals_sent",
        _l("Referrals sent"),
        _l("Referrals a responder sent to a program in the period."),
        Unit.COUNT,
    ),
    Metric(
        "accepted_share",
        _l("Accepted"),
        _l(
            "Referrals the program accepted, divided by referrals sent. Referrals still "
            "waiting for an answer count as not accepted."
        ),
        Unit.SHARE,
        higher_is_better=True,
    ),
    Metric(
        "accepted_within_target_share",
        _l("Accepted within the response target"),
        _l(
            "Referrals accepted within the program's response target (or the number of "
            "hours a goal sets), counted from the moment the referral was sent, divided by "
            "referrals sent."
        ),
        Unit.SHARE,
        higher_is_better=True,
    ),
    Metric(
        "accept_hours_median",
        _l("Median time to accept"),
        _l(
            "Half of the accepted referrals were accepted within this many hours of being "
            "sent (the median; hours on the clock, nights and weekends included)."
        ),
        Unit.HOURS,
        higher_is_better=False,
    ),
    Metric(
        "accept_hours_p90",
        _l("Time to accept, 90th percentile"),
        _l(
            "Nine in ten accepted referrals were accepted within this many hours of being "
            "sent (hours on the clock, nights and weekends included)."
        ),
        Unit.HOURS,
        higher_is_better=False,
    ),
    Metric(
        "decline_reasons",
        _l("Decline reasons"),
        _l(
            "Declined referrals by the reason the program gave, each as a share of all "
            "declined referrals."
        ),
        Unit.COUNT,
        goal=False,
    ),
    Metric(
        "handoff_completion",
        _l("Handoff completion"),
        _l(
            "Referrals where the program confirmed it received the person in person (the "
            "warm handoff), divided by referrals the program accepted. Accepted referrals "
            "still under way count as not handed off."
        ),
        Unit.SHARE,
        higher_is_better=True,
    ),
    Metric(
        "handoff_hours_median",
        _l("Median time from referral to handoff"),
        _l(
            "Half of the completed handoffs happened within this many hours of the referral "
            "being sent (the median)."
        ),
        Unit.HOURS,
        higher_is_better=False,
    ),
    Metric(
        "no_show_share",
        _l("Did not arrive"),
        _l("Accepted referrals that ended with the person not arriving, divided by accepted."),
        Unit.SHARE,
        higher_is_better=False,
    ),
    Metric(
        "ride_on_time_share",
        _l("Rides on time"),
        _l(
            "Rides to the program that picked the person up within the planned pickup "
            "window, divided by rides to the program that picked the person up and had a "
            "planned window. Return trips are not counted."
        ),
        Unit.SHARE,
        higher_is_better=True,
    ),
    Metric(
        "escalations",
        _l("Escalations"),
        _l(
            "Referrals not answered within the program's response target, so that the "
            "coordinator and the responder were alerted."
        ),
        Unit.COUNT,
        higher_is_better=False,
    ),
    Metric(
        "escalation_share",
        _l("Escalated"),
        _l("Escalated referrals divided by referrals sent."),
        Unit.SHARE,
        higher_is_better=False,
    ),
    Metric(
        "outcomes",
        _l("Outcomes"),
        _l(
            "Completed referrals by the outcome the program recorded (enrolled, housed, "
            "services delivered, ...), each as a share of all completed referrals."
        ),
        Unit.COUNT,
        goal=False,
    ),
    Metric(
        "unmet_need_share",
        _l("Screenings with no program available"),
        _l(
            "Screenings in which no program the person qualified for was open at that hour "
            "and taking referrals, divided by all screenings. Screenings are recorded "
            "without anything that identifies the person: the needs, the ZIP code, the "
            "hour of the week. A person screened twice counts twice."
        ),
        Unit.SHARE,
        higher_is_better=False,
        goal=False,
    ),
)

DEFINITIONS: dict[str, Metric] = {m.key: m for m in METRICS}
GOAL_METRICS: tuple[Metric, ...] = tuple(m for m in METRICS if m.goal)


def get(key: str) -> Metric:
    """The definition of one metric; KeyError for an unknown key."""
    return DEFINITIONS[key]
