"""The rule language: validation, three-valued evaluation, explanations, JsonLogic parity."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from json_logic import jsonLogic

from referral_hub.core.errors import ValidationFailed
from referral_hub.matching.questions import BY_CODE, QType
from referral_hub.matching.rules import (
    ELIGIBLE,
    INELIGIBLE,
    UNKNOWN,
    Context,
    compile_criteria,
    compiled_for,
    questions_used,
    validate_criteria,
)
from referral_hub.web.i18n import language

YOUTH_HOUSING = {
    "and": [
        {">=": [{"var": "age"}, 18]},
        {"<=": [{"var": "age"}, 24]},
        {"in": ["housing", {"var": "needs"}]},
    ]
}


@pytest.fixture(autouse=True)
def _ctx(app):
    with app.test_request_context():
        yield


def test_eligible_ineligible_unknown():
    rule = compile_criteria(YOUTH_HOUSING)
    assert rule.evaluate({"age": 19, "needs": ["housing"]}).status == ELIGIBLE
    out = rule.evaluate({"age": 30, "needs": ["housing"]})
    assert out.status == INELIGIBLE
    assert out.reasons == ("Age must be at most 24",)
    out = rule.evaluate({"needs": ["housing"]})
    assert out.status == UNKNOWN and out.missing == ("age",)


def test_a_known_failure_beats_unknowns():
    out = compile_criteria(YOUTH_HOUSING).evaluate({"needs": ["employment"]})
    assert out.status == INELIGIBLE
    assert out.reasons == ("What does the person need help with must include “Housing or shelter”",)


def test_unknown_lists_every_question_still_to_ask_in_screener_order():
    rule = compile_criteria(
        {"and": [{"==": [{"var": "veteran"}, True]}, {">=": [{"var": "age"}, 18]}]}
    )
    assert rule.evaluate({}).missing == ("age", "veteran")


def test_or_is_true_when_any_branch_holds_even_with_unknowns():
    rule = compile_criteria({"or": [{"var": "unsheltered"}, {">=": [{"var": "age"}, 60]}]})
    assert rule.evaluate({"unsheltered": True}).status == ELIGIBLE
    assert rule.evaluate({"unsheltered": False}).status == UNKNOWN
    out = rule.evaluate({"unsheltered": False, "age": 40})
    assert out.status == INELIGIBLE
    assert out.reasons[0].startswith("None of these holds: ")


def test_negation_explains_the_forbidden_value():
    rule = compile_criteria({"!": {"==": [{"var": "crime_type"}, "domestic"]}})
    assert rule.evaluate({"crime_type": "assault"}).status == ELIGIBLE
    out = rule.evaluate({"crime_type": "domestic"})
    assert out.reasons == ("Crime the person experienced must not be “Domestic violence”",)
    assert rule.evaluate({}).status == UNKNOWN


def test_value_on_the_left_is_flipped():
    rule = compile_criteria({"<=": [18, {"var": "age"}]})
    assert rule.evaluate({"age": 18}).status == ELIGIBLE
    assert rule.evaluate({"age": 17}).reasons == ("Age must be at least 18",)


def test_one_of_list_and_yes_no_words():
    rule = compile_criteria(
        {
            "and": [
                {
                    "in": [
                        {"var": "justice_status"},
                        ["arrested_not_charged", "charged_misdemeanor"],
                    ]
                },
                {"!": {"var": "veteran"}},
            ]
        }
    )
    out = rule.evaluate({"justice_status": "charged_felony", "veteran": True})
    assert out.reasons == (
        "Justice involvement must be one of: Arrested, not charged, Charged with a misdemeanor",
        "Is the person a veteran needs the answer “no”",
    )


def test_no_criteria_means_everyone():
    assert compile_criteria(None).evaluate({}).status == ELIGIBLE


def test_service_area_uses_the_context():
    rule = compile_criteria({"in_service_area": [{"var": "location"}]})
    inside = Context(in_service_area=lambda loc: loc["postal_code"] == "55411")
    assert rule.evaluate({"location": {"postal_code": "55411"}}, inside).status == ELIGIBLE
    out = rule.evaluate({"location": {"postal_code": "55401"}}, inside)
    assert out.status == INELIGIBLE and "service area" in out.reasons[0]
    assert rule.evaluate({}, inside).missing == ("location",)
    undecidable = Context(in_service_area=lambda loc: None)
    assert rule.evaluate({"location": {}}, undecidable).status == UNKNOWN


def test_explanations_are_translated():
    rule = compile_criteria({">=": [{"var": "age"}, 18]})
    with language("es"):
        reason = rule.evaluate({"age": 10}).reasons[0]
    assert "18" in reason and reason != "Age must be at least 18"


@pytest.mark.parametrize(
    ("rule", "fault"),
    [
        ({"var": "shoe_size"}, "Unknown question “shoe_size”"),
        ({">=": [{"var": "shoe_size"}, 3]}, "Unknown question"),
        ({"regex": ["a", "b"]}, "not supported"),
        ({">=": [{"var": "age"}, "18"]}, "does not fit"),
        ({"==": [{"var": "household"}, "castle"]}, "does not fit"),
        ({"<": [{"var": "household"}, "alone"]}, "needs a number question"),
        ({"==": [{"var": "needs"}, "housing"]}, "Use “in”"),
        ({"in": ["mansion", {"var": "needs"}]}, "does not fit"),
        ({"and": []}, "needs a list"),
        ({"and": [{">": [{"var": "age"}, 1]}], "or": []}, "exactly one operation"),
        ({"var": ["age", 30]}, "default"),
        ({"var": "age"}, "Only a yes/no question"),
        ({"==": [1, 1]}, "Compare one question with one value"),
        ({"in_service_area": [{"var": "age"}]}, "in_service_area"),
        ("age >= 18", "exactly one operation"),
    ],
)
def test_invalid_rules_are_refused_naming_the_fault(rule, fault):
    with pytest.raises(ValidationFailed) as exc:
        validate_criteria(rule)
    assert fault in exc.value.message
    assert exc.value.fields == {"criteria": [exc.value.message]}


def test_fault_names_its_place():
    with pytest.raises(ValidationFailed) as exc:
        validate_criteria({"and": [{">=": [{"var": "age"}, 18]}, {"==": [{"var": "x"}, 1]}]})
    assert "(and[1].==)" in exc.value.message


def test_oversized_rules_are_refused():
    deep = {">=": [{"var": "age"}, 1]}
    for _ in range(20):
        deep = {"!": deep}
    with pytest.raises(ValidationFailed):
        validate_criteria(deep)


def test_compiled_once_per_program_version():
    first = compiled_for("uuid-a", 1, YOUTH_HOUSING)
    assert compiled_for("uuid-a", 1, YOUTH_HOUSING) is first
    assert compiled_for("uuid-a", 2, YOUTH_HOUSING) is not first
    assert compiled_for("uuid-b", 1, None) is not first


def test_questions_used():
    assert questions_used(YOUTH_HOUSING) == {"age", "needs"}


# --- parity with an existing JsonLogic implementation -------------------------------------


def _literal(question):
    if question.type == QType.INTEGER:
        return st.integers(0, 100)
    if question.type == QType.YES_NO:
        return st.booleans()
    return st.sampled_from(sorted(question.values))


SCALAR = [q for q in BY_CODE.values() if q.type in (QType.INTEGER, QType.ONE_OF, QType.YES_NO)]


@st.composite
def leaves(draw):
    kind = draw(st.sampled_from(["cmp", "many", "list", "truthy"]))
    if kind == "many":
        return {"in": [draw(_literal(BY_CODE["needs"])), {"var": "needs"}]}
    if kind == "truthy":
        return {"var": draw(st.sampled_from(["veteran", "unsheltered", "charges_filed"]))}
    question = draw(st.sampled_from(SCALAR))
    if kind == "list" and question.type != QType.YES_NO:
        values = draw(st.lists(_literal(question), min_size=1, max_size=3))
        return {"in": [{"var": question.code}, values]}
    ops = ["==", "!="] + (["<", "<=", ">", ">="] if question.type == QType.INTEGER else [])
    return {draw(st.sampled_from(ops)): [{"var": question.code}, draw(_literal(question))]}


rules = st.recursive(
    leaves(),
    lambda children: st.one_of(
        st.builds(lambda xs: {"and": xs}, st.lists(children, min_size=1, max_size=3)),
        st.builds(lambda xs: {"or": xs}, st.lists(children, min_size=1, max_size=3)),
        st.builds(lambda x: {"!": x}, children),
    ),
    max_leaves=8,
)


@st.composite
def full_answers(draw):
    answers = {q.code: draw(_literal(q)) for q in SCALAR}
    answers["needs"] = draw(st.lists(_literal(BY_CODE["needs"]), unique=True, max_size=4))
    return answers


@settings(max_examples=300, deadline=None)
@given(rule=rules, answers=full_answers())
def test_same_yes_no_as_json_logic_on_full_answers(rule, answers):
    ours = compile_criteria(rule).evaluate(answers).status
    theirs = bool(jsonLogic(rule, answers))
    assert ours == (ELIGIBLE if theirs else INELIGIBLE)


@settings(max_examples=200, deadline=None)
@given(rule=rules, answers=full_answers(), data=st.data())
def test_unknown_only_when_an_answer_could_change_the_verdict(rule, answers, data):
    """Dropping answers may turn a verdict unknown, but never into the opposite verdict."""
    dropped = data.draw(st.sets(st.sampled_from(sorted(answers))))
    partial = {k: v for k, v in answers.items() if k not in dropped}
    full = compile_criteria(rule).evaluate(answers).status
    part = compile_criteria(rule).evaluate(partial).status
    assert part in (full, UNKNOWN)
