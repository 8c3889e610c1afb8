"""Forms for the directory pages: browse filters, listings, capacity, criteria, sites, hours.

The criteria builder lives here too: rows of (question, operator, value) to JsonLogic and
back. It only translates form input; the rules themselves are validated by the operations.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import time
from typing import Any

from babel.dates import get_day_names
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    EmailField,
    FieldList,
    FloatField,
    Form,
    FormField,
    IntegerField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    TelField,
    TextAreaField,
    TimeField,
    URLField,
)
from wtforms.validators import (
    URL,
    Email,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    Regexp,
)

from referral_hub.directory.models import CapacityStatus
from referral_hub.matching.questions import LANGUAGE_OPTIONS, QUESTIONS, QType
from referral_hub.web.forms import options

BUILDER_ROWS = 8
HOURS_ROWS = 7
LISTING_LANGUAGES = ("en", "es", "so", "hmn", "om", "am", "vi", "asl")
LANGUAGE_LABELS = {o.value: o.label for o in LANGUAGE_OPTIONS}


def mark_error(field, message) -> None:
    """Add a message beside a field (its errors may still be the unvalidated tuple)."""
    field.errors = [*list(field.errors or []), str(message)]


def sync_row_errors(rows: FieldList) -> None:
    """A FieldList keeps the errors of its last validation: add those marked since."""
    found = [row.errors for row in rows]
    rows.errors = found if any(found) else []


# --- browse --------------------------------------------------------------------------------


class BrowseForm(FlaskForm):
    """The directory filters; a GET form, so no CSRF token."""

    class Meta:
        csrf = False

    category = SelectMultipleField(_l("Category"), choices=[])
    language = SelectField(
        _l("Language served"),
        choices=lambda: (
            [("", _l("Any language"))] + [(c, LANGUAGE_LABELS[c]) for c in LISTING_LANGUAGES]
        ),
        default="",
    )
    open_now = BooleanField(_l("Open now"))
    near = StringField(
        _l("Near a place"),
        validators=[Optional(), Length(max=200)],
        description=_l("An address, place name, ZIP code, or “latitude, longitude”."),
    )


# --- listing and capacity ------------------------------------------------------------------


class CapacityForm(FlaskForm):
    """One tap: the pressed button names the status; open slots are optional."""

    status = SelectField(_l("Status"), choices=lambda: [(s.value, s.title) for s in CapacityStatus])
    open_slots = IntegerField(_l("Open slots"), validators=[Optional()])


LANGUAGE_MODES = (
    ("", _l("Not offered")),
    ("staff", _l("Staff speak it")),
    ("interpreter", _l("With an interpreter")),
)


class ProgramForm(FlaskForm):
    # Required fields and ranges are the operations' rules; the form only parses.
    organization_id = SelectField(_l("Organization"), coerce=int, choices=[])
    name = StringField(_l("Name"), validators=[Length(max=200)])
    categories = SelectMultipleField(_l("Categories"), choices=[])
    description = TextAreaField(_l("Description"), validators=[Length(max=5000)])
    eligibility_description = TextAreaField(
        _l("Who is eligible, in plain words"), validators=[Length(max=5000)]
    )
    response_target_hours = IntegerField(
        _l("Response target (hours)"),
        default=24,
        validators=[InputRequired()],
        description=_l("How soon you answer a referral, from 1 to 720 hours."),
    )
    accepts_responder_referrals = BooleanField(
        _l("Takes referrals directly from responders"), default=True
    )
    required_documents = TextAreaField(
        _l("Documents to bring"),
        validators=[Length(max=3000)],
        description=_l("One per line. Leave empty if none are needed."),
    )
    is_free = BooleanField(_l("Free of charge"), default=True)
    fee_description = StringField(
        _l("Fees"),
        validators=[Length(max=500)],
        description=_l("If not free: who pays and how much."),
    )
    phone = TelField(_l("Phone"), validators=[Length(max=40)])
    url = URLField(
        _l("Website"),
        validators=[
            Optional(),
            # URL() alone lets javascript://host/... through; links must be web addresses.
            Regexp(r"^https?://", flags=re.I, message=_l("Start the address with https://.")),
            URL(),
            Length(max=300),
        ],
    )
    email = EmailField(_l("E-mail"), validators=[Optional(), Email(), Length(max=254)])
    is_active = BooleanField(_l("Active: listed in the directory"), default=True)

    def language_fields(self):
        return [self[f"lang_{code}"] for code in LISTING_LANGUAGES]

    def fill_from(self, program) -> None:
        """Show a stored program in the fields that do not map one to one."""
        self.categories.data = [c.code for c in program.categories]
        self.required_documents.data = "\n".join(program.required_documents or [])
        modes = {pl.language: pl.mode.value for pl in program.languages}
        for code in LISTING_LANGUAGES:
            self[f"lang_{code}"].data = modes.get(code, "")

    def chosen_languages(self) -> list[tuple[str, str]]:
        return [
            (code, self[f"lang_{code}"].data)
            for code in LISTING_LANGUAGES
            if self[f"lang_{code}"].data
        ]

    def listing(self) -> dict[str, Any]:
        """The listing fields as the operations take them."""
        documents = (self.required_documents.data or "").splitlines()
        return {
            "name": self.name.data or "",
            "description": self.description.data or "",
            "eligibility_description": self.eligibility_description.data or "",
            "response_target_hours": self.response_target_hours.data,
            "accepts_responder_referrals": self.accepts_responder_referrals.data,
            "required_documents": [line.strip() for line in documents if line.strip()],
            "is_free": self.is_free.data,
            "fee_description": self.fee_description.data or "",
            "phone": self.phone.data or "",
            "url": self.url.data or "",
            "email": self.email.data or "",
            "is_active": self.is_active.data,
        }


for _code in LISTING_LANGUAGES:
    setattr(
        ProgramForm,
        f"lang_{_code}",
        SelectField(LANGUAGE_LABELS[_code], choices=options(LANGUAGE_MODES), default=""),
    )


# --- criteria: the rule builder ------------------------------------------------------------

OPERATORS = {  # builder operator -> JsonLogic operation
    "is": "==",
    "is_not": "!=",
    "at_least": ">=",
    "at_most": "<=",
    "more_than": ">",
    "under": "<",
    "includes": "in",
    "one_of": "in",
}
OPERATOR_CHOICES = [
    ("is", _l("is")),
    ("is_not", _l("is not")),
    ("at_least", _l("is at least")),
    ("at_most", _l("is at most")),
    ("more_than", _l("is more than")),
    ("under", _l("is under")),
    ("includes", _l("includes")),
    ("one_of", _l("is one of")),
]
FROM_JSON = {v: k for k, v in OPERATORS.items() if v != "in"}
FLIPPED = {"==": "==", "!=": "!=", ">=": "<=", "<=": ">=", ">": "<", "<": ">"}
AREA_RULE = {"in_service_area": [{"var": "location"}]}
RULE_QUESTIONS = [q for q in QUESTIONS if q.type != QType.LOCATION]


@dataclass(frozen=True)
class Condition:
    """One builder row: question code, builder operator, JSON value (a list for one_of)."""

    code: str
    op: str
    value: Any

    def to_json(self) -> dict:
        var = {"var": self.code}
        if self.op == "includes":
            return {"in": [self.value, var]}
        if self.op == "one_of":
            return {"in": [var, list(self.value)]}
        return {OPERATORS[self.op]: [var, self.value]}

    def text(self) -> str:
        values = self.value if self.op == "one_of" else [self.value]
        return ", ".join("yes" if v is True else "no" if v is False else str(v) for v in values)


@dataclass(frozen=True)
class ParsedRule:
    """A rule the builder can show: all/any of simple conditions, maybe the service area."""

    combinator: str
    conditions: tuple[Condition, ...]
    in_service_area: bool


def _parse_value(question, text: str) -> Any:
    text = (text or "").strip()
    if not text:
        raise ValueError(_l("Enter a value."))
    if question.type == QType.INTEGER:
        try:
            return int(text)
        except ValueError:
            raise ValueError(_l("Enter a whole number.")) from None
    if question.type == QType.YES_NO:
        if text.lower() in ("yes", "true"):
            return True
        if text.lower() in ("no", "false"):
            return False
        raise ValueError(_l("Answer “yes” or “no”."))
    for option in question.options:  # accept the label as well as the value
        if text.lower() in (option.value.lower(), str(option.label).lower()):
            return option.value
    return text  # an unknown option: validate_criteria names it


def condition_from_row(code: str, op: str, text: str) -> Condition:
    """Parse one row; ValueError with a message for the value field when it cannot."""
    question = next(q for q in RULE_QUESTIONS if q.code == code)
    if op == "one_of":
        parts = [p for p in (text or "").split(",") if p.strip()]
        if not parts:
            raise ValueError(_l("Enter one or more values, separated by commas."))
        return Condition(code, op, tuple(_parse_value(question, p) for p in parts))
    return Condition(code, op, _parse_value(question, text))


def build_rule(combinator: str, conditions: list[Condition], in_service_area: bool) -> Any:
    """JsonLogic for the builder; the service area always applies on top of the rows."""
    leaves = [c.to_json() for c in conditions]
    if not leaves:
        return dict(AREA_RULE) if in_service_area else None
    body = leaves[0] if len(leaves) == 1 else {combinator: leaves}
    if not in_service_area:
        return body
    if combinator == "and" and len(leaves) > 1:
        return {"and": [*leaves, AREA_RULE]}
    return {"and": [body, AREA_RULE]}


def _var(node: Any) -> str | None:
    if isinstance(node, dict) and len(node) == 1 and "var" in node:
        arg = node["var"]
        arg = arg[0] if isinstance(arg, list) and len(arg) == 1 else arg
        if any(q.code == arg for q in RULE_QUESTIONS):
            return arg
    return None


def _scalar(value: Any) -> bool:
    return isinstance(value, bool | int | str)


def _condition(node: Any) -> Condition | None:
    if _var(node):
        question = next(q for q in RULE_QUESTIONS if q.code == _var(node))
        return Condition(question.code, "is", True) if question.type == QType.YES_NO else None
    if not (isinstance(node, dict) and len(node) == 1):
        return None
    ((op, args),) = node.items()
    if not (isinstance(args, list) and len(args) == 2):
        return None
    left, right = args
    if op in FROM_JSON:
        if _var(left) and _scalar(right):
            return Condition(_var(left), FROM_JSON[op], right)
        if _var(right) and _scalar(left):
            return Condition(_var(right), FROM_JSON[FLIPPED[op]], left)
    if op == "in":
        if _var(right) and isinstance(left, str):
            return Condition(_var(right), "includes", left)
        if _var(left) and isinstance(right, list) and right and all(map(_scalar, right)):
            return Condition(_var(left), "one_of", tuple(right))
    return None


def parse_rule(rule: Any) -> ParsedRule | None:
    """The builder's view of a stored rule, or None when it is too complex for rows."""
    if rule is None:
        return ParsedRule("and", (), False)
    if rule == AREA_RULE:
        return ParsedRule("and", (), True)
    combinator, items, area = "and", [rule], False
    if isinstance(rule, dict) and len(rule) == 1 and ("and" in rule or "or" in rule):
        ((combinator, items),) = rule.items()
        if not isinstance(items, list):
            return None
        if combinator == "and" and AREA_RULE in items:
            area, items = True, [i for i in items if i != AREA_RULE]
            inner = items[0] if len(items) == 1 else None
            if isinstance(inner, dict) and len(inner) == 1 and ("and" in inner or "or" in inner):
                ((combinator, items),) = inner.items()
                if not isinstance(items, list):
                    return None
    conditions = [_condition(item) for item in items]
    if None in conditions or len(conditions) > BUILDER_ROWS:
        return None
    return ParsedRule(combinator, tuple(conditions), area)  # type: ignore[arg-type]


