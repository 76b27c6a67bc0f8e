from django.urls import path

from conversions import token_views, views

app_name = "conversions"

urlpatterns = [
    path("", views.history, name="history"),
    path("runs/new/", views.new_run, name="run_new"),
    path("runs/compare/", views.run_compare, name="run_compare"),
    path("runs/<int:pk>/", views.run_detail, name="run"),
    path("runs/<int:pk>/status.json", views.run_status, name="run_status"),
    path("runs/<int:pk>/cancel/", views.cancel_run, name="run_cancel"),
    path("runs/<int:pk>/rerun/", views.rerun, name="run_rerun"),
    path("artifacts/<int:pk>/<str:filename>", views.download, name="download"),
    path("datasets/", views.dataset_list, name="datasets"),
    path("datasets/new/", views.dataset_new, name="dataset_new"),
    path("datasets/<int:pk>/", views.dataset_detail, name="dataset"),
    path("datasets/<int:pk>/detect/", views.dataset_detect, name="dataset_detect"),
    path("datasets/<int:pk>/delete/", views.dataset_delete, name="dataset_delete"),
    path("datasets/<int:pk>/thumbnails/<int:index>.jpg", views.dataset_thumbnail, name="dataset_thumbnail"),
    path("checkpoints/", views.checkpoint_list, name="checkpoints"),
    path("checkpoints/new/", views.checkpoint_new, name="checkpoint_new"),
    path("checkpoints/<int:pk>/", views.checkpoint_detail, name="checkpoint"),
    path("tokens/", token_views.token_list, name="tokens"),
    path("tokens/<int:pk>/revoke/", token_views.token_revoke, name="token_revoke"),
]
