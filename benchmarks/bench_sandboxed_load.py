"""The built-in EfficientNet-Lite0 state dict loaded in-process (trusted) and through the sandboxed child
(untrusted), alternately, in one run: seconds per ``load_model`` and the ratio of the medians.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_sandboxed_load.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from conversions.engine.config import ModelSpec
from conversions.engine.model.builtin import get_builtin
from conversions.engine.model.loading import load_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        ckpt = Path(folder) / "efficientnet-lite0.pth"
        torch.save(
            get_builtin("efficientnet-lite0").build(pretrained=True).state_dict(), ckpt
        )
        print(f"checkpoint {ckpt.stat().st_size / 2**20:.1f} MB")
        times: dict[bool, list[float]] = {True: [], False: []}
        load_model(
            ModelSpec(
                checkpoint=str(ckpt), model="efficientnet-lite0", trust_checkpoint=True
            )
        )  # warm-up
        for _ in range(args.repeat):
            for trusted in (True, False):
                start = time.perf_counter()
                loaded = load_model(
                    ModelSpec(
                        checkpoint=str(ckpt),
                        model="efficientnet-lite0",
                        trust_checkpoint=trusted,
                    )
                )
                times[trusted].append(time.perf_counter() - start)
        print(f"sandboxed load: {loaded.description}")
        for trusted, label in (
            (True, "in-process (trusted)"),
            (False, "sandboxed child (untrusted)"),
        ):
            print(
                f"{label:28} median {statistics.median(times[trusted]):.2f} s  "
                + " ".join(f"{t:.2f}" for t in times[trusted])
            )
        ratio = statistics.median(times[False]) / statistics.median(times[True])
        print(
            f"sandboxed / in-process: {ratio:.2f}x, +{statistics.median(times[False]) - statistics.median(times[True]):.2f} s"
        )


if __name__ == "__main__":
    main()
