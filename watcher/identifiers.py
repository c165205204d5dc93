"""Company identifier checks: catch mistyped borrower ids before we ask a registry about them.

Pure standard-library code with no I/O. Each ``normalise_*`` function returns the canonical form or
raises :class:`InvalidIdentifier` with a one-line reason that a loan officer can act on.
Formats and check algorithms follow the registries research notes, section 8 (identifier formats).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

DIGITS = "0123456789"
ALPHANUMERICS = DIGITS + "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

# GB 32100-2015 drops I, O, S, V and Z so that they cannot be misread as 1, 0, 5, U and 2.
CN_USCC_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_CN_USCC_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))  # 3^(i-1) mod 31 for i = 1..17
_GB11714_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)

_NO_ORGNR_WEIGHTS = (3, 2, 7, 6, 5, 4, 3, 2)

UK_COMPANY_PREFIXES = frozenset(
    (
        "SC", "NI", "OC", "SO", "NC", "LP", "SL", "NL", "FC", "SF", "NF", "BR", "GE", "GS", "GN", "SE", "ES",
        "IP", "SP", "NP", "IC", "SI", "NV", "RC", "SR", "NR", "AC", "SA", "NA", "ZC", "SZ", "NZ", "NO", "R0",
    )
)  # fmt: skip


class InvalidIdentifier(ValueError):
    """The value cannot be an identifier of the requested kind; the message says why in one line."""


def _compact(value: str) -> str:
    """Full-width to ASCII (Chinese spreadsheets), no whitespace, upper case: ids get copied from PDFs,
    emails and spreadsheets with stray spaces and wide characters."""
    if not isinstance(value, str):
        raise TypeError(f"identifier must be a str, got {type(value).__name__}")
    return "".join(unicodedata.normalize("NFKC", value).split()).upper()


def _show(text: str) -> str:
    """Quote anything that is not plain ASCII letters and digits, so messages stay readable and one line."""
    return text if text.isascii() and text.isalnum() else repr(text)


def _reject_foreign_characters(text: str, allowed: str, *, first_position: int = 1) -> None:
    """Name the first character outside ``allowed``; this is the likeliest typo, so say exactly which."""
    for position, char in enumerate(text, start=first_position):
        if char not in allowed:
            kind = "letter" if char.isascii() and char.isalpha() else "character"
            only_digits = ", only digits" if allowed == DIGITS else ""
            raise InvalidIdentifier(f"{kind} {_show(char)} is not allowed{only_digits} (position {position})")


def _require_length(text: str, length: int, unit: str) -> None:
    if not text:
        raise InvalidIdentifier("is empty")
    if len(text) != length:
        raise InvalidIdentifier(f"must be {length} {unit}, got {len(text)}")


# --- China: unified social credit code (统一社会信用代码, GB 32100-2015) ---------------------------


def cn_uscc_check_char(first17: str) -> str:
    """Compute the GB 32100 check character (position 18) from the first 17 characters."""
    body = _compact(first17)
    _reject_foreign_characters(body, CN_USCC_CHARSET)
    _require_length(body, 17, "characters")
    values = (CN_USCC_CHARSET.index(char) for char in body)
    total = sum(value * weight for value, weight in zip(values, _CN_USCC_WEIGHTS, strict=True))
    return CN_USCC_CHARSET[(31 - total % 31) % 31]


def normalise_cn_uscc(value: str) -> str:
    """Validate a unified social credit code. Positions 1-2 go unchecked: new values keep being allocated."""
    code = _compact(value)
    _reject_foreign_characters(code, CN_USCC_CHARSET)
    _require_length(code, 18, "characters")
    expected = cn_uscc_check_char(code[:17])
    if code[17] != expected:
        raise InvalidIdentifier(f"check character should be {expected}, not {code[17]}")
    return code


def _gb11714_check_char(body8: str) -> str:
    """GB 11714 organisation-code check: digits count 0-9, letters A=10 ... Z=35."""
    total = sum(int(char, 36) * weight for char, weight in zip(body8, _GB11714_WEIGHTS, strict=True))
    check = 11 - total % 11
    return {10: "X", 11: "0"}.get(check, str(check))


def cn_org_code_warning(value: str) -> str | None:
    """Say if the embedded organisation code (positions 9-17) fails its own check, else None.

    Only a warning: some registered codes carry a body that never followed GB 11714, and the code as a whole
    is still valid. Raises InvalidIdentifier if ``value`` is not a valid USCC in the first place.
    """
    code = normalise_cn_uscc(value)
    expected = _gb11714_check_char(code[8:16])
    if code[16] != expected:
        return f"embedded organisation code check character should be {expected}, not {code[16]}"
    return None


# --- Norway: organisasjonsnummer --------------------------------------------------------------------


def no_orgnr_check_digit(first8: str) -> int | None:
    """Compute the mod-11 check digit; None when it would be 10, because Brønnøysund never issues those."""
    digits = _compact(first8)
    _reject_foreign_characters(digits, DIGITS)
    _require_length(digits, 8, "digits")
    total = sum(int(digit) * weight for digit, weight in zip(digits, _NO_ORGNR_WEIGHTS, strict=True))
    remainder = 11 - total % 11
    if remainder == 11:
        return 0
    if remainder == 10:
        return None
    return remainder


def normalise_no_orgnr(value: str) -> str:
    """Validate a Norwegian organisation number (9 digits, mod 11)."""
    number = _compact(value)
    _reject_foreign_characters(number, DIGITS)
    _require_length(number, 9, "digits")
    expected = no_orgnr_check_digit(number[:8])
    if expected is None:
        raise InvalidIdentifier("first 8 digits give check remainder 10, so this number is never issued")
    if int(number[8]) != expected:
        raise InvalidIdentifier(f"check digit should be {expected}, not {number[8]}")
    return number


# --- UK: Companies House company number ---------------------------------------------------------------


def normalise_uk_company_number(value: str) -> str:
    """Pad to the 8-character form Companies House uses in URLs. There is no check digit to verify."""
    number = _compact(value)
    if not number:
        raise InvalidIdentifier("is empty")
    if all(char in DIGITS for char in number):
        if len(number) > 8:
            raise InvalidIdentifier(f"must be at most 8 digits, got {len(number)}")
        return number.zfill(8)
    prefix, numeric_part = number[:2], number[2:]
    if prefix not in UK_COMPANY_PREFIXES:
        raise InvalidIdentifier(f"unknown prefix {_show(prefix)}")
    if not numeric_part:
        raise InvalidIdentifier(f"prefix {prefix} must be followed by up to 6 digits")
    _reject_foreign_characters(numeric_part, DIGITS, first_position=3)
    if len(numeric_part) > 6:
        raise InvalidIdentifier(f"must be at most 6 digits after {prefix}, got {len(numeric_part)}")
    return prefix + numeric_part.zfill(6)


# --- France: SIREN ------------------------------------------------------------------------------------


def _luhn_check_digit(body: str) -> int:
    """Luhn digit to append to ``body``: double every second digit counting from the right of the body."""
    total = 0
    for index, char in enumerate(reversed(body)):
        digit = int(char)
        if index % 2 == 0:
            digit = digit * 2 - 9 if digit >= 5 else digit * 2
        total += digit
    return (10 - total % 10) % 10


def normalise_fr_siren(value: str) -> str:
    """Validate a French SIREN (9 digits, Luhn)."""
    number = _compact(value)
    _reject_foreign_characters(number, DIGITS)
    _require_length(number, 9, "digits")
    expected = _luhn_check_digit(number[:8])
    if int(number[8]) != expected:
        raise InvalidIdentifier(f"check digit should be {expected}, not {number[8]}")
    return number


# --- LEI (ISO 17442) ----------------------------------------------------------------------------------


def _mod97(code: str) -> int:
    """ISO 7064 MOD 97-10 over base-36 character values (A=10 ... Z=35)."""
    return int("".join(str(int(char, 36)) for char in code)) % 97


def normalise_lei(value: str) -> str:
    """Validate a Legal Entity Identifier (20 alphanumerics, the last two are MOD 97-10 check digits)."""
    code = _compact(value)
    _reject_foreign_characters(code, ALPHANUMERICS)
    _require_length(code, 20, "characters")
    check_digits = code[18:]
    if not all(char in DIGITS for char in check_digits):
        raise InvalidIdentifier(f"last 2 characters must be check digits, got {check_digits}")
    if _mod97(code) != 1:
        expected = 98 - _mod97(code[:18] + "00")
        raise InvalidIdentifier(f"check digits should be {expected:02d}, not {check_digits}")
    return code


# --- Lookup by kind -----------------------------------------------------------------------------------

_NORMALISERS: dict[str, Callable[[str], str]] = {
    "cn_uscc": normalise_cn_uscc,
    "no_orgnr": normalise_no_orgnr,
    "uk_company_number": normalise_uk_company_number,
    "fr_siren": normalise_fr_siren,
    "lei": normalise_lei,
}

IDENTIFIER_KINDS = tuple(_NORMALISERS)


def normaliser_for(kind: str) -> Callable[[str], str]:
    """Look up the normaliser for an identifier kind named in configuration."""
    try:
        return _NORMALISERS[kind]
    except KeyError:
        raise KeyError(f"unknown identifier kind {kind!r}; known: {', '.join(IDENTIFIER_KINDS)}") from None
