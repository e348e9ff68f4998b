"""Attack speed (``bench/bench_attack.py --json``): one attack step against one forward + backward of the method, and
the whole attack, per method, on this machine."""

from __future__ import annotations

from explorer.study.results import Measurement, Part

#: The attack loop's overhead target: marginal step time over the median forward + backward.
RATIO_TARGET = 1.15


def _s(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def render_speed(outputs: list[tuple[str, dict]]) -> str:
    """One row per method: strategy, reconstruction, forward + backward, marginal attack step and their ratio (against
    the target), the whole attack and the SSIM it reached."""
    doc = outputs[0][1]
    st = doc["setting"]
    lines = ["| method | gradient strategy | reconstruction (s) | fwd+bwd (s) | attack step (s) | step / fwd+bwd | "
             f"{st['steps']}-step attack (s) | SSIM clean -> attacked |", "|---|---|---|---|---|---|---|---|"]
    for r in doc["rows"]:
        ratio = "-" if r["ratio"] is None else (f"{r['ratio']:.2f}x" + ("" if r["ratio"] <= RATIO_TARGET else " (over)"))
        lines.append(f"| {r['label']} | {r['strategy']} | {_s(r['reconstruct_s'], 3)} | {_s(r['fwd_bwd_s'], 3)} | "
                     f"{_s(r['step_s'], 3)} | {ratio} | {r['attack_s']:.1f} | {r['ssim_clean']:.3f} -> "
                     f"{r['ssim_attacked']:.3f} |")
    over = [r["label"] for r in doc["rows"] if r["ratio"] is not None and r["ratio"] > RATIO_TARGET]
    return "\n".join(lines) + (
        f"\n\nsample:{st['family']} {st['size']}x{st['size']}, {st['coils']} coils, {st['mask']}, eps {st['eps']:g}, "
        f"{st['objective']} objective; {st['device']}, torch {st['torch']}, {st['threads']} threads. \"fwd+bwd\": the "
        "median of 5 differentiable reconstructions with the objective's backward; \"attack step\": the marginal cost "
        f"of one step (a {2 * st['steps']}-step attack minus a {st['steps']}-step one, over {st['steps']}); target "
        f"<= {RATIO_TARGET}x: " + (f"over for {', '.join(over)}." if over else "met for every method.") +
        " Methods without exact gradients (the un-trained networks' joint scheme) show their whole attack only.")


def measurements(method_code: tuple[str, ...], method_files: tuple[str, ...]) -> list[Measurement]:
    """The attack-speed measurement; the arguments as :func:`explorer.study.measured_real.measurements`'."""
    return [Measurement(
        name="attack-speed", title="attack step vs forward + backward, and the whole attack, per method",
        parts=(Part("bench", ("bench/bench_attack.py", "--json")),), render=render_speed, code=method_code,
        files=method_files + tuple(f"assets/checkpoints/{k}_knee.pt" for k in ("unet", "varnet")),
        note="`bench/bench_attack.py`: the knee sample's middle slice, run alone on the machine (timings).")]


__all__ = ["RATIO_TARGET", "measurements", "render_speed"]