def rule_json(rule: Any) -> str:
    """A rule as editable JSON: under a top-level and/or, one condition a line."""
    if rule is None:
        return ""
    if isinstance(rule, dict) and len(rule) == 1:
        ((op, items),) = rule.items()
        if op in ("and", "or") and isinstance(items, list) and items:
            lines = ",\n  ".join(json.dumps(item, ensure_ascii=False) for item in items)
            return f'{{"{op}": [\n  {lines}\n]}}'
    return json.dumps(rule, ensure_ascii=False)


class RuleRowForm(Form):
    question = SelectField(
        _l("Question"),
        choices=lambda: (
            [("", _l("Choose a question"))] + [(q.code, q.label) for q in RULE_QUESTIONS]
        ),
        default="",
    )
    op = SelectField(_l("Condition"), choices=options(OPERATOR_CHOICES), default="is")
    value = StringField(
        _l("Value"), validators=[Length(max=500)], render_kw={"autocapitalize": "off"}
    )


class SampleAnswersForm(Form):
    """The screener, every question optional; clean_answers checks the answers."""

    def raw(self) -> dict[str, Any]:
        return {q.code: self[q.code].data for q in RULE_QUESTIONS}


NOT_ANSWERED = ("", _l("Not answered"))
for _q in RULE_QUESTIONS:
    if _q.type == QType.MANY_OF:
        _field = SelectMultipleField(
            _q.label, choices=options((o.value, o.label) for o in _q.options), validate_choice=False
        )
    elif _q.type == QType.INTEGER:
        _field = StringField(_q.label, render_kw={"inputmode": "numeric"})
    elif _q.type == QType.YES_NO:
        _field = SelectField(
            _q.label,
            choices=options([NOT_ANSWERED, ("yes", _l("Yes")), ("no", _l("No"))]),
            validate_choice=False,
        )
    else:
        _field = SelectField(
            _q.label,
            choices=options([NOT_ANSWERED, *((o.value, o.label) for o in _q.options)]),
            validate_choice=False,
        )
    setattr(SampleAnswersForm, _q.code, _field)


