"""The dashboard's languages (Flask-Babel): English and Simplified Chinese.

The language is the signed-in user's choice (stored on the user), else the ``lv_lang`` cookie (chosen before
signing in), else the browser's Accept-Language. Catalogs live in app/translations: ``messages.po`` is edited,
``messages.mo`` is committed beside it, so nothing is compiled at set-up (a test checks it is current).
After changing texts::

    pybabel extract -F app/translations/babel.cfg -k _l -o app/translations/messages.pot --no-location --sort-output .
    pybabel update -i app/translations/messages.pot -d app/translations --no-fuzzy-matching
    (translate the new entries of app/translations/zh_Hans/LC_MESSAGES/messages.po)
    pybabel compile -d app/translations
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask, g, request
from flask_babel import Babel
from werkzeug.wrappers import Response

TRANSLATIONS = Path(__file__).parent / "translations"
DEFAULT = "en"
#: Every language offered, by Babel locale identifier, with its name in that language.
LANGUAGES = {"en": "English", "zh_Hans": "简体中文"}
#: The HTML ``lang`` attribute of each.
HTML_LANG = {"en": "en", "zh_Hans": "zh-Hans"}
LANG_COOKIE = "lv_lang"
LANG_COOKIE_AGE = 365 * 24 * 3600


def select_locale() -> str:
    """The language of this request (see the module docstring)."""
    user = g.get("dashboard_user")
    if user is not None and user.locale in LANGUAGES:
        return str(user.locale)
    cookie = request.cookies.get(LANG_COOKIE)
    if cookie in LANGUAGES:
        return cookie
    best = request.accept_languages.best_match(["en", "zh", "zh-CN", "zh-Hans", "zh-SG"])
    return "zh_Hans" if best and best.startswith("zh") else DEFAULT


def remember_language(resp: Response, locale: str, *, secure: bool) -> None:
    """Keep the chosen language in a cookie (used before sign-in; no personal data in it)."""
    resp.set_cookie(LANG_COOKIE, locale, max_age=LANG_COOKIE_AGE, secure=secure, httponly=True, samesite="Lax")


def init_app(app: Flask) -> None:
    Babel(
        app,
        locale_selector=select_locale,
        timezone_selector=lambda: "UTC",
        default_translation_directories=str(TRANSLATIONS),
    )
