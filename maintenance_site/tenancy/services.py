"""Services that change organisations, memberships and API keys, and resolve the active organisation."""

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.crypto import get_random_string
from django.utils.text import slugify
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from maintenance_site import audit
from maintenance_site.errors import Conflict, InvalidInput, NotFound, PermissionDeniedError
from maintenance_site.tenancy.actors import is_system
from maintenance_site.tenancy.models import (
    ApiKeyScope,
    Membership,
    Organization,
    OrganizationAPIKey,
    OrganizationCounter,
    Profile,
    language_choices,
    validate_time_zone,
)
from maintenance_site.tenancy.roles import Action, Role, role_allows
from maintenance_site.validation import assign_editable, delete_or_conflict, validated

User = get_user_model()

ORGANIZATION_FIELDS = {
    "name",
    "slug",
    "time_zone",
    "currency",
    "language",
    "technicians_can_claim",
    "require_verification",
    "reopen_period_days",
}
MEMBERSHIP_FIELDS = {"role", "hourly_rate", "is_active"}
API_KEY_FIELDS = {"name", "scope", "expiry_date"}


@transaction.atomic
def create_organization(*, name: str, slug: str = "", time_zone: str = "UTC", **settings) -> Organization:
    """Create an organisation; the slug defaults to one made from the name."""
    slug = slug or slugify(name)
    if Organization.objects.filter(slug=slug).exists():
        raise Conflict(
            _("An organisation with the slug “%(slug)s” already exists.") % {"slug": slug}, code="duplicate_slug"
        )
    organization = validated(Organization(name=name, slug=slug, time_zone=time_zone, **settings))
    organization.save()
    return organization


def _require_platform(actor, what: str) -> None:
    """`what` is a whole sentence, marked for translation at the call: "Only a platform administrator may …"."""
    if not getattr(actor, "is_superuser", False):
        raise PermissionDeniedError(what, code="platform_only")


@audit.attributed
@transaction.atomic
def update_organization(organization: Organization, *, actor, **changes) -> Organization:
    """Change an organisation's name, time zone, currency or work rules (`manage_settings`)."""
    organization = Organization.objects.select_for_update().get(pk=organization.pk)
    require_role(organization.pk, Action.MANAGE_SETTINGS, actor=actor)
    validated(assign_editable(organization, changes, ORGANIZATION_FIELDS, gettext_lazy("An organisation"))).save()
    return organization


@audit.attributed
@transaction.atomic
def set_language(user, *, actor, language: str) -> Profile:
    """Set the language `user` reads the platform in ("" for none: the browser's, then the organisation's).
    A person sets their own; a manager (`manage_users`) sets it for a member of their organisation; a platform
    administrator or automation (`SYSTEM`) for anyone. Audited: the profile's history names the actor."""
    language = (language or "").strip().lower()
    known = [code for code, _ in language_choices()]
    if language and language not in known:
        raise InvalidInput(
            _("“%(language)s” is not a language the platform speaks; choose one of %(known)s.")
            % {"language": language, "known": ", ".join(known)},
            code="unknown_language",
            fields={"language": [_("Choose one of %(known)s.") % {"known": ", ".join(known)}]},
        )
    if actor.pk != user.pk and not actor.is_superuser and not is_system(actor):
        shared = Membership.objects.active().filter(user=user).values_list("organization_id", flat=True)
        managed = [
            membership
            for membership in Membership.objects.active().filter(user=actor, organization_id__in=list(shared))
            if role_allows(membership.role, Action.MANAGE_USERS)
        ]
        if not managed:
            raise PermissionDeniedError(
                _("Only the person themselves or a manager of their organisation may change their language."),
                code="permission_denied",
            )
    profile, _created = Profile.objects.select_for_update().get_or_create(user=user)
    if profile.language != language:
        profile.language = language
        validated(profile).save()
    user._preferred_language = language  # maintenance_site.i18n's per-request memo of it
    return profile


@audit.attributed
@transaction.atomic
def delete_organization(organization: Organization, *, actor) -> None:
    """Remove an organisation that holds nothing any more (platform administrators only)."""
    _require_platform(actor, _("Only a platform administrator may delete an organisation."))
    delete_or_conflict(organization, gettext_lazy("organisation"))


