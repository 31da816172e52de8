"""Masked views of buyer data for people who manage orders but must not read addresses: ``J*** S****, 150-**** JP``.

The rule that makes a masked value safe to show: no two characters that stood next to each other in the
buyer's name, street or phone ever stand next to each other in the output. Of each word only its first
letter or digit is kept, and a mask character always follows it; everything else becomes ``*``. The postal
code keeps only its leading district part (what a carrier's sorting zone already tells), the country code
stays. tests/vault/test_masking.py checks the rule with generated input.
"""

from __future__ import annotations

from vault.records import LabelRecord

MASK = "*"
#: Characters that separate a postal code's district part from the rest (``150-0002``, ``SW1A 1AA``).
_POSTAL_SEPARATORS = frozenset(" -")


def _mask_word(word: str) -> str:
    head = word[0] if word[0].isalnum() else MASK
    return head + MASK * max(1, len(word) - 1)


def mask_name(name: str | None) -> str:
    """A person's or company's name with each word cut to its first character: ``J*** S****``."""
    if not name:
        return ""
    return " ".join(_mask_word(w) for w in name.split())


def mask_street(line: str | None) -> str:
    """A street line, masked like a name: ``4*** M******* L***``."""
    return mask_name(line)


def mask_phone(phone: str | None) -> str:
    """A phone number with every character but the last digit hidden: ``*********3``.

    The last digit is shown alone (never beside another original character), enough to tell two numbers
    of one order apart when a buyer calls.
    """
    if not phone:
        return ""
    digits = [c for c in phone if c.isdigit()]
    if not digits:
        return MASK * 4
    return MASK * max(4, len(phone) - 1) + digits[-1]


def mask_postal(postal_code: str | None) -> str:
    """A postal code with only its leading district part kept: ``150-****``, ``SW1A ***``, ``981**``."""
    if not postal_code:
        return ""
    code = postal_code.strip()
    for i, char in enumerate(code[:5]):
        if char in _POSTAL_SEPARATORS and i > 0:
            return code[: i + 1] + MASK * max(3, len(code) - i - 1)
    keep = 3 if len(code) > 4 else max(1, len(code) // 2)
    return code[:keep] + MASK * max(2, len(code) - keep)


def masked_summary(record: LabelRecord) -> str:
    """One line that tells orders apart without revealing whom they go to: ``J*** S****, 150-**** JP``."""
    parts = [mask_name(record.name)]
    place = " ".join(p for p in (mask_postal(record.postal_code), record.country_code) if p)
    if place:
        parts.append(place)
    return ", ".join(p for p in parts if p)
