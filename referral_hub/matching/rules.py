"""Eligibility criteria: a documented subset of JsonLogic, evaluated three-valued.

Criteria are JsonLogic (jsonlogic.com), so other tools (json-logic-js in a browser, for
example) can read them. The subset:

* `{"and": [r, ...]}`, `{"or": [r, ...]}`, `{"!": r}` (or `{"!": [r]}`)
* `{"var": "code"}` names a screener question (matching.questions); as a rule by itself it
  is only allowed for yes/no questions ("is the person a veteran?")
* comparisons `==`, `!=`, `<`, `<=`, `>`, `>=` between one `var` and one literal; order
  comparisons only for integer questions
* `{"in": ["value", {"var": "code"}]}`: a many-of answer includes the value;
  `{"in": [{"var": "code"}, ["a", "b"]]}`: a one-of or integer answer is one of the values
* the custom operation `{"in_service_area": [{"var": "location"}]}`: the person's location
  lies in one of the program's service areas (true when the program declares none). Other
  JsonLogic engines need it added as a custom operation.

Literals must fit the question: integers for integer questions, true/false for yes/no, and
declared option values for one-of and many-of. `var` defaults are refused, because a
default would hide an unanswered question.

Evaluation is three-valued, which plain JsonLogic engines are not: a rule is *eligible*,
*ineligible* (with the failing rule in plain, translatable words) or *unknown* (with the
questions still to ask). On fully answered screenings it agrees with JsonLogic.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from referral_hub.core.errors import ValidationFailed
from referral_hub.matching.questions import BY_CODE, QType, Question

ELIGIBLE, INELIGIBLE, UNKNOWN = "eligible", "ineligible", "unknown"
ORDER_OPS = {"<", "<=", ">", ">="}
COMPARISONS = {"==", "!=", *ORDER_OPS}
FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
NEGATE = {"<": ">=", "<=": ">", ">": "<=", ">=": "<", "==": "!=", "!=": "=="}
MAX_DEPTH = 12
MAX_NODES = 200


class RuleError(Exception):
    """A criteria document outside the subset; `path` says where."""

    def __init__(self, message: str, path: str):
        super().__init__(message)
        self.message = message
        self.path = path


@dataclass(frozen=True)
class Outcome:
    """The verdict on one program: status, failing rules in words, questions still to ask."""

    status: str
    reasons: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()


# A compiled node answers (value, missing question codes, failing leaves) where value is
# True, False or None for unknown. Failing leaves are descriptions, rendered at the end so
# that the text is in the language of the request.
Result = tuple[bool | None, frozenset[str], tuple["Leaf", ...]]
Node = Callable[[Mapping[str, Any], "Context"], Result]


@dataclass(frozen=True)
class Leaf:
    """A comparison in words: question, operator (already negated when under `!`), value."""

    code: str
    op: str
    value: Any

    def negated(self) -> Leaf:
        return Leaf(self.code, NEGATE.get(self.op, "not " + self.op), self.value)

    def text(self) -> str:
        return describe(self)


@dataclass(frozen=True)
class Context:
    """What a rule needs beyond the answers: the program's service-area test."""

    in_service_area: Callable[[Any], bool | None] = lambda location: True


NO_CONTEXT = Context()


# --- compiling ---------------------------------------------------------------------------


def _var_code(node: Any, path: str) -> str:
    if not (isinstance(node, dict) and len(node) == 1 and "var" in node):
        raise RuleError(_('Expected a question reference {"var": ...}.'), path)
    arg = node["var"]
    if isinstance(arg, list):
        if len(arg) != 1:
            raise RuleError(_("A question reference cannot have a default value."), path)
        arg = arg[0]
    if not isinstance(arg, str) or arg not in BY_CODE:
        raise RuleError(_("Unknown question “%(code)s”.", code=str(arg)), path)
    return arg


def _is_var(node: Any) -> bool:
    return isinstance(node, dict) and len(node) == 1 and "var" in node


def _check_literal(question: Question, value: Any, path: str) -> None:
    kind = question.type
    ok = (
        (kind == QType.INTEGER and isinstance(value, int) and not isinstance(value, bool))
        or (kind == QType.YES_NO and isinstance(value, bool))
        or (kind in (QType.ONE_OF, QType.MANY_OF) and value in question.values)
    )
    if not ok:
        raise RuleError(
            _(
                "The value %(value)s does not fit the question “%(code)s”.",
                value=json.dumps(value),
                code=question.code,
            ),
            path,
        )