@audit.attributed
@transaction.atomic
def create_membership(organization: Organization, *, actor, user, role: str, **fields) -> Membership:
    """Make `user` a member of the organisation with `role` (`manage_users`); a second membership of the same
    person is refused (change the one they have)."""
    require_role(organization.pk, Action.MANAGE_USERS, actor=actor)
    membership = Membership(organization=organization, user=user, role=role)
    validated(assign_editable(membership, fields, MEMBERSHIP_FIELDS, gettext_lazy("A membership"))).save()
    return membership


@audit.attributed
@transaction.atomic
def update_membership(membership: Membership, *, actor, **changes) -> Membership:
    """Change a member's role, hourly rate or whether the membership is active (`manage_users`)."""
    membership = Membership.objects.select_for_update().get(pk=membership.pk)
    require_role(membership.organization_id, Action.MANAGE_USERS, actor=actor)
    validated(assign_editable(membership, changes, MEMBERSHIP_FIELDS, gettext_lazy("A membership"))).save()
    return membership


@audit.attributed
@transaction.atomic
def remove_membership(membership: Membership, *, actor) -> None:
    """Take a person out of the organisation (`manage_users`); their past work keeps naming them."""
    require_role(membership.organization_id, Action.MANAGE_USERS, actor=actor)
    delete_or_conflict(membership, gettext_lazy("membership"))


@transaction.atomic
def add_member(organization: Organization, user, role: str, *, hourly_rate=None) -> Membership:
    """Add `user` to `organization` with `role`, or change their role if they are already a member."""
    if role not in Role.values:
        raise InvalidInput(
            _("“%(role)s” is not a role; choose one of %(roles)s.") % {"role": role, "roles": ", ".join(Role.values)},
            fields={"role": [_("Unknown role.")]},
        )
    membership = Membership.objects.select_for_update().filter(organization=organization, user=user).first()
    if membership is None:
        membership = Membership(organization=organization, user=user)
    membership.role = role
    membership.hourly_rate = hourly_rate
    membership.is_active = True
    validated(membership).save()
    return membership


def create_api_key(
    organization: Organization, *, name: str, scope: str = ApiKeyScope.READ, created_by=None, expiry_date=None
) -> tuple[OrganizationAPIKey, str]:
    """Create a key and the service user it acts as. Returns the key object and the key itself, which is
    shown once and never stored."""
    if scope not in ApiKeyScope.values:
        raise InvalidInput(
            _("“%(scope)s” is not a key scope; choose one of %(scopes)s.")
            % {"scope": scope, "scopes": ", ".join(ApiKeyScope.values)}
        )
    if not name.strip():
        raise InvalidInput(_("An API key needs a name saying who or what uses it."), fields={"name": [_("Required.")]})
    if expiry_date is not None and expiry_date <= timezone.now():
        raise InvalidInput(_("The expiry date must be in the future."), fields={"expiry_date": [_("In the past.")]})
    with transaction.atomic():
        service_user = User.objects.create(
            username=f"apikey-{get_random_string(12).lower()}", first_name=name[:150], last_name="(API key)"
        )
        service_user.set_unusable_password()
        service_user.save(update_fields=["password"])
        Membership.objects.create(organization=organization, user=service_user, role=Role.INTEGRATOR)
        api_key, key = OrganizationAPIKey.objects.create_key(
            name=name[:50],
            organization=organization,
            scope=scope,
            service_user=service_user,
            created_by=created_by,
            expiry_date=expiry_date,
        )
    return api_key, key


@audit.attributed
@transaction.atomic
def update_api_key(api_key: OrganizationAPIKey, *, actor, **changes) -> OrganizationAPIKey:
    """Rename a key, change its scope or its expiry date (`manage_keys`)."""
    api_key = OrganizationAPIKey.objects.select_for_update().get(pk=api_key.pk)
    require_role(api_key.organization_id, Action.MANAGE_KEYS, actor=actor)
    if changes.get("expiry_date") is not None and changes["expiry_date"] <= timezone.now():
        raise InvalidInput(_("The expiry date must be in the future."), fields={"expiry_date": [_("In the past.")]})
    validated(assign_editable(api_key, changes, API_KEY_FIELDS, gettext_lazy("An API key"))).save()
    return api_key


@transaction.atomic
def revoke_api_key(api_key: OrganizationAPIKey) -> OrganizationAPIKey:
    """Revoke a key for good: requests made with it get a 401 from now on."""
    api_key = OrganizationAPIKey.objects.select_for_update().get(pk=api_key.pk)
    if api_key.revoked:
        return api_key
    api_key.revoked = True
    api_key.revoked_at = timezone.now()
    api_key.save()
    Membership.objects.filter(user=api_key.service_user_id).update(is_active=False)
    return api_key


