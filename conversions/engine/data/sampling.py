"""Seeded, reproducible sampling: stratified by class for classification, uniform otherwise.

Calibration and evaluation samples are drawn from the same shuffled pools, calibration first, so they are
disjoint by construction and the calibration sample for a seed does not change when more evaluation images
are asked for. Splits are used in preference order (the chosen split, then val, test, train): a split that
runs out is topped up from the next one, unless the user pinned ``--split``.
"""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Hashable

from conversions.engine.data.structure import DatasetStructure, ImageItem

EVAL_MIN_FRACTION = 0.3
"""When images are scarce, evaluation still gets about this share (at least one image)."""


def budget(available: int, num_samples: int, num_eval: int) -> tuple[int, int]:
    """(calibration, evaluation) counts out of ``available`` images; calibration has priority."""
    if available >= num_samples + num_eval:
        return num_samples, num_eval
    if num_eval <= 0 or num_samples <= 0:
        return min(num_samples, available), min(num_eval, available)
    eval_min = min(num_eval, max(1, round(EVAL_MIN_FRACTION * available)))
    if available < 2:
        return available, 0
    calib = min(num_samples, available - eval_min)
    return calib, min(num_eval, available - calib)


def allocate(n: int, sizes: dict[Hashable, int], rng: random.Random) -> dict[Hashable, int]:
    """Quotas proportional to ``sizes`` summing to ``min(n, total)``, at least one per group when ``n`` allows.

    Largest-remainder rounding; with fewer samples than groups, a seeded choice of groups gets one each.
    """
    groups = [g for g, size in sizes.items() if size > 0]
    total = sum(sizes[g] for g in groups)
    n = min(n, total)
    quotas = {g: 0 for g in sizes}
    if n <= 0:
        return quotas
    if n < len(groups):
        for g in rng.sample(groups, n):
            quotas[g] = 1
        return quotas
    ideal = {g: n * sizes[g] / total for g in groups}
    for g in groups:
        quotas[g] = min(sizes[g], max(1, math.floor(ideal[g])))
    surplus = sum(quotas.values()) - n
    while surplus > 0:  # the at-least-one rule over-allocated: take back from the most over-served
        g = max((g for g in groups if quotas[g] > 1), key=lambda g: (quotas[g] - ideal[g], str(g)))
        quotas[g] -= 1
        surplus -= 1
    while surplus < 0:
        open_groups = [g for g in groups if quotas[g] < sizes[g]]
        g = max(open_groups, key=lambda g: (ideal[g] - quotas[g], sizes[g], str(g)))
        quotas[g] += 1
        surplus += 1
    return quotas


@dataclass
class SplitPool:
    """One split's images grouped by label, each group shuffled once by the seed; drawing pops from the front."""

    split: str | None
    groups: dict[Hashable, deque[ImageItem]] = field(default_factory=dict)

    @classmethod
    def build(cls, items: list[ImageItem], seed: int, stratify: bool) -> "SplitPool":
        rng = random.Random(f"{seed}:{items[0].split if items else ''}")
        grouped: dict[Hashable, list[ImageItem]] = {}
        for item in sorted(items, key=lambda it: it.path):
            grouped.setdefault(item.label if stratify else None, []).append(item)
        pool = cls(items[0].split if items else None)
        for key in sorted(grouped, key=lambda k: (k is None, k if k is not None else 0)):
            members = grouped[key]
            rng.shuffle(members)
            pool.groups[key] = deque(members)
        return pool

    def __len__(self) -> int:
        return sum(len(q) for q in self.groups.values())

    def draw(self, n: int, usable: Callable[[ImageItem], bool], rng: random.Random) -> list[ImageItem]:
        """Up to ``n`` usable items in class proportion; unusable ones are consumed and replaced."""
        chosen: list[ImageItem] = []
        quotas = allocate(n, {g: len(q) for g, q in self.groups.items()}, rng)
        for g, quota in quotas.items():
            queue = self.groups[g]
            taken = 0
            while taken < quota and queue:
                item = queue.popleft()
                if usable(item):
                    chosen.append(item)
                    taken += 1
        while len(chosen) < n and len(self):  # replacements for unusable files, from the fullest classes
            g = max(self.groups, key=lambda g: (len(self.groups[g]), -list(self.groups).index(g)))
            item = self.groups[g].popleft()
            if usable(item):
                chosen.append(item)
        return chosen


@dataclass
class Draw:
    items: list[ImageItem]
    from_split: dict[str, int]


class Sampler:
    """Draws calibration then evaluation samples from a detected dataset, in split preference order."""

    def __init__(self, structure: DatasetStructure, seed: int, stratify: bool, pinned_split: bool) -> None:
        order = [structure.split] if pinned_split else structure.split_order()
        self.pools = [SplitPool.build(structure.items_in(s), seed, stratify) for s in order]
        self.pools = [p for p in self.pools if len(p)]
        self.seed = seed

    @property
    def available(self) -> int:
        return sum(len(p) for p in self.pools)

    def draw(self, n: int, usable: Callable[[ImageItem], bool], purpose: str) -> Draw:
        rng = random.Random(f"{self.seed}:{purpose}")
        items: list[ImageItem] = []
        from_split: dict[str, int] = {}
        for pool in self.pools:
            if len(items) >= n:
                break
            got = pool.draw(n - len(items), usable, rng)
            if got:
                from_split[str(pool.split)] = len(got)
            items.extend(got)
        rng.shuffle(items)
        return Draw(items, from_split)