def _compile(node: Any, path: str, depth: int, budget: list[int]) -> Node:
    budget[0] += 1
    if budget[0] > MAX_NODES or depth > MAX_DEPTH:
        raise RuleError(_("The rule is too large or too deeply nested."), path)
    if not isinstance(node, dict) or len(node) != 1:
        raise RuleError(_("Each rule must be an object with exactly one operation."), path)
    ((op, args),) = node.items()
    here = f"{path}.{op}" if path else op

    if op == "var":
        code = _var_code(node, path)
        if BY_CODE[code].type != QType.YES_NO:
            raise RuleError(_("Only a yes/no question can stand alone as a rule."), path)
        return _compile_truthy(code)
    if op in ("and", "or"):
        if not isinstance(args, list) or not args:
            raise RuleError(_("“%(op)s” needs a list of rules.", op=op), here)
        children = [_compile(a, f"{here}[{i}]", depth + 1, budget) for i, a in enumerate(args)]
        return _compile_and(children) if op == "and" else _compile_or(children)
    if op == "!":
        inner = args[0] if isinstance(args, list) and len(args) == 1 else args
        return _compile_not(_compile(inner, here, depth + 1, budget))
    if op in COMPARISONS:
        return _compile_comparison(op, args, here)
    if op == "in":
        return _compile_in(args, here)
    if op == "in_service_area":
        if not (
            isinstance(args, list)
            and len(args) == 1
            and _is_var(args[0])
            and _var_code(args[0], here) == "location"
        ):
            raise RuleError(_('“in_service_area” takes [{"var": "location"}].'), here)
        return _compile_area()
    raise RuleError(_("The operation “%(op)s” is not supported.", op=str(op)), here)


def _compile_truthy(code: str) -> Node:
    leaf = Leaf(code, "==", True)
    missing = frozenset({code})

    def run(answers, ctx):
        value = answers.get(code)
        if value is None:
            return None, missing, ()
        return (True, frozenset(), ()) if value else (False, frozenset(), (leaf,))

    run.leaf = leaf  # type: ignore[attr-defined]
    return run


def _compile_and(children: list[Node]) -> Node:
    def run(answers, ctx):
        unknown = False
        missing: frozenset[str] = frozenset()
        failed: tuple[Leaf, ...] = ()
        for child in children:
            value, child_missing, child_failed = child(answers, ctx)
            if value is False:
                failed += child_failed
            elif value is None:
                unknown = True
                missing |= child_missing
        if failed:
            return False, frozenset(), failed
        return (None, missing, ()) if unknown else (True, frozenset(), ())

    return run


def _compile_or(children: list[Node]) -> Node:
    def run(answers, ctx):
        missing: frozenset[str] = frozenset()
        failed: tuple[Leaf, ...] = ()
        unknown = False
        for child in children:
            value, child_missing, child_failed = child(answers, ctx)
            if value is True:
                return True, frozenset(), ()
            if value is None:
                unknown = True
                missing |= child_missing
            else:
                failed += child_failed
        if unknown:
            return None, missing, ()
        return False, frozenset(), (Leaf("", "any", failed),)

    return run


def _compile_not(inner: Node) -> Node:
    def run(answers, ctx):
        value, missing, _failed = inner(answers, ctx)
        if value is None:
            return None, missing, ()
        if value is False:
            return True, frozenset(), ()
        # What the negation forbids is the inner rule that held, negated.
        return False, frozenset(), _negated(inner)

    return run


def _negated(inner: Node) -> tuple[Leaf, ...]:
    leaf = getattr(inner, "leaf", None)
    return (leaf.negated(),) if leaf is not None else (Leaf("", "not", None),)


