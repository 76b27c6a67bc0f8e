from django.contrib import admin
from django.urls import include, path

admin.site.site_header = "quantweb audit"
admin.site.site_title = "quantweb admin"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("django-rq/", include("django_rq.urls")),
    path("", include("conversions.urls")),
]
