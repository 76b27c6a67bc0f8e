"""The staff audit view: who converted what, when, with which data and settings.

Runs and artifacts are an audit trail: read-only here (view permission only, no add/change/delete).
Datasets and checkpoints are editable; marking a checkpoint trusted is a staff decision made here.
"""

import json

from django.contrib import admin, messages
from django.contrib.admin.models import CHANGE, LogEntry
from django.utils.html import format_html

from conversions.models import ApiToken, Artifact, Checkpoint, ConversionRun, Dataset


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ("name", "source", "layout", "num_images", "num_classes", "num_skipped", "created_by", "created")
    list_filter = ("source", "layout", "created")
    search_fields = ("name", "path", "archive_name", "description")
    readonly_fields = ("structure", "thumbnails", "num_images", "num_classes", "num_skipped", "created")
    date_hierarchy = "created"


@admin.register(Checkpoint)
class CheckpointAdmin(admin.ModelAdmin):
    """Trust is given or withdrawn only by the actions (recorded with who, when and the digest, and in the
    admin log); a version's files and architecture are read-only here (a change is a new version)."""

    list_display = (
        "name", "version", "architecture", "size_bytes", "short_sha256", "runs_code", "trusted", "trusted_by",
        "trusted_at", "created_by", "created",
    )  # fmt: skip
    list_filter = ("trusted", "preprocess", "created")
    search_fields = ("name", "architecture", "sha256", "description")
    readonly_fields = (
        "sha256", "size_bytes", "created", "trusted", "trusted_by", "trusted_at", "trusted_digest", "code_reasons",
    )  # fmt: skip
    actions = ["mark_trusted", "mark_untrusted"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return self.readonly_fields
        return (*self.readonly_fields, *Checkpoint.IMMUTABLE_FIELDS)

    def save_model(self, request, obj, form, change):
        """A version added here gets its digest and code check like an upload (it is changed no further)."""
        super().save_model(request, obj, form, change)
        if not change:
            obj.record_file_digest()
            obj.save(update_fields=["sha256", "size_bytes", "code_reasons"])

    @admin.display(description="sha256")
    def short_sha256(self, obj):
        return obj.sha256[:12]

    @admin.display(boolean=True, description="runs code")
    def runs_code(self, obj):
        return obj.runs_code

    @admin.action(description="Mark trusted (allow unpickling and architecture code, for these exact files)")
    def mark_trusted(self, request, queryset):
        for ckpt in queryset:
            ckpt.trust(request.user)
            _log(request, ckpt, f"Marked trusted for digest {ckpt.trusted_digest} (file sha256 {ckpt.sha256 or '-'}).")
        self.message_user(request, f"{len(queryset)} checkpoint(s) marked trusted.", messages.WARNING)

    @admin.action(description="Mark untrusted")
    def mark_untrusted(self, request, queryset):
        for ckpt in queryset:
            ckpt.distrust(request.user)
            _log(request, ckpt, "Marked untrusted.")
        self.message_user(request, f"{len(queryset)} checkpoint(s) marked untrusted.")


def _log(request, obj, message: str) -> None:
    """An entry in Django's admin log (the object's History), so every trust decision is audited."""
    LogEntry.objects.log_actions(
        user_id=request.user.pk, queryset=[obj], action_flag=CHANGE, change_message=message, single_object=True
    )


class ArtifactInline(admin.TabularInline):
    model = Artifact
    fields = ("filename", "variant", "size_bytes", "sha256", "created")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(ConversionRun)
class ConversionRunAdmin(ReadOnlyAdmin):
    list_display = (
        "id", "status", "model_name", "model_version", "variants", "dataset_name", "size_bytes", "top1_agreement",
        "duration_s", "source", "created_by", "cancelled_by", "rerun_of", "short_checkpoint_sha256", "worker",
        "created",
    )  # fmt: skip
    list_filter = ("status", "source", "primary_variant", "created")
    search_fields = ("id", "model_name", "dataset_name", "job_id", "worker", "error", "created_by__username")
    list_select_related = ("created_by", "cancelled_by")
    date_hierarchy = "created"
    inlines = [ArtifactInline]
    exclude = ("report",)
    readonly_fields = ("report_json",)

    @admin.display(description="checkpoint sha256")
    def short_checkpoint_sha256(self, obj):
        return obj.checkpoint_sha256[:12]

    @admin.display(description="report")
    def report_json(self, obj):
        text = json.dumps(obj.report, indent=1, default=str) if obj.report else "-"
        return format_html('<pre style="max-height:30em;overflow:auto;white-space:pre-wrap">{}</pre>', text)

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if request.resolver_match and request.resolver_match.url_name.endswith("changelist"):
            qs = qs.defer("report", "log", "config")
        return qs


@admin.register(Artifact)
class ArtifactAdmin(ReadOnlyAdmin):
    list_display = ("filename", "variant", "size_bytes", "short_sha256", "run_link", "created")
    list_filter = ("variant", "created")
    search_fields = ("filename", "sha256", "run__model_name")
    list_select_related = ("run",)

    @admin.display(description="sha256")
    def short_sha256(self, obj):
        return obj.sha256[:12]

    @admin.display(description="run")
    def run_link(self, obj):
        return format_html('<a href="{}">run {}</a>', obj.run.get_absolute_url(), obj.run_id)


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdmin):
    """Staff see every user's tokens (never the token: only its prefix and digest are stored) and revoke them."""

    list_display = ("prefix", "user", "name", "created", "last_used", "revoked")
    list_filter = ("revoked", "created")
    search_fields = ("prefix", "user__username", "name")
    actions = ["revoke"]

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset):
        revoked = sum(token.revoke() for token in queryset)
        self.message_user(request, f"Revoked {revoked} token(s); requests with them now answer 401.", messages.INFO)