def reserve_numbers(organization, name: str, count: int = 1) -> range:
    """Take `count` consecutive numbers of the organisation's `name` counter with one conditional UPDATE
    (never count() + 1). The row stays locked until the caller's transaction ends, so numbers are unique;
    if that transaction rolls back they are given back."""
    counter = OrganizationCounter.objects.filter(organization=organization, name=name)
    if not counter.update(last_number=F("last_number") + count):
        try:
            with transaction.atomic():
                OrganizationCounter.objects.create(organization=organization, name=name)
        except IntegrityError:
            pass  # created concurrently
        counter.update(last_number=F("last_number") + count)
    last = counter.values_list("last_number", flat=True).get()
    return range(last - count + 1, last + 1)


def acting_membership(organization_id: int, *, actor, not_member: str = ""):
    """The membership through which `actor` acts in the organisation, or None for automation (`SYSTEM`, or the
    system user it stands for: allowed, and history names the system user) and for a superuser, who operates the
    platform from the admin (allowed, and history names them). A non-member is refused; a missing actor (None) is a
    TypeError, never an allow."""
    if is_system(actor) or getattr(actor, "is_superuser", False):
        return None
    membership = Membership.objects.active().filter(organization_id=organization_id, user=actor).first()
    if membership is None:
        raise PermissionDeniedError(not_member or _("You are not a member of this organisation."))
    return membership


def check_role(membership: Membership | None, action) -> None:
    """Refuse when the membership's role may not do `action` (the role table); automation (None, from
    `acting_membership`) may."""
    if membership is not None and not role_allows(membership.role, action):
        raise PermissionDeniedError(
            _("Your role (%(role)s) may not %(action)s.")
            % {"role": membership.get_role_display(), "action": Action(action).label},
            code="role_forbids",
        )


def require_role(organization_id: int, action, *, actor) -> Membership | None:
    """`acting_membership` plus `check_role`: the one check services make before changing anything."""
    membership = acting_membership(organization_id, actor=actor)
    check_role(membership, action)
    return membership


def memberships_of(user):
    if user is None or not user.is_authenticated:
        return Membership.objects.none()
    return Membership.objects.active().filter(user=user).select_related("organization")


def resolve_membership(user, requested: str | None = None, *, default_organization_id=None) -> Membership:
    """The membership through which `user` acts now.

    `requested` is the organisation the client named (slug or id, e.g. from the X-Organization header);
    it is always checked against the user's memberships, never trusted. Without it: the remembered
    organisation (the session's choice), else the only one the user has.
    """
    memberships = list(memberships_of(user))
    if not memberships:
        raise PermissionDeniedError(_("Your account is not a member of any organisation."), code="no_membership")
    if requested:
        requested = requested.strip()
        for membership in memberships:
            if requested in (membership.organization.slug, str(membership.organization_id)):
                return membership
        raise PermissionDeniedError(
            _("You are not a member of an organisation “%(slug)s”.") % {"slug": requested}, code="not_a_member"
        )
    if default_organization_id is not None:
        for membership in memberships:
            if membership.organization_id == default_organization_id:
                return membership
    if len(memberships) == 1:
        return memberships[0]
    slugs = ", ".join(sorted(m.organization.slug for m in memberships))
    raise InvalidInput(
        _("You belong to several organisations (%(slugs)s): name one in the X-Organization header.") % {"slugs": slugs},
        code="organization_required",
    )


def get_user_by_username(username: str):
    try:
        return User.objects.get(username=username)
    except User.DoesNotExist:
        raise NotFound(_("No user named “%(username)s”.") % {"username": username}) from None


def create_user(username: str, *, email: str = "", password: str | None = None, is_staff=False):
    try:
        with transaction.atomic():
            user = User.objects.create_user(username=username, email=email, password=password, is_staff=is_staff)
    except IntegrityError:
        raise Conflict(_("A user named “%(username)s” already exists.") % {"username": username}) from None
    return user


__all__ = [
    "add_member",
    "create_api_key",
    "create_membership",
    "create_organization",
    "create_user",
    "delete_organization",
    "get_user_by_username",
    "memberships_of",
    "remove_membership",
    "resolve_membership",
    "revoke_api_key",
    "update_api_key",
    "update_membership",
    "update_organization",
    "validate_time_zone",
]
