"""Forms: parse what a person typed once, into the record (and from there into an ``ExportConfig``)."""

from __future__ import annotations

import shutil
from pathlib import Path

from django import forms
from django.conf import settings
from django.db import IntegrityError, transaction

from conversions.engine.config import (
    CALIBRATION_METHODS,
    DEFAULT_CALIBRATION,
    DEFAULT_CALIBRATION_SAMPLES,
    DEFAULT_EVALUATION_SAMPLES,
    LIMITS,
    ExportConfig,
    parse_input_shape,
)
from conversions.engine.errors import ConfigError, QuantwebError, render
from conversions.engine.variants import calibrated
from conversions.models import (
    VARIANT_CHOICES,
    Checkpoint,
    ConversionRun,
    Dataset,
    name_validator,
)
from conversions.media import media_relative, shown_to
from conversions.run_settings import RunSettings
from conversions import registration, run_actions
from conversions.uploads import ARCHIVE_SUFFIXES, allowed_server_path, new_dataset_folder
from conversions.wording import PORTAL_FIELD_NAMES, RUN_FORM_FIELDS

PREPROCESS_CHOICES = [
    ("imagenet", "imagenet: resize, centre crop, ImageNet mean/std"),
    ("inception", "inception: scale to [-1, 1]"),
    ("raw", "raw: scale to [0, 1]"),
    ("yolo", "yolo: letterbox, [0, 1]"),
]
CHECKPOINT_SUFFIXES = (".pth", ".pt", ".pt2")


def checkpoint_code_summary(checkpoint: Checkpoint) -> str:
    """Why a checkpoint runs code, in the words of a page: no server paths."""
    if checkpoint.architecture_file:
        return "its architecture is an uploaded .py file"
    if checkpoint.architecture and not checkpoint.file.name.lower().endswith(".pt2"):
        return "its architecture is a module or a file, not a built-in name"
    return "it carries pickled payloads or names code to import"


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):,.0f} MB"


def _limit_widget(name: str, **attrs) -> forms.NumberInput:
    """The browser's min/max hints for an input, from the engine's range for it."""
    limit = LIMITS[name]
    bounds = {"min": limit.least} if limit.most is None else {"min": limit.least, "max": limit.most}
    return forms.NumberInput(attrs={**bounds, **attrs})


def _checked_by_the_engine(name: str):
    """A ``clean_<name>`` whose message is the engine's: one wording of a range, not a second copy of it."""

    def clean(form: forms.Form):
        value = form.cleaned_data.get(name)
        if value is not None:
            try:
                LIMITS[name].check(name, value)
            except ConfigError as err:
                raise forms.ValidationError(err.render(PORTAL_FIELD_NAMES)) from None
        return value

    return clean


