"""The SLA's section of the quality report (`maintenance_site.reports.registry`): the breaches detected in the
period by policy, target (response, resolution) and level (warning, breach), and the latest of them. Two queries.
Registered when `SlaConfig.ready()` imports this module."""

from django.db.models import Count
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from maintenance_site.analytics import periods
from maintenance_site.i18n import number
from maintenance_site.reports import registry
from maintenance_site.reports.registry import Block
from sla.models import SLAViolation

LIST_LIMIT = 100


@registry.section("quality", "sla_breaches", title="SLA breaches", order=40)
def sla_breaches(scope, options):
    violations = SLAViolation.objects.filter(
        organization=scope.organization, detected_at__gte=scope.start, detected_at__lt=scope.end
    ).filter(periods.scope_q(scope, location="work_order__location"))
    grouped = list(
        violations.values("policy__name", "kind", "level")
        .annotate(n=Count("pk"))
        .order_by("policy__name", "kind", "level")
    )
    kinds, levels = (
        dict(SLAViolation._meta.get_field("kind").flatchoices),
        dict(SLAViolation._meta.get_field("level").flatchoices),
    )
    summary = [
        [g["policy__name"], kinds.get(g["kind"], g["kind"]), levels.get(g["level"], g["level"]), g["n"]]
        for g in grouped
    ]
    latest = [
        [
            v.detected_at,
            v.work_order.number,
            v.policy.name,
            v.get_kind_display(),
            v.get_level_display(),
            round(v.late_seconds / 3600, 1),
        ]
        for v in violations.select_related("work_order", "policy")
        .only("detected_at", "kind", "level", "late_seconds", "work_order__number", "policy__name")
        .order_by("-detected_at", "-pk")[:LIST_LIMIT]
    ]
    total = sum(row[3] for row in summary)
    return [
        Block(
            _("SLA breaches by policy"),
            [_("Policy"), _("Target"), _("Level"), _("Count")],
            summary,
            note=ngettext(
                "%(count)s warning or breach detected in the period.",
                "%(count)s warnings and breaches detected in the period.",
                total,
            )
            % {"count": number(total)},
            key="sla_by_policy",
        ),
        Block(
            _("Latest SLA breaches"),
            [_("Detected"), _("Work order"), _("Policy"), _("Target"), _("Level"), _("Hours late")],
            latest,
            note=_("The latest %(count)s of the period.") % {"count": LIST_LIMIT} if total > LIST_LIMIT else "",
            key="sla_latest",
        ),
    ]
