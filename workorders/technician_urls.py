"""The technician's view of work orders, mounted at `t/` by the site's URLs (`maintenance_site/urls.py`), which adds
the inventory's parts pages (`inventory.technician_views`) to the same `technician` namespace."""

from django.urls import path
from django.views.i18n import JavaScriptCatalog

from workorders import technician_api as api
from workorders import technician_views as views

app_name = "technician"

urlpatterns = [
    path("", views.my_work, name="my-work"),
    path("work/list/", views.my_work_fragment, name="my-work-fragment"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("organization/", views.choose_organization, name="organization"),
    path("orders/<int:pk>/", views.order_detail, name="order"),
    path("orders/<int:pk>/do/<slug:action>/", views.order_action, name="order-action"),
    path("orders/<int:pk>/checklist/<int:item_pk>/", views.checklist_result, name="checklist"),
    path("orders/<int:pk>/checklist/<int:item_pk>/follow-up/", views.checklist_follow_up, name="follow-up"),
    path("orders/<int:pk>/notes/", views.add_note, name="note"),
    path("orders/<int:pk>/plan/", views.plan_start, name="plan"),
    path("orders/<int:pk>/time/", views.log_time, name="time"),
    path("orders/<int:pk>/timer/<slug:action>/", views.timer, name="timer"),
    path("orders/<int:pk>/photos/", views.add_photo, name="photo"),
    path("attachments/<slug:token>/", views.attachment_download, name="attachment"),
    path("assets/<slug:public_token>/", views.asset_page, name="asset"),
    path("assets/<slug:public_token>/meters/<int:meter_pk>/", views.meter_reading, name="meter-reading"),
    path("csrf/", views.csrf_token, name="csrf"),
    # the translations technician.js uses (gettext, interpolate), in the page's language (maintenance_site.i18n)
    path("jsi18n/", JavaScriptCatalog.as_view(), name="jsi18n"),
    path("language/", views.set_language, name="language"),
    path("sw.js", views.service_worker, name="service-worker"),
    # JSON endpoints for what may be entered offline (technician.js posts and replays through these)
    path("api/orders/<int:pk>/checklist/<int:item_pk>/", api.checklist_result, name="api-checklist"),
    path("api/orders/<int:pk>/notes/", api.add_note, name="api-note"),
    path("api/orders/<int:pk>/time/", api.log_time, name="api-time"),
    path("api/orders/<int:pk>/do/<slug:action>/", api.order_step, name="api-step"),
    path("api/offline/", api.offline_bundle, name="api-offline"),
    path("api/push/key/", api.push_key, name="api-push-key"),
    path("api/push/subscribe/", api.push_subscribe, name="api-push-subscribe"),
    path("api/push/unsubscribe/", api.push_unsubscribe, name="api-push-unsubscribe"),
    path("manifest.webmanifest", views.manifest, name="manifest"),
    path("icons/<int:size>.png", views.icon, name="icon"),
    path("api/assets/<slug:public_token>/meters/<int:meter_pk>/", api.meter_reading, name="api-meter-reading"),
]
