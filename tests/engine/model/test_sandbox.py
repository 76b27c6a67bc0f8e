"""An untrusted checkpoint is parsed in a confined child: no secrets, no network, no files but its own, another
uid. Each property is proven from inside a real child (``support.sandbox_probe`` runs in place of the parser)."""

from __future__ import annotations

import errno
import json
import os
import pwd
import socket
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

from conversions.engine.config import ExportConfig, ModelSpec
from conversions.engine.errors import CheckpointError
from conversions.engine.model.builtin import get_builtin
from conversions.engine.model.loading import load_model, parse_untrusted
from conversions.engine.pipeline import run_export
from conversions.engine.verify.interpreter import TFLiteModel
from conversions.engine.model.sandbox import CPU_ENV, MEMORY_ENV, USER_ENV, load_state_isolated
from quantweb.filemodes import keep_private
from support.sandbox_probe import facts_of, probe

SHAPE = (1, 3, 96, 96)
REDIS_PORT = 6379
pytestmark = pytest.mark.skipif(os.getuid() != 0, reason="the sandbox needs a worker that can drop to another user")


def _lite0_checkpoint(folder: Path) -> Path:
    torch.manual_seed(3)
    ckpt = folder / "lite0.pth"
    torch.save({"state_dict": get_builtin("efficientnet-lite0").build(pretrained=False).state_dict()}, ckpt)
    ckpt.chmod(0o600)  # readable by the worker's user only, as an upload is
    return ckpt


