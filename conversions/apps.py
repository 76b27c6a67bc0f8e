from django.apps import AppConfig


class ConversionsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "conversions"
    verbose_name = "Conversions"
