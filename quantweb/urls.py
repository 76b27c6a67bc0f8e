from django.conf import settings
from django.contrib import admin
from django.contrib.auth import urls as auth_urls
from django.urls import include, path

from conversions.api.site import urls as api_urls

handler400 = "conversions.upload_guard.bad_request_page"

admin.site.site_header = "quantweb audit"
admin.site.site_title = "quantweb admin"

RESET_PAGES = {"password_reset", "password_reset_done", "password_reset_confirm", "password_reset_complete"}
# without a mail server a reset page would promise an email nobody sends: those pages exist only with one
account_pages = [p for p in auth_urls.urlpatterns if settings.QUANTWEB_PASSWORD_RESET or p.name not in RESET_PAGES]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include(account_pages)),
    path("django-rq/", include("django_rq.urls")),
    path("api/v1/", api_urls()),
    path("", include("conversions.urls")),
]
