"""Services that change organisations, memberships and API keys, and resolve the active organisation."""

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.crypto import get_random_string
from django.utils.text import slugify

from maintenance_site.errors import Conflict, InvalidInput, NotFound, PermissionDeniedError
from maintenance_site.tenancy.actors import is_system
from maintenance_site.tenancy.models import (
    ApiKeyScope,
    Membership,
    Organization,
    OrganizationAPIKey,
    OrganizationCounter,
    validate_time_zone,
)
from maintenance_site.tenancy.roles import Role, role_allows

User = get_user_model()


def _validated(instance):
    try:
        instance.full_clean()
    except ValidationError as exc:
        fields = exc.message_dict
        summary = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in fields.items())
        raise InvalidInput(summary, fields=fields) from None
    return instance


@transaction.atomic
def create_organization(*, name: str, slug: str = "", time_zone: str = "UTC", **settings) -> Organization:
    """Create an organisation; the slug defaults to one made from the name."""
    slug = slug or slugify(name)
    if Organization.objects.filter(slug=slug).exists():
        raise Conflict(f"An organisation with the slug “{slug}” already exists.", code="duplicate_slug")
    organization = _validated(Organization(name=name, slug=slug, time_zone=time_zone, **settings))
    organization.save()
    return organization


@transaction.atomic
def add_member(organization: Organization, user, role: str, *, hourly_rate=None) -> Membership:
    """Add `user` to `organization` with `role`, or change their role if they are already a member."""
    if role not in Role.values:
        raise InvalidInput(
            f"“{role}” is not a role; choose one of {', '.join(Role.values)}.",
            fields={"role": ["Unknown role."]},
        )
    membership = Membership.objects.select_for_update().filter(organization=organization, user=user).first()
    if membership is None:
        membership = Membership(organization=organization, user=user)
    membership.role = role
    membership.hourly_rate = hourly_rate
    membership.is_active = True
    _validated(membership).save()
    return membership


def create_api_key(
    organization: Organization, *, name: str, scope: str = ApiKeyScope.READ, created_by=None, expiry_date=None
) -> tuple[OrganizationAPIKey, str]:
    """Create a key and the service user it acts as. Returns the key object and the key itself, which is
    shown once and never stored."""
    if scope not in ApiKeyScope.values:
        raise InvalidInput(f"“{scope}” is not a key scope; choose one of {', '.join(ApiKeyScope.values)}.")
    if not name.strip():
        raise InvalidInput("An API key needs a name saying who or what uses it.", fields={"name": ["Required."]})
    if expiry_date is not None and expiry_date <= timezone.now():
        raise InvalidInput("The expiry date must be in the future.", fields={"expiry_date": ["In the past."]})
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


def acting_membership(organization_id: int, *, actor, not_member: str = "You are not a member of this organisation."):
    """The membership through which `actor` acts in the organisation, or None for automation (`SYSTEM`, or the
    system user it stands for: allowed, and history names the system user). A non-member is refused; a missing
    actor (None) is a TypeError, never an allow."""
    if is_system(actor):
        return None
    membership = Membership.objects.active().filter(organization_id=organization_id, user=actor).first()
    if membership is None:
        raise PermissionDeniedError(not_member)
    return membership


def check_role(membership: Membership | None, action) -> None:
    """Refuse when the membership's role may not do `action` (the role table); automation (None, from
    `acting_membership`) may."""
    if membership is not None and not role_allows(membership.role, action):
        raise PermissionDeniedError(
            f"Your role ({membership.get_role_display()}) may not {action.label}.", code="role_forbids"
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
        raise PermissionDeniedError("Your account is not a member of any organisation.", code="no_membership")
    if requested:
        requested = requested.strip()
        for membership in memberships:
            if requested in (membership.organization.slug, str(membership.organization_id)):
                return membership
        raise PermissionDeniedError(f"You are not a member of an organisation “{requested}”.", code="not_a_member")
    if default_organization_id is not None:
        for membership in memberships:
            if membership.organization_id == default_organization_id:
                return membership
    if len(memberships) == 1:
        return memberships[0]
    slugs = ", ".join(sorted(m.organization.slug for m in memberships))
    raise InvalidInput(
        f"You belong to several organisations ({slugs}): name one in the X-Organization header.",
        code="organization_required",
    )


def get_user_by_username(username: str):
    try:
        return User.objects.get(username=username)
    except User.DoesNotExist:
        raise NotFound(f"No user named “{username}”.") from None


def create_user(username: str, *, email: str = "", password: str | None = None, is_staff=False):
    try:
        with transaction.atomic():
            user = User.objects.create_user(username=username, email=email, password=password, is_staff=is_staff)
    except IntegrityError:
        raise Conflict(f"A user named “{username}” already exists.") from None
    return user


__all__ = [
    "add_member",
    "create_api_key",
    "create_organization",
    "create_user",
    "get_user_by_username",
    "memberships_of",
    "resolve_membership",
    "revoke_api_key",
    "validate_time_zone",
]
