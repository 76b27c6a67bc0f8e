"""float32 has one name: rows written when it was also called ``none`` are renamed."""

from django.db import migrations, models


def rename_none(apps, schema_editor):
    Artifact = apps.get_model("conversions", "Artifact")
    ConversionRun = apps.get_model("conversions", "ConversionRun")
    Artifact.objects.filter(variant="none").update(variant="float32")
    for run in ConversionRun.objects.filter(variants__regex=r"(^|,)none(,|$)").only("id", "variants"):
        names = ["float32" if v == "none" else v for v in run.variants.split(",")]
        ConversionRun.objects.filter(pk=run.pk).update(variants=",".join(names))
    ConversionRun.objects.filter(primary_variant="none").update(primary_variant="float32")


class Migration(migrations.Migration):
    dependencies = [
        ("conversions", "0002_checkpoint_labels"),
    ]

    operations = [
        migrations.AlterField(
            model_name="artifact",
            name="variant",
            field=models.CharField(
                choices=[("float32", "float32"), ("float16", "float16"), ("dynamic", "dynamic"), ("int8", "int8"),
                         ("int16x8", "int16x8")],
                max_length=10,
            ),
        ),
        migrations.AlterField(
            model_name="conversionrun",
            name="config",
            field=models.JSONField(default=dict, help_text="The full ExportConfig the engine runs, outputs resolved."),
        ),
        migrations.AlterField(
            model_name="conversionrun",
            name="variants",
            field=models.CharField(help_text="Comma-separated variant names, e.g. float32,int8.", max_length=60),
        ),
        migrations.RunPython(rename_none, migrations.RunPython.noop),
    ]