class CriteriaForm(FlaskForm):
    editor = RadioField(
        _l("Save"),
        choices=options(
            [("builder", _l("the rule from the builder")), ("json", _l("the JSON rule"))]
        ),
        default="builder",
    )
    combinator = SelectField(
        _l("A person qualifies when"),
        default="and",
        choices=options(
            [
                ("and", _l("all of these conditions hold")),
                ("or", _l("any of these conditions holds")),
            ]
        ),
    )
    rows = FieldList(FormField(RuleRowForm), min_entries=BUILDER_ROWS, max_entries=BUILDER_ROWS)
    in_service_area = BooleanField(_l("The person must be in the program's service area"))
    raw_json = TextAreaField(
        _l("Rule as JsonLogic"),
        validators=[Length(max=20000)],
        description=_l("Empty means open to everyone."),
        render_kw={"rows": 8, "spellcheck": "false", "autocapitalize": "off"},
    )
    eligibility_description = TextAreaField(
        _l("Who is eligible, in plain words"), validators=[Length(max=5000)]
    )
    answers = FormField(SampleAnswersForm, label=_l("Sample answers"))

    def fill_builder(self, parsed: ParsedRule) -> None:
        self.combinator.data = parsed.combinator
        self.in_service_area.data = parsed.in_service_area
        for row, condition in zip(self.rows, parsed.conditions, strict=False):
            row.question.data, row.op.data = condition.code, condition.op
            row.value.data = condition.text()

    def conditions(self) -> list[tuple[Any, Condition]] | None:
        """The filled rows with their conditions, or None after marking the wrong rows."""
        found, ok = [], True
        for row in self.rows:
            code, text = row.question.data, (row.value.data or "").strip()
            if not code and not text:
                continue
            if not code:
                mark_error(row.question, _l("Choose a question."))
                ok = False
                continue
            try:
                found.append((row, condition_from_row(code, row.op.data, text)))
            except ValueError as exc:
                mark_error(row.value, exc.args[0])
                ok = False
        sync_row_errors(self.rows)
        return found if ok else None


