"""The screener: questions as data, typed, translatable and versioned.

Criteria refer to questions by `code`. A question's options are the values answers and
rules use; their labels are for people. Changing a code or an option value breaks stored
rules and answers, so it needs a new SCREENER_VERSION and a data migration.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from flask_babel import lazy_gettext as _l

SCREENER_VERSION = 1


class QType(enum.StrEnum):
    INTEGER = "integer"
    YES_NO = "yes_no"
    ONE_OF = "one_of"
    MANY_OF = "many_of"
    LOCATION = "location"


@dataclass(frozen=True)
class Option:
    value: str
    label: object


@dataclass(frozen=True)
class Question:
    code: str
    type: QType
    label: object
    help: object = ""
    options: tuple[Option, ...] = field(default_factory=tuple)
    minimum: int | None = None
    maximum: int | None = None
    optional_note: bool = False  # shown as "optional" to reassure the person being asked

    @property
    def values(self) -> set[str]:
        return {o.value for o in self.options}

    def option_label(self, value: object) -> str:
        for option in self.options:
            if option.value == value:
                return str(option.label)
        return str(value)


CATEGORY_OPTIONS = (
    Option("housing", _l("Housing or shelter")),
    Option("employment", _l("Work or job training")),
    Option("diversion", _l("Help with a criminal charge (diversion)")),
    Option("victim_services", _l("Support after a crime")),
    Option("behavioral_health", _l("Mental health or substance use")),
    Option("food", _l("Food")),
    Option("legal", _l("Legal help")),
)

LANGUAGE_OPTIONS = (
    Option("en", "English"),
    Option("es", "Español"),
    Option("so", "Soomaali"),
    Option("hmn", "Hmoob"),
    Option("om", "Afaan Oromoo"),
    Option("am", "አማርኛ"),
    Option("vi", "Tiếng Việt"),
    Option("asl", _l("American Sign Language")),
    Option("other", _l("Another language")),
)

QUESTIONS: tuple[Question, ...] = (
    Question(
        "needs",
        QType.MANY_OF,
        _l("What does the person need help with?"),
        _l("Choose all that apply."),
        CATEGORY_OPTIONS,
    ),
    Question(
        "age",
        QType.INTEGER,
        _l("Age"),
        _l("In years. An estimate is fine."),
        minimum=0,
        maximum=120,
    ),
    Question("language", QType.ONE_OF, _l("Preferred language"), options=LANGUAGE_OPTIONS),
    Question(
        "location",
        QType.LOCATION,
        _l("Where is the person now?"),
        _l("An address, intersection, place name, ZIP code, or use this phone's location."),
    ),
    Question(
        "household",
        QType.ONE_OF,
        _l("Household"),
        options=(
            Option("alone", _l("Alone")),
            Option("with_children", _l("With children")),
            Option("with_partner", _l("With a partner, no children")),
            Option("with_adults", _l("With other adults")),
        ),
    ),
    Question("veteran", QType.YES_NO, _l("Is the person a veteran?")),
    Question("unsheltered", QType.YES_NO, _l("Is the person without a place to stay tonight?")),
    Question(
        "justice_status",
        QType.ONE_OF,
        _l("Justice involvement"),
        options=(
            Option("none", _l("None")),
            Option("arrested_not_charged", _l("Arrested, not charged")),
            Option("charged_misdemeanor", _l("Charged with a misdemeanor")),
            Option("charged_felony", _l("Charged with a felony")),
            Option("probation_parole", _l("On probation or parole")),
        ),
    ),
    Question(
        "crime_type",
        QType.ONE_OF,
        _l("Crime the person experienced"),
        _l("Only if they were harmed by a crime."),
        options=(
            Option("none", _l("None")),
            Option("property", _l("Property crime")),
            Option("assault", _l("Assault")),
            Option("robbery", _l("Robbery")),
            Option("domestic", _l("Domestic violence")),
            Option("sexual", _l("Sexual violence")),
            Option("gun_violence", _l("Gun violence")),
            Option("other", _l("Other crime")),
        ),
    ),
    Question("charges_filed", QType.YES_NO, _l("Have charges been filed against the offender?")),
    Question(
        "mental_health_crisis",
        QType.YES_NO,
        _l("Is the person in a mental health or substance use crisis now?"),
    ),
    Question(
        "gender",
        QType.ONE_OF,
        _l("Gender"),
        _l("Optional. Ask only if a program needs it."),
        options=(
            Option("woman", _l("Woman")),
            Option("man", _l("Man")),
            Option("nonbinary", _l("Non-binary")),
            Option("another", _l("Another gender")),
        ),
        optional_note=True,
    ),
)

BY_CODE: dict[str, Question] = {q.code: q for q in QUESTIONS}


def question(code: str) -> Question:
    """Look up a question by code; KeyError for an unknown one."""
    return BY_CODE[code]
