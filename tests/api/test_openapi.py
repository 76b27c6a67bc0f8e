"""The OpenAPI document: valid OpenAPI 3, every endpoint in it, served to a token or a signed-in person."""

from __future__ import annotations

import pytest
import requests
from openapi_spec_validator import validate

pytestmark = pytest.mark.django_db(transaction=True)

ENDPOINTS = {
    ("get", "/api/v1/checkpoints/"), ("post", "/api/v1/checkpoints/"), ("get", "/api/v1/checkpoints/{pk}/"),
    ("get", "/api/v1/datasets/"), ("post", "/api/v1/datasets/"), ("get", "/api/v1/datasets/{pk}/"),
    ("get", "/api/v1/runs/"), ("post", "/api/v1/runs/"), ("get", "/api/v1/runs/{pk}/"),
    ("post", "/api/v1/runs/{pk}/cancel/"), ("post", "/api/v1/runs/{pk}/rerun/"),
    ("get", "/api/v1/runs/{pk}/report.json"), ("get", "/api/v1/artifacts/{pk}/{filename}"),
}  # fmt: skip


def test_the_openapi_document_is_valid_and_lists_every_endpoint(api_as, alice):
    response = api_as(alice).get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    validate(document)  # raises OpenAPIValidationError on an invalid document
    listed = {(method, path) for path, ops in document["paths"].items() for method in ops}
    assert listed == ENDPOINTS
    assert document["components"]["securitySchemes"]["BearerToken"] == {"type": "http", "scheme": "bearer"}
    run_in = document["components"]["schemas"]["RunIn"]["properties"]
    assert {"checkpoint", "dataset", "variants", "num_calib_samples", "num_eval_samples", "seed",
            "calibration_method", "max_drop"} <= set(run_in)  # fmt: skip
    for path, method in (("/api/v1/runs/{pk}/cancel/", "post"), ("/api/v1/runs/", "post")):
        errors = {code for code in document["paths"][path][method]["responses"] if code.startswith("4")}
        assert errors, f"{method} {path} documents its errors"


def test_the_docs_are_for_signed_in_users(live_server, api_as, alice):
    anonymous = requests.get(live_server.url + "/api/v1/docs", allow_redirects=False, timeout=30)
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous.headers["Location"]
    assert requests.get(live_server.url + "/api/v1/openapi.json", allow_redirects=False, timeout=30).status_code == 302

    session = requests.Session()
    login = live_server.url + "/accounts/login/"
    csrf = session.get(login, timeout=30).cookies["csrftoken"]
    session.post(login, data={"username": "alice", "password": "alice-pw", "csrfmiddlewaretoken": csrf},
                 headers={"Referer": login}, timeout=30)  # fmt: skip
    docs = session.get(live_server.url + "/api/v1/docs", timeout=30)
    assert docs.status_code == 200 and "swagger-ui" in docs.text
    assert "cdn" not in docs.text.lower(), "the Swagger UI is served from the portal's own static files"
    assert session.get(live_server.url + "/api/v1/openapi.json", timeout=30).json()["info"]["title"] == "quantweb"