class NewRunForm(forms.Form):
    checkpoint = forms.ModelChoiceField(queryset=Checkpoint.objects.all(), empty_label=None)
    dataset = forms.ModelChoiceField(
        queryset=Dataset.objects.filter(status=Dataset.Status.READY),
        required=False,
        empty_label="(none: no calibration data)",
        help_text="Images for calibration (int8, int16x8) and for checking fidelity.",
    )
    variants = forms.MultipleChoiceField(
        choices=VARIANT_CHOICES, widget=forms.CheckboxSelectMultiple, initial=["int8"]
    )
    # max_value is the portal's own cap on a run's work; the engine takes more from the command line.
    num_calib_samples = forms.IntegerField(
        label="Calibration samples", max_value=10_000, initial=DEFAULT_CALIBRATION_SAMPLES,
        widget=_limit_widget("num_calib_samples"),
        help_text="Images sampled (stratified by class, seeded) to calibrate activation ranges.",
    )  # fmt: skip
    preprocess = forms.ChoiceField(
        choices=[("", "the checkpoint's own")] + PREPROCESS_CHOICES, required=False, label="Preprocessing"
    )
    seed = forms.IntegerField(initial=0, widget=_limit_widget("seed"), help_text="Seeds the sampling.")

    num_eval_samples = forms.IntegerField(
        label="Held-out samples", max_value=10_000, initial=DEFAULT_EVALUATION_SAMPLES, required=False,
        widget=forms.NumberInput(attrs={"min": 1}),  # 0 verifies nothing: the engine refuses it with a dataset
        help_text="Images not used for calibration, on which every variant is checked against PyTorch.",
    )  # fmt: skip
    calibration_method = forms.ChoiceField(
        choices=[(m, m) for m in CALIBRATION_METHODS], initial=DEFAULT_CALIBRATION, label="Activation ranges",
        required=False,
        help_text="How int8 activation ranges are chosen from the calibration statistics.",
    )  # fmt: skip
    max_drop = forms.FloatField(
        required=False, widget=_limit_widget("max_drop", step="any"), label="Accuracy budget (points)",
        help_text="int8 may lose at most this many points of top-1 agreement with PyTorch on confidently "
        "classified held-out images (or of labeled accuracy); layers are kept in float until it holds.",
    )  # fmt: skip

    clean_num_calib_samples = _checked_by_the_engine("num_calib_samples")
    clean_num_eval_samples = _checked_by_the_engine("num_eval_samples")
    clean_seed = _checked_by_the_engine("seed")
    clean_max_drop = _checked_by_the_engine("max_drop")

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.config: ExportConfig | None = None
        """The run's config, built and checked by the engine in ``clean``; ``launch`` runs exactly this."""

    def clean_checkpoint(self) -> Checkpoint:
        checkpoint = self.cleaned_data["checkpoint"]
        if not checkpoint.launchable:
            raise forms.ValidationError(
                f"{checkpoint} runs code when it is loaded ({checkpoint_code_summary(checkpoint)}); a staff member "
                "must trust the checkpoint (Mark trusted, in the admin) before it can be converted."
            )
        return checkpoint

    def clean(self):
        data = super().clean()
        variants = data.get("variants") or []
        if calibrated(variants) and not data.get("dataset"):
            self.add_error("dataset", "int8 and int16x8 are calibrated: pick a dataset of representative images.")
        if not self.errors:
            self.config = self._checked_config()
        try:
            run_actions.check_queue_room(self.user)
        except run_actions.TooManyQueued as err:
            raise forms.ValidationError(str(err)) from None
        return data

    def _checked_config(self) -> ExportConfig | None:
        """The config the engine will run, or None with the engine's error on the field it is about (on the form
        as a whole if no field of this form sets that input)."""
        d = self.cleaned_data
        try:
            return self.run_settings().config_for(d["checkpoint"], d.get("dataset"))
        except QuantwebError as err:
            self.add_error(RUN_FORM_FIELDS.get(err.field or "") or None, err.render(PORTAL_FIELD_NAMES))
            return None

    def run_settings(self) -> RunSettings:
        d = self.cleaned_data
        return RunSettings(
            variants=tuple(d["variants"]),
            num_calib_samples=d["num_calib_samples"],
            num_eval_samples=DEFAULT_EVALUATION_SAMPLES if d["num_eval_samples"] is None else d["num_eval_samples"],
            preprocess=d["preprocess"] or d["checkpoint"].preprocess,
            seed=d["seed"],
            calibration_method=d["calibration_method"] or DEFAULT_CALIBRATION,
            max_drop=d["max_drop"],
        )

    def launch(self, user) -> ConversionRun:
        checkpoint, dataset = self.cleaned_data["checkpoint"], self.cleaned_data["dataset"]
        return ConversionRun.launch(self.config, user, checkpoint=checkpoint, dataset=dataset)


