"""Public problem-report pages (no login); mounted at `report/` by the site's URLs."""

from django.urls import path

from workorders import public_views

urlpatterns = [
    path("status/<slug:request_token>/", public_views.report_status, name="public-report-status"),
    path("a/<slug:asset_token>/", public_views.report_for_asset, name="public-report-asset"),
    path("<slug:org_token>/", public_views.report_for_organization, name="public-report"),
]