def test_untrusted_state_dict_loads_through_the_child_as_in_process(tmp_path: Path) -> None:
    ckpt = _lite0_checkpoint(tmp_path)
    spec = dict(checkpoint=str(ckpt), model="efficientnet-lite0", input_shape=SHAPE)

    sandboxed = load_model(ModelSpec(**spec))
    in_process = load_model(ModelSpec(**spec, trust_checkpoint=True))

    nobody = pwd.getpwnam("nobody").pw_uid
    assert f"parsed in a separate process as uid {nobody}, without network" in sandboxed.description
    assert "separate process" not in in_process.description
    x = torch.randn(SHAPE, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(sandboxed.module(x), in_process.module(x), rtol=0, atol=0)
    assert list(os.listdir(tmp_path)) == ["lite0.pth"]  # nothing is left beside it


def test_an_untrusted_state_dict_converts_to_a_tflite_that_matches_pytorch(tmp_path: Path) -> None:
    ckpt = _lite0_checkpoint(tmp_path)
    spec = ModelSpec(checkpoint=str(ckpt), model="efficientnet-lite0", input_shape=SHAPE)

    report = run_export(ExportConfig(model=spec, variants=("none",), output_dir=str(tmp_path / "out")))

    assert report.model["load_route"] == "state_dict"
    assert "parsed in a separate process as uid" in report.model["description"]
    x = np.random.default_rng(0).standard_normal(SHAPE).astype(np.float32)
    got = TFLiteModel(Path(report.variant("float32").output)).predict(x.transpose(0, 2, 3, 1).copy())[0]  # NHWC
    reference = load_model(ModelSpec(checkpoint=str(ckpt), model="efficientnet-lite0", input_shape=SHAPE,
                                     trust_checkpoint=True)).module  # fmt: skip
    with torch.no_grad():
        np.testing.assert_allclose(got, reference(torch.from_numpy(x)).numpy(), atol=1e-4)


@pytest.fixture
def open_folder():
    """A folder anyone may enter (unlike pytest's tmp_path, under a 0700 parent), so only file modes protect
    what is in it."""
    with tempfile.TemporaryDirectory(prefix="quantweb-probe-", dir="/tmp") as folder:
        os.chmod(folder, 0o755)
        yield Path(folder)


@pytest.fixture
def listener():
    """A 127.0.0.1 port this process reaches (a stand-in for any local service)."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server.getsockname()[1]


def _probe_in_child(folder: Path, files: list[Path], ports: list[int], write: tuple[Path, ...] = ()) -> dict:
    asked = folder / "probe.json"
    asked.write_text(json.dumps({"files": [str(f) for f in files], "ports": ports, "write": [str(f) for f in write]}))
    asked.chmod(0o600)
    return facts_of(load_state_isolated(asked, probe).state)


def test_the_child_cannot_read_an_owner_only_database_nor_reach_local_ports_nor_see_secrets(
    open_folder: Path, listener: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "quantweb-test-secret-5f2c"
    monkeypatch.setenv("SECRET_KEY", secret)
    monkeypatch.setenv("DATABASE_URL", f"postgres://quantweb:{secret}@127.0.0.1/quantweb")
    monkeypatch.setenv("REDIS_URL", f"redis://:{secret}@127.0.0.1:{REDIS_PORT}/0")
    old = os.umask(0o022)
    try:  # a database as an older quantweb left it (0644), then made private as the settings do
        database = open_folder / "quantweb.sqlite3"
        sqlite3.connect(database).execute("create table auth_user (password text)").connection.close()
        control = open_folder / "world-readable.txt"
        control.write_text("anyone may read this")
    finally:
        os.umask(old)
    assert oct(database.stat().st_mode & 0o777) == "0o644"
    keep_private([database])
    for port in (listener, REDIS_PORT):  # both really answer this process
        socket.create_connection(("127.0.0.1", port), timeout=2).close()

    facts = _probe_in_child(open_folder, [database, control], [listener, REDIS_PORT])

    nobody = pwd.getpwnam("nobody")
    assert (facts["uid"], facts["euid"], facts["groups"]) == (nobody.pw_uid, nobody.pw_uid, [])
    assert facts["no_new_privs"] is True
    assert oct(database.stat().st_mode & 0o777) == "0o600"
    assert facts["open"] == {str(database): errno.EACCES, str(control): 0}  # the mode, not the folder, refuses
    assert facts["connect"] == {str(listener): errno.ENETUNREACH, str(REDIS_PORT): errno.ENETUNREACH}
    assert facts["parent_environ"] == errno.EACCES
    assert set(facts["environ"]) <= {"PATH", "HOME", "TMPDIR", "LANG", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                     "OPENBLAS_NUM_THREADS"}  # fmt: skip
    assert not any(secret in value for value in facts["environ"].values())


def test_the_child_cannot_write_a_byte_to_any_file(open_folder: Path) -> None:
    drop = Path(tempfile.gettempdir()) / f"quantweb-probe-drop-{os.getpid()}"  # /tmp: anyone may create files
    try:
        facts = _probe_in_child(open_folder, [], [], write=(drop,))

        assert facts["write"] == {str(drop): errno.EFBIG}
        assert not drop.exists() or drop.stat().st_size == 0
    finally:
        drop.unlink(missing_ok=True)


_LOAD_SCRIPT = """
import sys
from pathlib import Path
sys.path[:0] = {path!r}
from conversions.engine.errors import CheckpointError
from conversions.engine.model.loading import parse_untrusted
from conversions.engine.model.sandbox import load_state_isolated
try:
    load_state_isolated(Path({ckpt!r}), parse_untrusted)
except CheckpointError as err:
    print(err.template)
else:
    print("parsed")
"""


@pytest.mark.parametrize(
    "dropped, failure",
    [
        ("-sys_admin", "leave the network (unshare(CLONE_NEWNET) failed: Operation not permitted)"),
        ("-setuid", "become nobody (uid 65534): Operation not permitted"),
    ],
)
def test_a_worker_that_cannot_confine_the_child_refuses_the_file_and_says_how_to_run(
    tmp_path: Path, dropped: str, failure: str
) -> None:
    ckpt = tmp_path / "w.pth"
    torch.save(torch.nn.Linear(4, 2).state_dict(), ckpt)
    script = _LOAD_SCRIPT.format(path=sys.path, ckpt=str(ckpt))

    # root without that capability in its bounding set: the worker, and so its child, can never hold it
    out = subprocess.run(["setpriv", "--bounding-set", dropped, sys.executable, "-c", script],
                         capture_output=True, text=True, timeout=300, check=True).stdout  # fmt: skip

    assert out.startswith(f"refused to parse {ckpt} unconfined: the sandboxed process could not {failure}; ")
    assert "run the worker as root" in out and "CAP_SETUID, CAP_SETGID and CAP_SYS_ADMIN" in out
    assert "{trust_checkpoint}" in out


def test_a_missing_or_privileged_sandbox_user_refuses_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ckpt = tmp_path / "w.pth"
    torch.save(torch.nn.Linear(4, 2).state_dict(), ckpt)

    monkeypatch.setenv(USER_ENV, "quantweb-no-such-user")
    with pytest.raises(CheckpointError) as missing:
        load_state_isolated(ckpt, parse_untrusted)
    monkeypatch.setenv(USER_ENV, "root")
    with pytest.raises(CheckpointError) as root:
        load_state_isolated(ckpt, parse_untrusted)

    assert str(missing.value).startswith(
        f"refused to parse the checkpoint: the sandbox user 'quantweb-no-such-user' ({USER_ENV}) does not exist"
    )
    assert "is root or in group root" in str(root.value)


def test_a_child_over_its_memory_limit_gives_the_worded_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ckpt = tmp_path / "big.pth"
    torch.save({"w": torch.zeros(32, 1024, 1024)}, ckpt)  # 128 MB of tensor, over a 64 MB address-space cap
    monkeypatch.setenv(MEMORY_ENV, "64")

    with pytest.raises(CheckpointError) as err:
        load_model(ModelSpec(checkpoint=str(ckpt), model="efficientnet-lite0"))

    assert "ran out of memory under its limit of 64 MB" in str(err.value)
    assert f"raise {MEMORY_ENV}" in str(err.value)
    assert err.value.field == "checkpoint"


def test_a_child_killed_by_its_cpu_limit_gives_the_worded_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ckpt = tmp_path / "many.pth"
    torch.save({f"t{i}": torch.zeros(1) for i in range(12000)}, ckpt)  # ~2 CPU s to unpickle, over a 0 s budget
    monkeypatch.setenv(CPU_ENV, "0")

    with pytest.raises(CheckpointError) as err:
        load_model(ModelSpec(checkpoint=str(ckpt), model="efficientnet-lite0"))

    message = str(err.value)
    assert f"the sandboxed process reading {ckpt} went over its CPU-time limit (SIGXCPU)" in message
    assert f"{CPU_ENV}=0 CPU seconds: raise them" in message
    assert err.value.field == "checkpoint"


def test_a_pickled_module_is_refused_in_the_child_with_the_original_path(tmp_path: Path) -> None:
    ckpt = tmp_path / "whole.pt"
    torch.save(torch.nn.Linear(4, 2), ckpt)

    with pytest.raises(CheckpointError) as err:
        load_model(ModelSpec(checkpoint=str(ckpt), model="efficientnet-lite0"))

    assert str(err.value).startswith(f"{ckpt} contains pickled Python objects")
    assert err.value.field == "trust_checkpoint"