class DatasetForm(forms.Form):
    name = forms.CharField(max_length=100, validators=[name_validator])
    archive = forms.FileField(
        required=False,
        help_text="A .zip or .tar.gz of images (ImageFolder class folders, YOLO, or a flat folder).",
    )
    server_path = forms.CharField(
        required=False, max_length=1000, label="…or a folder on the server",
        help_text="Must be inside a folder staff allowed (QUANTWEB_DATASET_ROOTS).",
    )  # fmt: skip
    dataset_type = forms.ChoiceField(
        choices=[("auto", "detect"), ("classification", "classification"), ("detection", "detection"),
                 ("images", "unlabelled images")],
        initial="auto",
    )  # fmt: skip
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        roots = ", ".join(shown_to(user, str(r)) for r in settings.QUANTWEB_DATASET_ROOTS) or "none configured"
        self.fields["server_path"].help_text = f"Must be inside an allowed folder: {roots}."
        self.fields["archive"].help_text += f" At most {_mb(settings.QUANTWEB_MAX_DATASET_UPLOAD)}."

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        if Dataset.objects.filter(name=name).exists():
            raise forms.ValidationError("A dataset with this name exists; choose another name.")
        return name

    def clean_archive(self):
        archive = self.cleaned_data.get("archive")
        if archive is None:
            return None
        if not archive.name.lower().endswith(ARCHIVE_SUFFIXES):
            raise forms.ValidationError("Upload a .zip, .tar.gz or .tar archive.")
        if archive.size > settings.QUANTWEB_MAX_DATASET_UPLOAD:
            raise forms.ValidationError(
                f"The archive is {_mb(archive.size)}; the limit is {_mb(settings.QUANTWEB_MAX_DATASET_UPLOAD)}."
            )
        return archive

    def clean_server_path(self) -> Path | None:
        text = self.cleaned_data.get("server_path", "").strip()
        if not text:
            return None
        try:
            return allowed_server_path(text)
        except ValueError as err:
            raise forms.ValidationError(str(err)) from None

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        if bool(data.get("archive")) == bool(data.get("server_path")):
            raise forms.ValidationError("Upload an archive or give a server folder (one of the two).")
        return data

    def register(self) -> Dataset | None:
        """Registers the dataset: a server folder or a small archive in the request, a large archive by a job
        (the row is returned registering). On failure the error is on the form, None is returned and nothing
        is left on disk or in the database."""
        d = self.cleaned_data
        archive = d.get("archive")
        queued = bool(archive) and registration.queues(archive)
        folder = new_dataset_folder(d["name"]) if archive and not queued else None
        try:
            if queued:
                return registration.queue_upload(archive, name=d["name"], dataset_type=d["dataset_type"],
                                                 description=d["description"], user=self.user)  # fmt: skip
            if archive:
                dataset = Dataset.new(name=d["name"], path=folder, source=Dataset.Source.UPLOAD,
                                      dataset_type=d["dataset_type"], description=d["description"],
                                      archive_name=archive.name, user=self.user)  # fmt: skip
                return registration.extract_and_register(dataset, archive, archive.size, folder)
            return Dataset.register(
                name=d["name"], path=d["server_path"], source=Dataset.Source.SERVER, dataset_type=d["dataset_type"],
                description=d["description"], user=self.user,
            )  # fmt: skip
        except registration.REGISTRATION_ERRORS as err:
            self.add_error(*registration.registration_error(err, self.user))
        except IntegrityError:
            self.add_error("name", "A dataset with this name exists; choose another name.")
        finally:
            if folder is not None and not Dataset.objects.filter(name=d["name"], source=Dataset.Source.UPLOAD,
                                                                 path__startswith=media_relative(folder)).exists():  # fmt: skip
                shutil.rmtree(folder, ignore_errors=True)
        return None


