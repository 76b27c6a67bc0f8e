"""The run page of a benchmark run: the variants table, the charts, the disagreements and each variant's details."""

from __future__ import annotations

import copy
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from support.runs import record_benchmark_runs

from conversions.models import Checkpoint, ConversionRun, Dataset
from conversions.run_settings import RunSettings

pytestmark = pytest.mark.django_db


@pytest.fixture
def user_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("ada", password="pw"))
    return client


def _run(report: dict) -> ConversionRun:
    ckpt = Checkpoint.objects.create(name="near_tie", version=1, architecture="x:build", input_shape=[1, 3, 32, 32])
    ds = Dataset.objects.create(name="colours", source="server", path="/data/colours")
    return record_benchmark_runs(report, ckpt, ds, settings=[(8, 0)])[0]


def _section(html: str, marker: str) -> str:
    return html.split(marker, 1)[1].split("</section>", 1)[0]


def test_the_variants_table_shows_latency_per_thread_count_accuracy_drop_and_the_pytorch_row(user_client, portal_report):
    run = _run(portal_report)
    response = user_client.get(run.get_absolute_url())
    table = _section(response.content.decode(), 'id="variants"')
    assert "1 thread" in table and "2 threads" in table and "Labeled accuracy" in table
    rows = table.split("<tbody>")[1].split("</tbody>")[0].split("</tr>")[:-1]
    assert len(rows) == 6
    assert "PyTorch" in rows[0] and '<td class="num">100.0</td>' in rows[0] and "reference" in rows[0]
    for row, variant in zip(rows[1:], portal_report["variants"]):
        assert variant["variant"] in row
        for threads in ("1", "2"):
            median = variant["latency_ms"][threads]["median"]
            assert f"{median:.3f}" in row, f"{variant['variant']} median at {threads} thread(s)"
    int8 = next(r for r in rows if ">int8<" in r)
    drop = int8.split("data-drop>")[1].split("</td>")[0]
    assert drop.startswith("50.0") and "worse" in int8, "int8 loses 50 points of top-1 accuracy"
    assert int8.count('>50.0</td>') == 2  # confident agreement, accuracy
    # top-1 agreement 6 of 12 with its 95% Wilson interval: 0.5 +- 1.96 * sqrt(0.25/12 + 1.96^2/576) / (1 + 1.96^2/12)
    assert '>50.0 <span class="muted ci"' in int8 and "(25.4–74.6)" in int8
    assert set(response.context["charts"]) == {"size", "latency", "fidelity", "tradeoff"}


def test_disagreements_show_thumbnails_and_both_top3(user_client, portal_report):
    run = _run(portal_report)
    html = user_client.get(run.get_absolute_url()).content.decode()
    section = _section(html, 'id="disagreements"')
    assert "Where int8 and PyTorch disagree" in section and "6 of 12" in section
    assert section.count('<img src="data:image/jpeg;base64,') == 6
    figure = section.split("<figure>")[1]
    pytorch, int8 = figure.split("<ol>")[1:3]
    assert pytorch.index("green") < pytorch.index("blue"), "PyTorch answers green"
    assert int8.index("blue") < int8.index("green"), "int8 answers blue"


def test_int8_per_layer_error_is_a_table_and_a_chart(user_client, portal_report):
    run = _run(portal_report)
    response = user_client.get(run.get_absolute_url())
    detail = _section(response.content.decode(), 'id="detail-int8"')
    assert "Per-layer error" in detail and "SQNR dB" in detail and "Activation ranges" in detail
    assert 'id="chart-layers-int8"' in detail
    chart = response.context["layer_charts"]["layers-int8"]
    ops = portal_report["variants"][3]["extra"]["layer_errors"]["ops"]
    assert chart["data"][0]["y"] == [op["sqnr_db"] for op in ops if op["sqnr_db"] is not None]