def _compile_comparison(op: str, args: Any, path: str) -> Node:
    if not (isinstance(args, list) and len(args) == 2):
        raise RuleError(_("“%(op)s” compares exactly two things.", op=op), path)
    left, right = args
    if _is_var(left) and not _is_var(right):
        code, value = _var_code(left, path), right
    elif _is_var(right) and not _is_var(left):
        code, value, op = _var_code(right, path), left, FLIP[op]
    else:
        raise RuleError(_("Compare one question with one value."), path)
    question = BY_CODE[code]
    if question.type in (QType.MANY_OF, QType.LOCATION):
        raise RuleError(_("Use “in” for the question “%(code)s”.", code=code), path)
    if op in ORDER_OPS and question.type != QType.INTEGER:
        raise RuleError(_("“%(op)s” needs a number question.", op=op), path)
    _check_literal(question, value, path)
    leaf = Leaf(code, op, value)
    test = _OPERATORS[op]
    missing = frozenset({code})

    def run(answers, ctx):
        answer = answers.get(code)
        if answer is None:
            return None, missing, ()
        return (True, frozenset(), ()) if test(answer, value) else (False, frozenset(), (leaf,))

    run.leaf = leaf  # type: ignore[attr-defined]
    return run


_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _compile_in(args: Any, path: str) -> Node:
    if not (isinstance(args, list) and len(args) == 2):
        raise RuleError(_("“in” takes exactly two things."), path)
    needle, haystack = args
    if _is_var(haystack) and not _is_var(needle):
        code = _var_code(haystack, path)
        question = BY_CODE[code]
        if question.type != QType.MANY_OF:
            raise RuleError(_("“%(code)s” is not a choose-several question.", code=code), path)
        _check_literal(question, needle, path)
        leaf = Leaf(code, "includes", needle)

        def contains(answers, ctx):
            answer = answers.get(code)
            if answer is None:
                return None, frozenset({code}), ()
            ok = needle in answer
            return (True, frozenset(), ()) if ok else (False, frozenset(), (leaf,))

        contains.leaf = leaf  # type: ignore[attr-defined]
        return contains
    if _is_var(needle) and isinstance(haystack, list):
        code = _var_code(needle, path)
        question = BY_CODE[code]
        if question.type not in (QType.ONE_OF, QType.INTEGER):
            raise RuleError(
                _("Use a list of values only with a one-choice or number question."), path
            )
        if not haystack:
            raise RuleError(_("The list of values is empty."), path)
        for i, value in enumerate(haystack):
            _check_literal(question, value, f"{path}[{i}]")
        allowed = frozenset(haystack)
        leaf = Leaf(code, "one_of", tuple(haystack))

        def member(answers, ctx):
            answer = answers.get(code)
            if answer is None:
                return None, frozenset({code}), ()
            ok = answer in allowed
            return (True, frozenset(), ()) if ok else (False, frozenset(), (leaf,))

        member.leaf = leaf  # type: ignore[attr-defined]
        return member
    raise RuleError(_("“in” needs a value and a question, or a question and a list."), path)


def _compile_area() -> Node:
    leaf = Leaf("location", "in_area", None)
    missing = frozenset({"location"})

    def run(answers, ctx):
        location = answers.get("location")
        if location is None:
            return None, missing, ()
        inside = ctx.in_service_area(location)
        if inside is None:
            return None, missing, ()
        return (True, frozenset(), ()) if inside else (False, frozenset(), (leaf,))

    run.leaf = leaf  # type: ignore[attr-defined]
    return run


# --- public interface --------------------------------------------------------------------


class CompiledRule:
    """A validated rule, compiled to closures once and evaluated many times."""

    def __init__(self, rule: Any):
        self.rule = rule
        self._root: Node | None = None if rule is None else _compile(rule, "", 0, [0])

    def evaluate(self, answers: Mapping[str, Any], context: Context = NO_CONTEXT) -> Outcome:
        """Eligible, ineligible (with reasons) or unknown (with the questions to ask)."""
        if self._root is None:
            return Outcome(ELIGIBLE)
        value, missing, failed = self._root(answers, context)
        if value is True:
            return Outcome(ELIGIBLE)
        if value is None:
            return Outcome(UNKNOWN, missing=tuple(sorted(missing, key=_question_order)))
        return Outcome(INELIGIBLE, reasons=tuple(leaf.text() for leaf in failed))

    def truth(self, answers: Mapping[str, Any], context: Context = NO_CONTEXT) -> bool | None:
        """Plain True/False/None, without explanations."""
        return True if self._root is None else self._root(answers, context)[0]


def _question_order(code: str) -> int:
    return list(BY_CODE).index(code)