class CheckpointForm(forms.Form):
    name = forms.CharField(
        max_length=100, validators=[name_validator],
        help_text="Uploading under an existing name adds the next version of that model.",
    )  # fmt: skip
    file = forms.FileField(required=False, label="Checkpoint (.pth, .pt, .pt2)")
    architecture = forms.CharField(
        required=False, max_length=300,
        help_text="package.module:factory, a built-in name (efficientnet-lite0), or the factory function in "
        "the .py file below.",
    )  # fmt: skip
    architecture_file = forms.FileField(required=False, label="Architecture .py (optional)")
    input_shape = forms.CharField(initial="1,3,224,224", help_text="N,C,H,W")
    preprocess = forms.ChoiceField(choices=PREPROCESS_CHOICES, initial="imagenet")
    labels = forms.FileField(
        required=False, label="Labels file (optional)",
        help_text="A text file, one class name per line in output order; without one, labeled accuracy maps the "
        "sorted class folders to outputs 0, 1, 2, …",
    )  # fmt: skip
    trusted = forms.BooleanField(
        required=False,
        help_text="Staff only: allow what runs code (full unpickling, the .py, a module architecture); "
        "recorded with your name for these exact bytes. Only for files you trust.",
    )
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        if not (user and user.is_staff):
            del self.fields["trusted"]
        self.fields["file"].help_text = f"At most {_mb(settings.QUANTWEB_MAX_CHECKPOINT_UPLOAD)}."

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        if not Checkpoint.may_add_version(self.user, name):
            raise forms.ValidationError(
                f"The model name {name} belongs to another user; only they or a staff member may add a version. "
                "Choose another name."
            )
        return name

    def clean_file(self):
        f = self.cleaned_data.get("file")
        if f is None:
            return None
        if not f.name.lower().endswith(CHECKPOINT_SUFFIXES):
            raise forms.ValidationError("Upload a .pth, .pt or .pt2 file.")
        if f.size > settings.QUANTWEB_MAX_CHECKPOINT_UPLOAD:
            raise forms.ValidationError(
                f"The file is {_mb(f.size)}; the limit is {_mb(settings.QUANTWEB_MAX_CHECKPOINT_UPLOAD)}."
            )
        return f

    def clean_architecture_file(self):
        f = self.cleaned_data.get("architecture_file")
        if f is None:
            return None
        if not f.name.endswith(".py"):
            raise forms.ValidationError("The architecture file must be a .py file.")
        if f.size > settings.QUANTWEB_MAX_ARCHITECTURE_UPLOAD:
            raise forms.ValidationError("The architecture file is larger than 1 MB; is it really source code?")
        return f

    def clean_labels(self):
        f = self.cleaned_data.get("labels")
        if f is None:
            return None
        if not f.name.lower().endswith(".txt"):
            raise forms.ValidationError("The labels file must be a .txt file, one class name per line.")
        if f.size > settings.QUANTWEB_MAX_LABELS_UPLOAD:
            raise forms.ValidationError("The labels file is larger than 1 MB; it should hold one class name a line.")
        try:
            text = f.read().decode("utf-8")
        except UnicodeDecodeError:
            raise forms.ValidationError("The labels file is not UTF-8 text (one class name per line).") from None
        finally:
            f.seek(0)
        if not any(line.strip() for line in text.splitlines()):
            raise forms.ValidationError("The labels file is empty; it needs one class name per line.")
        return f

    def clean_input_shape(self) -> list[int]:
        try:
            return list(parse_input_shape(self.cleaned_data["input_shape"]))
        except ValueError as err:
            raise forms.ValidationError(render(str(err), {"input_shape": "The input shape"})) from None

    def clean(self):
        data = super().clean()
        f, arch, arch_file = data.get("file"), data.get("architecture", "").strip(), data.get("architecture_file")
        if arch_file and (not arch or ":" in arch or "." in arch):
            self.add_error("architecture", "With a .py file, give the name of its factory function, e.g. build.")
        if not f and not arch:
            self.add_error("file", "Upload a checkpoint, or name a built-in model in Architecture.")
        elif f and not arch and not f.name.endswith(".pt2") and not data.get("trusted"):
            self.add_error(
                "architecture",
                "A .pth/.pt state dict needs its architecture (module:factory, a .py file, or a built-in name).",
            )
        return data

    def save(self) -> Checkpoint:
        d = self.cleaned_data
        for _ in range(5):  # two uploads of the same name at once: the loser takes the next version
            ckpt = Checkpoint(
                name=d["name"], version=Checkpoint.next_version(d["name"]), architecture=d["architecture"].strip(),
                input_shape=d["input_shape"], preprocess=d["preprocess"],
                description=d["description"], created_by=self.user,
            )  # fmt: skip
            try:
                with transaction.atomic():
                    ckpt.save()
            except IntegrityError:
                continue
            break
        else:
            raise IntegrityError(f"could not number a new version of {d['name']}")
        if d.get("file"):
            ckpt.file.save(d["file"].name, d["file"], save=False)
        if d.get("architecture_file"):
            ckpt.architecture_file.save(d["architecture_file"].name, d["architecture_file"], save=False)
        if d.get("labels"):
            ckpt.labels.save(d["labels"].name, d["labels"], save=False)
        ckpt.record_file_digest()
        ckpt.save()
        if d.get("trusted"):
            ckpt.trust(self.user)
        return ckpt
