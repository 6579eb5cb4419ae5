"""The language a person reads the platform in, and the one place it is chosen.

Order (issue 30): the person's own choice (`tenancy.Profile.language`, set with `tenancy.services.set_language`
from the technician view or the admin), then the browser's `Accept-Language` (requests only), then the
organisation's default (`Organization.language`), then settings.LANGUAGE_CODE.

- `UserLanguageMiddleware` activates it for each browser request (after the session's user and organisation are
  known); the API activates it again inside DRF once a Bearer or Api-Key user is known (`activate_for_request`,
  called by `maintenance_site.api.permissions.resolve_request_tenant`).
- `language_for(user, organization)` is what notifications and e-mails use: the recipient's language, never the
  actor's. Texts for several people are built lazily (`gettext_lazy`, `format_lazy`, `lazy_date_time`) and turned
  into strings inside `translation.override(language_for(recipient, organization))`.
- Dates and times keep the one format rule of `maintenance_site.formats`, per language through the locale format
  modules (`maintenance_site/locale_formats/<language>/formats.py`); amounts of money are written by
  `money()` (Babel's CLDR data: "1.234,50 €" in Spanish, "€1,234.50" in English).

Translations: `locale/<language>/LC_MESSAGES/django.po` and `djangojs.po` (committed); the `.mo` files are compiled
from them by `manage.py compiletranslations` (Babel, no gettext binaries needed), which `make install`, `make run`,
`make test`, the Dockerfile and the test session run when a `.po` is newer than its `.mo` (README, "Languages").
"""

from decimal import Decimal

from babel.numbers import format_currency
from django.conf import settings
from django.utils import translation
from django.utils.cache import patch_vary_headers
from django.utils.formats import number_format
from django.utils.functional import lazy
from django.utils.translation import trans_real

from maintenance_site import formats
from maintenance_site.tenancy.models import Profile


def supported(code: str | None) -> str:
    """The platform's language for `code` ("es-MX" → "es", "en" → "en-gb"), or "" when it speaks none like it."""
    if not code:
        return ""
    try:
        return translation.get_supported_language_variant(code.lower())
    except LookupError:
        return ""


def from_accept_language(header: str) -> str:
    """The first language of an `Accept-Language` header the platform speaks, or ""."""
    for code, _quality in trans_real.parse_accept_lang_header(header or ""):
        if code == "*":
            break
        found = supported(code)
        if found:
            return found
    return ""


def preferred_language(user) -> str:
    """The person's own choice, or "" (one query; none for an anonymous visitor)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return ""
    cached = getattr(user, "_preferred_language", None)
    if cached is None:
        cached = Profile.objects.filter(user_id=user.pk).values_list("language", flat=True).first() or ""
        user._preferred_language = cached
    return supported(cached)


def language_for(user=None, organization=None, *, accept_language: str | None = None) -> str:
    """The language to speak to `user`: their choice → `accept_language` (a request's header) → the organisation's
    default → settings.LANGUAGE_CODE."""
    return (
        preferred_language(user)
        or from_accept_language(accept_language or "")
        or supported(getattr(organization, "language", "") or "")
        or settings.LANGUAGE_CODE
    )


def languages_for(users, organization) -> dict[int, str]:
    """Per user id, the language to write to each of `users` outside a request (notifications, e-mails): their
    choice, else the organisation's default. One query, however many users."""
    chosen = dict(
        Profile.objects.filter(user_id__in=[user.pk for user in users])
        .exclude(language="")
        .values_list("user_id", "language")
    )
    default = supported(getattr(organization, "language", "") or "") or settings.LANGUAGE_CODE
    return {user.pk: supported(chosen.get(user.pk, "")) or default for user in users}


def language_of_request(request, *, personal: bool = True) -> str:
    """`personal=False` for an API key's service user, who has no preference to look up (no query)."""
    organization = getattr(request, "organization", None)
    return language_for(
        getattr(request, "user", None) if personal else None,
        organization if organization else None,
        accept_language=request.META.get("HTTP_ACCEPT_LANGUAGE", ""),
    )


def activate_for_request(request, *, personal: bool = True) -> str:
    """Activate the request's language (see `language_for`) for the rest of the request; returns it."""
    language = language_of_request(request, personal=personal)
    translation.activate(language)
    for target in (request, getattr(request, "_request", None)):
        if target is not None:
            target.LANGUAGE_CODE = language
    return language


class UserLanguageMiddleware:
    """Django's LocaleMiddleware, with the person's choice first and the organisation's default last (no language
    prefix in URLs, no cookie). Answers say which language they are in and that it depends on Accept-Language."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        previous = translation.get_language()
        language = activate_for_request(request)
        try:
            response = self.get_response(request)
        finally:
            if previous:
                translation.activate(previous)
            else:
                translation.deactivate()
        language = getattr(request, "LANGUAGE_CODE", language)
        patch_vary_headers(response, ("Accept-Language",))
        response.headers.setdefault("Content-Language", language)
        return response


# --- locale-aware values, also lazily (for texts rendered later in each recipient's language) ------------------


lazy_date_time = lazy(formats.date_time, str)


def money(amount, currency: str) -> str:
    """`amount` of `currency` in the active language: "1.234,50 €" (es), "€1,234.50" (en-gb)."""
    if amount is None:
        return ""
    return format_currency(Decimal(amount), currency, locale=translation.to_locale(translation.get_language() or "en"))


lazy_money = lazy(money, str)


def number(value) -> str:
    """A quantity in the active language, without trailing zeros: "2,5" (es), "2.5" (en-gb)."""
    return number_format(Decimal(str(value)).normalize())


lazy_number = lazy(number, str)
lazy_date = lazy(formats.date, str)