def validate_criteria(rule: Any) -> None:
    """Refuse a rule outside the subset, naming the fault and where it is."""
    if rule is None:
        return
    try:
        _compile(rule, "", 0, [0])
    except RuleError as exc:
        where = f" ({exc.path})" if exc.path else ""
        message = f"{exc.message}{where}"
        raise ValidationFailed(message, fields={"criteria": [message]}) from None


def compile_criteria(rule: Any) -> CompiledRule:
    """Validate and compile a rule (raises ValidationFailed when it is not allowed)."""
    validate_criteria(rule)
    return CompiledRule(rule)


_cache: dict[tuple[str, int], CompiledRule] = {}


def cached_rule(program_uuid: str, version: int) -> CompiledRule | None:
    """The compiled rule of a program at a criteria version, if compiled before.

    Keyed by the program's UUID, which is never reused (integer ids can be, after deletes),
    and by the criteria version, which set_criteria bumps on every change.
    """
    return _cache.get((program_uuid, version))


def remember_rule(program_uuid: str, version: int, rule: Any) -> CompiledRule:
    """Compile a stored rule and keep it for later requests of this process."""
    if len(_cache) > 200_000:
        _cache.clear()
    compiled = _cache[(program_uuid, version)] = CompiledRule(rule)
    return compiled


def compiled_for(program_uuid: str, version: int, rule: Any) -> CompiledRule:
    """The compiled rule, compiling it on first use."""
    return cached_rule(program_uuid, version) or remember_rule(program_uuid, version, rule)


def questions_used(rule: Any) -> set[str]:
    """The question codes a rule refers to."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for op, args in node.items():
                if op == "var":
                    found.add(args[0] if isinstance(args, list) else args)
                else:
                    walk(args)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(rule)
    return found


# --- words -------------------------------------------------------------------------------

_TEMPLATES = {
    ("integer", ">="): _l("%(question)s must be at least %(value)s"),
    ("integer", ">"): _l("%(question)s must be more than %(value)s"),
    ("integer", "<="): _l("%(question)s must be at most %(value)s"),
    ("integer", "<"): _l("%(question)s must be under %(value)s"),
    ("integer", "=="): _l("%(question)s must be %(value)s"),
    ("integer", "!="): _l("%(question)s must not be %(value)s"),
    ("choice", "=="): _l("%(question)s must be “%(value)s”"),
    ("choice", "!="): _l("%(question)s must not be “%(value)s”"),
    ("yes_no", "=="): _l("%(question)s needs the answer “%(value)s”"),
    ("yes_no", "!="): _l("%(question)s needs the answer “%(value)s”"),
    ("many", "includes"): _l("%(question)s must include “%(value)s”"),
    ("many", "not includes"): _l("%(question)s must not include “%(value)s”"),
    ("list", "one_of"): _l("%(question)s must be one of: %(value)s"),
    ("list", "not one_of"): _l("%(question)s must not be any of: %(value)s"),
    ("area", "in_area"): _l("The person's location is outside the program's service area"),
    ("area", "not in_area"): _l("The person's location is inside an excluded area"),
}


def describe(leaf: Leaf) -> str:
    """A failing rule in plain words, in the request's language."""
    if leaf.op == "any":
        parts = [describe(sub) for sub in leaf.value]
        return _("None of these holds: %(rules)s", rules="; ".join(parts))
    if not leaf.code:
        return _("An exclusion rule applies")
    question = BY_CODE[leaf.code]
    label = str(question.label).strip("¿?")
    if question.type == QType.INTEGER:
        key, value = ("list" if "one_of" in leaf.op else "integer"), leaf.value
        if key == "list":
            value = ", ".join(str(v) for v in leaf.value)
    elif question.type == QType.YES_NO:
        truthy = (leaf.op == "==") == bool(leaf.value)
        key, value = "yes_no", _("yes") if truthy else _("no")
        return str(_TEMPLATES[(key, "==")]) % {"question": label, "value": value}
    elif question.type == QType.MANY_OF:
        key, value = "many", question.option_label(leaf.value)
    elif question.type == QType.LOCATION:
        key, value = "area", None
    elif "one_of" in leaf.op:
        key, value = "list", ", ".join(question.option_label(v) for v in leaf.value)
    else:
        key, value = "choice", question.option_label(leaf.value)
    template = _TEMPLATES.get((key, leaf.op))
    if template is None:
        return _("An eligibility rule is not met")
    return str(template) % {"question": label, "value": value}