# --- sites and hours -----------------------------------------------------------------------

DAY_GROUPS = {"daily": range(7), "weekdays": range(5)}  # widest first, for fill()


def day_choices() -> list[tuple[str, str]]:
    names = get_day_names("wide", locale=get_locale())
    return [
        ("", _l("Day")),
        ("weekdays", _l("Monday to Friday")),
        ("daily", _l("Every day")),
        *((str(d), names[d]) for d in range(7)),
    ]


class PageForm(FlaskForm):
    """A form repeated on one page under a prefix. CSRFProtect checks every POST before any
    view runs, so the per-form token (whose name would carry the prefix) is left off."""

    class Meta:
        csrf = False


class HoursRowForm(Form):
    day = SelectField(_l("Day"), choices=day_choices, default="")
    opens = TimeField(_l("Opens"), validators=[Optional()])
    closes = TimeField(_l("Closes"), validators=[Optional()])


class HoursForm(PageForm):
    open_24_7 = BooleanField(_l("Open 24 hours, every day"))
    rows = FieldList(FormField(HoursRowForm), min_entries=HOURS_ROWS, max_entries=28)

    def fill(self, open_24_7: bool, intervals: list[tuple[int, time, time]]) -> None:
        """Show stored hours, Monday-to-Friday and every-day runs folded into one row."""
        self.open_24_7.data = open_24_7
        by_span: dict[tuple[time, time], set[int]] = {}
        for weekday, opens, closes in intervals:
            by_span.setdefault((opens, closes), set()).add(weekday)
        rows: list[tuple[str, time, time]] = []
        for (opens, closes), days in by_span.items():
            for group, members in DAY_GROUPS.items():
                if set(members) <= days:
                    rows.append((group, opens, closes))
                    days = days - set(members)
                    break
            rows.extend((str(d), opens, closes) for d in sorted(days))
        rows.sort(key=lambda r: (r[0].isdigit(), r[0], r[1]))
        while len(self.rows) < len(rows) + 2:
            self.rows.append_entry()
        for row, (day, opens, closes) in zip(self.rows, rows, strict=False):
            row.day.data, row.opens.data, row.closes.data = day, opens, closes

    def weekly(self) -> list[tuple[int, time, time]] | None:
        """The filled rows as (weekday, opens, closes), or None after marking wrong rows."""
        found, ok = [], True
        for row in self.rows:
            day, opens, closes = row.day.data, row.opens.data, row.closes.data
            if not day and opens is None and closes is None:
                continue
            if not day:
                mark_error(row.day, _l("Choose a day."))
                ok = False
            elif opens is None or closes is None:
                mark_error(row.closes, _l("Give both the opening and the closing time."))
                ok = False
            else:
                days = DAY_GROUPS[day] if day in DAY_GROUPS else [int(day)]
                found.extend((d, opens, closes) for d in days)
        sync_row_errors(self.rows)
        return found if ok else None