def test_guard_detection_and_odd_shapes_render_without_breaking_the_page(user_client, portal_report):
    report = copy.deepcopy(portal_report)
    int8 = report["variants"][3]
    int8["extra"]["guard"] = {
        "max_drop": 1.0, "metric_label": "labeled top-1 accuracy", "budget_met": True,
        "result": "int8 with float fallback", "before": {"value": 50.0, "drop": 50.0},
        "after": {"value": 100.0, "drop": 0.0}, "kept_float": [{"name": "conv", "op": "CONV_2D", "label": "mix"}],
        "kept_float_fraction": 0.5, "total_ops": 2, "cost": {"size_ratio": 1.4, "latency_ratio": 1.1},
        "seconds": {"ranking": 0.3, "total": 1.2}, "steps": [{"step": 1, "action": "keep 1 in float", "drop": 0.0}],
        "message": "kept mix in float", "future_key": {"nested": [1, 2]},
    }  # fmt: skip
    report["variants"][4]["extra"] = {
        "layer_errors": [{"op_name": "conv", "pytorch_module": "mix", "sqnr_db": 12.5}, {"sqnr_db": "n/a"}, "junk"],
        "guard": 3,
        "detection": {"map_against_pytorch": {"map50": 91.0}},
        "detection_samples": [
            {"file": "a.jpg", "pytorch_image": "data:image/jpeg;base64,AAAA", "variant_image": "data:image/jpeg;base64,BBBB"},
            {"file": "b.jpg", "image": "javascript:alert(1)"}, "junk",
        ],
    }  # fmt: skip
    report["variants"][2]["accuracy"] = {"task": "detect", "map50": 61.0, "map50_95": 40.5, "pytorch_map50": 62.0,
                                         "pytorch_map50_95": 42.0, "drop_map50_95": 1.5, "reference": "labels"}
    report["variants"][1]["latency_ms"] = None
    report["pytorch"]["disagreements"]["examples"][0]["thumbnail"] = "javascript:alert(1)"
    report["pytorch"]["disagreements"]["examples"][1]["pytorch_top3"] = None
    run = _run(report)
    response = user_client.get(run.get_absolute_url())
    assert response.status_code == 200
    html = response.content.decode()
    guard = _section(html, 'id="detail-int8"')
    assert "int8 with float fallback" in guard and "50.0 points → 0.0 points" in guard
    assert "1 op of 2 (50%): mix (CONV_2D)" in guard and "size ×1.4" in guard and "1.2 s (ranking 0.3 s)" in guard
    assert "keep 1 in float" in guard
    odd = _section(html, 'id="detail-int16x8"')
    assert "mix" in odd and "12.5" in odd
    assert 'src="data:image/jpeg;base64,AAAA"' in odd and 'src="data:image/jpeg;base64,BBBB"' in odd
    assert "javascript:" not in html.split("Full report (JSON)")[0]
    assert "Detection <span" in html and "@.5:.95" in html and '<td class="num">40.5</td>' in html


def test_a_run_without_a_report_still_renders(user_client):
    run = _run({"variants": [{"variant": "int8"}, {"size_bytes": 3}, "junk"], "pytorch": {"disagreements": {}}})
    assert user_client.get(run.get_absolute_url()).status_code == 200
    ConversionRun.objects.filter(pk=run.pk).update(report=None, status="failed", error="boom")
    assert user_client.get(run.get_absolute_url()).status_code == 200


def test_the_new_run_form_offers_every_variant_as_a_checkbox(user_client):
    html = user_client.get(reverse("conversions:run_new")).content.decode()
    for value in ("float32", "float16", "dynamic", "int8", "int16x8"):
        assert f'type="checkbox" name="variants" value="{value}"' in html


def test_a_labels_file_uploaded_with_the_checkpoint_reaches_the_run_config(user_client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    response = user_client.post(reverse("conversions:checkpoint_new"), {
        "name": "clf", "architecture": "efficientnet-lite0", "input_shape": "1,3,32,32", "preprocess": "imagenet",
        "labels": SimpleUploadedFile("labels.txt", b"tench\ngoldfish\n\nshark\n"),
    })  # fmt: skip
    assert response.status_code == 302
    ckpt = Checkpoint.objects.get(name="clf")
    assert ckpt.label_names() == ["tench", "goldfish", "shark"]
    page = user_client.get(ckpt.get_absolute_url()).content.decode()
    assert "3 classes in output order" in page and "0 tench, 1 goldfish, 2 shark" in page
    config = RunSettings(("float16",), num_calib_samples=10).config_for(ckpt, None)
    assert config.data.labels_file == ckpt.labels.path
    assert json.loads(json.dumps(config.to_dict()))["data"]["labels_file"] == ckpt.labels.path


@pytest.mark.parametrize("content,error", [(b"\xff\xfe\x00bin", "not UTF-8"), (b"\n \n", "is empty")])
def test_a_labels_file_must_be_text_with_names(user_client, settings, tmp_path, content, error):
    settings.MEDIA_ROOT = tmp_path / "media"
    response = user_client.post(reverse("conversions:checkpoint_new"), {
        "name": "clf", "architecture": "efficientnet-lite0", "input_shape": "1,3,32,32", "preprocess": "imagenet",
        "labels": SimpleUploadedFile("labels.txt", content),
    })  # fmt: skip
    assert error in response.content.decode()
    assert not Checkpoint.objects.exists()


def test_the_run_page_shows_each_files_metadata_and_tflite_micro_readiness(user_client, portal_report):
    run = _run(portal_report)
    html = user_client.get(run.get_absolute_url()).content.decode()
    device = _section(html, 'id="device"')
    int8 = portal_report["variants"][3]
    micro = int8["targets"]["tflite_micro"]
    assert micro["supported"] and f"{micro['arena_bytes']:,} bytes" in device
    meta = int8["metadata"]["metadata"]
    assert meta["inputs"][0]["description"].split(";")[0] in device, device
    assert f"labels.txt ({int8['metadata']['labels_count']} classes)" in device and int8["metadata"]["labels_count"] > 1
    variants = _section(html, 'id="variants"')
    assert variants.count("data-micro") == 1, "only the int8 file is tried in TFLite Micro"


def test_warnings_name_inputs_as_the_portal_form_does(user_client, portal_report):
    report = copy.deepcopy(portal_report)
    report["warnings"] = ["int8: best attempt over budget. Raise {max_fallback} or {max_drop}, or add images."]
    html = user_client.get(_run(report).get_absolute_url()).content.decode()
    section = _section(html, "<h2>Warnings</h2>")
    assert "Accuracy budget" in section and "the float-fallback limit" in section
    assert "{max_drop}" not in section and "{max_fallback}" not in section
