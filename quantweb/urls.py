from django.contrib import admin
from django.urls import include, path

from conversions.api.site import urls as api_urls

handler400 = "conversions.upload_guard.bad_request_page"

admin.site.site_header = "quantweb audit"
admin.site.site_title = "quantweb admin"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("django-rq/", include("django_rq.urls")),
    path("api/v1/", api_urls()),
    path("", include("conversions.urls")),
]