class OfferForm(HoursForm):
    site_id = SelectField(_l("Site"), coerce=int, choices=[])


class ExceptionForm(PageForm):
    on_date = DateField(_l("Date"), validators=[InputRequired()])
    closed = RadioField(
        _l("That day"),
        choices=options([("closed", _l("Closed")), ("special", _l("Special hours"))]),
        default="closed",
    )
    opens = TimeField(_l("Opens"), validators=[Optional()])
    closes = TimeField(_l("Closes"), validators=[Optional()])
    reason = StringField(
        _l("Reason"),
        validators=[Length(max=200)],
        description=_l("For example: holiday, staff training."),
    )


class SiteForm(FlaskForm):
    name = StringField(_l("Site name"), validators=[InputRequired(), Length(max=200)])
    address_1 = StringField(_l("Street address"), validators=[InputRequired(), Length(max=200)])
    postal_code = StringField(
        _l("ZIP code"),
        render_kw={"inputmode": "numeric", "autocomplete": "postal-code"},
        validators=[
            InputRequired(),
            Regexp(r"^\d{5}$", message=_l("Enter a five-digit ZIP code.")),
        ],
    )
    latitude = FloatField(
        _l("Latitude"),
        validators=[InputRequired(), NumberRange(-90, 90)],
        description=_l("Decimal degrees, for example 44.9773."),
    )
    longitude = FloatField(
        _l("Longitude"),
        validators=[InputRequired(), NumberRange(-180, 180)],
        description=_l("Decimal degrees, for example -93.2654."),
    )
    phone = TelField(_l("Phone"), validators=[Length(max=40)])
    accessibility = TextAreaField(
        _l("Accessibility"),
        validators=[Length(max=500)],
        description=_l("Step-free entrance, elevator, restroom..."),
    )
    transit_notes = TextAreaField(
        _l("Getting there"),
        validators=[Length(max=500)],
        description=_l("Bus and train lines, parking, entrance."),
    )

    def fields_for_site(self) -> dict[str, Any]:
        return {
            "name": self.name.data,
            "address_1": self.address_1.data,
            "postal_code": self.postal_code.data,
            "latitude": self.latitude.data,
            "longitude": self.longitude.data,
            "phone": (self.phone.data or "").strip() or None,
            "accessibility": (self.accessibility.data or "").strip() or None,
            "transit_notes": (self.transit_notes.data or "").strip() or None,
        }
