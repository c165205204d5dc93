"""Identifier checks: the shared test vectors plus properties of each check-digit scheme."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from watcher.identifiers import (
    CN_USCC_CHARSET,
    DIGITS,
    IDENTIFIER_KINDS,
    InvalidIdentifier,
    cn_org_code_warning,
    cn_uscc_check_char,
    no_orgnr_check_digit,
    normalise_cn_uscc,
    normalise_fr_siren,
    normalise_lei,
    normalise_no_orgnr,
    normalise_uk_company_number,
    normaliser_for,
)

VECTORS = json.loads((Path(__file__).parent / "fixtures" / "identifiers" / "test_vectors.json").read_text())

UK = VECTORS["uk_company_number"]

VALID_VECTORS = (
    [("cn_uscc", code) for code in VECTORS["cn_uscc_valid"]]
    + [("no_orgnr", code) for code in VECTORS["no_orgnr_valid"]]
    + [("uk_company_number", code) for code in UK["valid_normalised"]]
    + [("fr_siren", code) for code in VECTORS["fr_siren_valid"]]
    + [("lei", code) for code in VECTORS["lei_valid"]]
)

INVALID_VECTORS = (
    [("cn_uscc", case["value"]) for case in VECTORS["cn_uscc_invalid"]]
    + [("no_orgnr", case["value"]) for case in VECTORS["no_orgnr_invalid"]]
    + [("uk_company_number", code) for code in UK["invalid"]]
    + [("fr_siren", code) for code in VECTORS["fr_siren_invalid"]]
    + [("lei", code) for code in VECTORS["lei_invalid"]]
)


def rejection_message(normalise, value: str) -> str:
    """Assert the value is rejected and that the reason fits on one line, as alerts and the CLI expect."""
    with pytest.raises(InvalidIdentifier) as caught:
        normalise(value)
    message = str(caught.value)
    assert message and message.splitlines() == [message]
    return message


def substitutions(code: str, alphabet: str):
    """Every code that differs from ``code`` in exactly one position, using characters from ``alphabet``."""
    for position, original in enumerate(code):
        for replacement in alphabet:
            if replacement != original:
                yield code[:position] + replacement + code[position + 1 :]


def reference_luhn_valid(number: str) -> bool:
    """Textbook Luhn, written independently of the module so the property test is not circular."""
    total = 0
    for index, char in enumerate(reversed(number)):
        doubled = int(char) * (2 if index % 2 else 1)
        total += doubled // 10 + doubled % 10
    return total % 10 == 0


# --- Shared vectors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "code"), VALID_VECTORS)
def test_valid_vectors_are_already_canonical(kind, code):
    assert normaliser_for(kind)(code) == code


@pytest.mark.parametrize(("kind", "code"), VALID_VECTORS)
def test_spaces_and_lowercase_are_tolerated(kind, code):
    spaced = " ".join(code[i : i + 3] for i in range(0, len(code), 3)).lower()
    assert normaliser_for(kind)(f" {spaced}\t") == code


@pytest.mark.parametrize(("kind", "code"), INVALID_VECTORS)
def test_invalid_vectors_are_rejected_with_one_line_reason(kind, code):
    rejection_message(normaliser_for(kind), code)


@pytest.mark.parametrize(("raw", "expected"), sorted(UK["normalise"].items()))
def test_uk_company_number_is_padded_and_uppercased(raw, expected):
    assert normalise_uk_company_number(raw) == expected


# --- Messages say what is wrong -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("normalise", "value", "expected_fragment"),
    [
        (normalise_cn_uscc, "91110108551385082A", "check character should be Q, not A"),
        (normalise_cn_uscc, "9111010855138508", "must be 18 characters, got 16"),
        (normalise_cn_uscc, "91110108551385O82Q", "letter O is not allowed"),
        (normalise_cn_uscc, "91110108I51385082Q", "letter I is not allowed"),
        (normalise_cn_uscc, "", "is empty"),
        (normalise_no_orgnr, "123456789", "check digit should be 5, not 9"),
        (normalise_no_orgnr, "112233445", "never issued"),
        (normalise_no_orgnr, "97476067", "must be 9 digits, got 8"),
        (normalise_no_orgnr, "97476067A", "letter A is not allowed, only digits"),
        (normalise_uk_company_number, "SX123456", "unknown prefix SX"),
        (normalise_uk_company_number, "1234567890", "at most 8 digits, got 10"),
        (normalise_uk_company_number, "OC12345A", "letter A is not allowed"),
        (normalise_uk_company_number, "SC1234567", "at most 6 digits after SC, got 7"),
        (normalise_uk_company_number, "SC", "must be followed by up to 6 digits"),
        (normalise_fr_siren, "552120223", "check digit should be 2, not 3"),
        (normalise_lei, "5493001KJTIIGC8Y1R13", "check digits should be 12, not 13"),
        (normalise_lei, "5493001KJTIIGC8Y1RAB", "last 2 characters must be check digits"),
        (normalise_lei, "5493001KJTIIGC8Y1R1", "must be 20 characters, got 19"),
    ],
)
def test_rejection_message_names_the_problem(normalise, value, expected_fragment):
    assert expected_fragment in rejection_message(normalise, value)


def test_non_ascii_digits_are_not_mistaken_for_digits():
    assert "not allowed" in rejection_message(normalise_no_orgnr, "97476067٣")  # Arabic-Indic three


def test_uk_short_prefixed_number_is_padded():
    assert normalise_uk_company_number("sc 1234") == "SC001234"
    assert normalise_uk_company_number("R0123") == "R0000123"


# --- China: check character and embedded organisation code ---------------------------------------------


@pytest.mark.parametrize("code", VECTORS["cn_uscc_valid"])
def test_cn_check_char_reproduces_vectors(code):
    assert cn_uscc_check_char(code[:17]) == code[17]


@pytest.mark.parametrize("code", VECTORS["cn_uscc_valid"])
def test_cn_vectors_have_consistent_organisation_code(code):
    assert cn_org_code_warning(code) is None


def test_cn_organisation_code_mismatch_is_a_warning_not_a_rejection():
    body = "91110108551385083"  # vector 91110108551385082Q with its organisation check character altered
    code = body + cn_uscc_check_char(body)
    assert normalise_cn_uscc(code) == code
    warning = cn_org_code_warning(code)
    assert warning is not None and "should be 2, not 3" in warning and warning.splitlines() == [warning]


def test_cn_position_one_and_two_are_not_restricted():
    body = "A8110108551385082"  # registration authority A, category 8: not in the 2015 table
    assert normalise_cn_uscc(body + cn_uscc_check_char(body)).startswith("A8")


@pytest.mark.parametrize("code", VECTORS["cn_uscc_valid"])
def test_cn_every_single_substitution_of_a_vector_is_rejected(code):
    for altered in substitutions(code, CN_USCC_CHARSET):
        with pytest.raises(InvalidIdentifier):
            normalise_cn_uscc(altered)


cn_bodies = st.text(alphabet=CN_USCC_CHARSET, min_size=17, max_size=17)


@settings(max_examples=100)
@given(body=cn_bodies, position=st.integers(0, 17), replacement=st.sampled_from(CN_USCC_CHARSET))
def test_cn_generated_codes_validate_and_any_substitution_is_caught(body, position, replacement):
    # Holds for all positions: 31 is prime and every weight 3^k mod 31 is non-zero, so a change of value d
    # at position i shifts the sum by w_i * d, which is never 0 mod 31; position 18 is the check itself.
    code = body + cn_uscc_check_char(body)
    assert normalise_cn_uscc(code) == code
    assume(code[position] != replacement)
    altered = code[:position] + replacement + code[position + 1 :]
    with pytest.raises(InvalidIdentifier):
        normalise_cn_uscc(altered)


# --- Norway ---------------------------------------------------------------------------------------------


def test_no_check_digit_is_none_when_remainder_is_ten():
    assert no_orgnr_check_digit("11223344") is None
    assert no_orgnr_check_digit("97476067") == 3


@settings(max_examples=100)
@given(body=st.text(alphabet=DIGITS, min_size=8, max_size=8))
def test_no_generated_numbers_validate_and_any_digit_substitution_is_caught(body):
    check_digit = no_orgnr_check_digit(body)
    assume(check_digit is not None)
    number = body + str(check_digit)
    assert normalise_no_orgnr(number) == number
    for altered in substitutions(number, DIGITS):
        with pytest.raises(InvalidIdentifier):
            normalise_no_orgnr(altered)


# --- France ---------------------------------------------------------------------------------------------


@settings(max_examples=100)
@given(body=st.text(alphabet=DIGITS, min_size=8, max_size=8))
def test_fr_generated_sirens_validate_and_any_digit_substitution_is_caught(body):
    (number,) = [body + digit for digit in DIGITS if reference_luhn_valid(body + digit)]
    assert normalise_fr_siren(number) == number
    for altered in substitutions(number, DIGITS):
        with pytest.raises(InvalidIdentifier):
            normalise_fr_siren(altered)


# --- LEI ------------------------------------------------------------------------------------------------


@settings(max_examples=100)
@given(body=st.text(alphabet=DIGITS + "ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=18, max_size=18))
def test_lei_generated_codes_validate(body):
    as_number = int("".join(str(int(char, 36)) for char in body + "00"))
    code = f"{body}{98 - as_number % 97:02d}"
    assert normalise_lei(code) == code


# --- Robustness and lookup ------------------------------------------------------------------------------


@settings(max_examples=200)
@given(kind=st.sampled_from(IDENTIFIER_KINDS), value=st.text(max_size=24))
def test_any_text_is_either_canonical_or_rejected_with_one_line_reason(kind, value):
    normalise = normaliser_for(kind)
    try:
        canonical = normalise(value)
    except InvalidIdentifier as error:
        message = str(error)
        assert message and message.splitlines() == [message]
    else:
        assert normalise(canonical) == canonical


def test_normaliser_for_knows_every_kind_and_rejects_others():
    assert normaliser_for("cn_uscc") is normalise_cn_uscc
    assert normaliser_for("no_orgnr") is normalise_no_orgnr
    assert normaliser_for("uk_company_number") is normalise_uk_company_number
    assert normaliser_for("fr_siren") is normalise_fr_siren
    assert normaliser_for("lei") is normalise_lei
    with pytest.raises(KeyError, match="de_hrb"):
        normaliser_for("de_hrb")


def test_invalid_identifier_is_a_value_error():
    assert issubclass(InvalidIdentifier, ValueError)


def test_non_string_input_is_a_programming_error():
    with pytest.raises(TypeError):
        normalise_no_orgnr(974760673)  # type: ignore[arg-type]
