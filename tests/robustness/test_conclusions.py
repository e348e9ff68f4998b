"""The report's conclusions page: each experiment judges the talk's conclusion it tests on its records, by its fixed
rule, and the verdict follows the numbers both ways (agrees / disagrees / undecided)."""

from __future__ import annotations

import dataclasses
import json

from explorer.engine.tasks import Record
from explorer.study.report import conclusions, conclusions_section, report_html, sections

BLANK = {f.name: None for f in dataclasses.fields(Record)}


def record(experiment: str, label: str, method: str, **changes) -> Record:
    values = {**BLANK, "task_key": "k", "data": "d", "file": "f", "slice": 0, "plane": "", "label": label,
              "method": method, "config": "{}", "mask_type": "random", "acceleration": 4.0, "mask_seed": 0,
              "maps": "", "perturbation": "", "feature": "", "device": "cpu", "stopped": False,
              "explorer_version": "", "torch_version": "", "numpy_version": "", "fastmri_version": "", "created": "",
              "experiment": experiment, **changes}
    return Record(**values)


def attack_records(trained_drop: float, sparse_drop: float) -> list[Record]:
    out = []
    for label, method, drop in (("unet", "unet", trained_drop), ("varnet", "varnet", trained_drop),
                                ("l1", "l1", sparse_drop), ("tv", "tv", sparse_drop), ("zf", "zero_filled", 0.01)):
        for eps, scale in ((0.02, 0.25), (0.08, 1.0)):
            out.append(record("attack", label, method, perturbation=json.dumps({"eps": eps}), ssim=0.7,
                              scores=json.dumps({"eps": eps, "ssim_clean": 0.8, "ssim_drop": drop * scale,
                                                 "psnr_drop": 3.0})))
    return out


def verdicts(records, claim_start: str) -> list[dict]:
    return [row for row in conclusions(records) if row["the papers' conclusion"].startswith(claim_start)]


def test_the_attack_conclusion_follows_the_drops_at_the_largest_budget():
    same = verdicts(attack_records(0.20, 0.19), "No evidence")
    assert [v["this run"] for v in same] == ["agrees"]
    assert all(part in same[0]["measured"] for part in ("trained 0.200", "sparse 0.190", "eps 0.08 by family"))
    assert verdicts(attack_records(0.30, 0.15), "No evidence")[0]["this run"] == "disagrees"
    assert verdicts(attack_records(0.23, 0.19), "No evidence")[0]["this run"] == "undecided"
    only_trained = [r for r in attack_records(0.3, 0.1) if r.method in ("unet", "varnet")]
    assert verdicts(only_trained, "No evidence")[0]["this run"] == "undecided"


def features_records(errors: dict[str, tuple[float, float]]) -> list[Record]:
    return [record("features", label, label, ssim=ssim, scores=json.dumps([{"window_mse": mse}]))
            for label, (ssim, mse) in errors.items()]


def test_the_features_conclusion_follows_the_correlation_across_methods():
    agree = {"zero_filled": (0.6, 0.4), "l1": (0.7, 0.3), "tv": (0.75, 0.2), "unet": (0.85, 0.1)}
    assert verdicts(features_records(agree), "Recovery of fine")[0]["this run"] == "agrees"
    flipped = {k: (s, 0.5 - m) for k, (s, m) in agree.items()}
    assert verdicts(features_records(flipped), "Recovery of fine")[0]["this run"] == "disagrees"


def shift_records(pairs: dict[str, tuple[float, float]]) -> list[Record]:
    out = []
    for label, (ssim_id, ssim_ood) in pairs.items():
        out.append(record("shift", label, "l1", ssim=ssim_id, role="id"))
        out.append(record("shift", label, "l1", ssim=ssim_ood, role="ood:brain"))
    return out


def test_the_shift_conclusions_follow_the_fit_and_the_ranks():
    line = {f"m{i}": (0.6 + 0.05 * i, 0.5 + 0.04 * i + 0.002 * (-1) ** i) for i in range(6)}
    found = {v["the papers' conclusion"].split()[0]: v for v in conclusions(shift_records(line))}
    assert found["Strong"]["this run"] == "agrees" and found["Accuracy"]["this run"] == "agrees"
    assert "shift to brain" in found["Strong"]["measured"]
    crossed = {f"m{i}": (0.6 + 0.05 * i, 0.8 - 0.04 * i) for i in range(6)}
    found = {v["the papers' conclusion"].split()[0]: v["this run"] for v in conclusions(shift_records(crossed))}
    assert found == {"Strong": "disagrees", "Accuracy": "disagrees"}


def ttt_records(before: float, after: float, reference: float) -> list[Record]:
    return [record("ttt", "unet", "unet", ssim=after, slice=i,
                   scores=json.dumps({"ssim_before": before, "ssim_after": after + 0.01 * i,
                                      "ssim_reference": reference, "gap_closed": 0.0, "protocol": "paper"}))
            for i in range(3)]


def test_the_ttt_conclusion_follows_the_gap_closed():
    closed = verdicts(ttt_records(0.60, 0.69, 0.70), "Test Time Training")
    assert closed[0]["this run"] == "agrees" and "paper protocol, 3 slices" in closed[0]["measured"]
    assert verdicts(ttt_records(0.60, 0.62, 0.70), "Test Time Training")[0]["this run"] == "disagrees"
    assert verdicts(ttt_records(0.60, 0.66, 0.70), "Test Time Training")[0]["this run"] == "undecided"


def test_the_conclusions_open_the_report_and_the_page_sections():
    records = attack_records(0.2, 0.19) + ttt_records(0.6, 0.69, 0.7)
    keys = [key for key, _ in sections(records)]
    assert keys[0] == "conclusions"
    section = conclusions_section(records)
    assert section.caption.startswith("2 agree, 0 disagree, 0 undecided")
    page = report_html(records)
    assert page.index("The papers&#x27; conclusions beside this run") < page.index("Adversarial attacks")
    assert conclusions_section(features_records({"l1": (0.7, 0.3)})) is not None  # too few methods: undecided row
    assert conclusions_section([]) is None


def test_the_filtered_shift_is_judged_like_a_shift():
    settings = json.dumps({"filter": ["m0"], "keep": 2})
    records = [record("filtered", f"m{i}", "l1", slice=s, ssim=0.5 + 0.05 * i - 0.1 * (s % 2), scores=settings)
               for i in range(5) for s in range(4)]
    found = {v["the papers' conclusion"].split()[0]: v for v in conclusions(records)}
    assert found["Strong"]["this run"] == "agrees" and found["Accuracy"]["this run"] == "agrees"
    assert found["Strong"]["measured"].startswith("filtered by m0: r = +1.00")
