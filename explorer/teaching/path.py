"""The guided path of the teaching mode: the robustness experiments in order, what each asks, what the papers
reported, what README.md states we measured, and the page settings each step opens with.

No Streamlit here: :mod:`explorer.ui.teaching.path` renders the steps and puts :attr:`Step.settings` into the
target page's widgets. The papers' findings are quoted as the papers' claims; our measurements are never written
here, only read from README.md (:func:`readme_passage`), so the page cannot drift from what README states.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from explorer import resources

PAPER_2021 = "Darestani, Chaudhari & Heckel, ICML 2021"
PAPER_2022 = "Darestani, Liu & Heckel, ICML 2022"


@dataclass(frozen=True)
class Step:
    """One step of the guided path.

    Attributes:
        page: the page script (``"pages/attack.py"``).
        title: the page's title.
        question: what the experiment asks.
        paper: what the paper(s) reported (shown labelled as the papers' claim).
        readme: ``(section heading, phrase)`` pairs: the README paragraphs that state our measurements (the
            paragraph containing the phrase, in the section with that heading); empty: none.
        settings: ``{widget key: value}`` put into the page's widgets when the step is opened.
        sidebar: ``{widget key: value}`` for the shared sidebar (e.g. the brain sample), applied with ``settings``.
        note: what opening the step does that the user should know.
    """

    page: str
    title: str
    question: str
    paper: str
    readme: tuple[tuple[str, str], ...] = ()
    settings: dict = field(default_factory=dict)
    sidebar: dict = field(default_factory=dict)
    note: str = ""


_RANDOM_4X = {"type": "random", "acceleration": 4.0, "seed": 0, "cf_default": True}


def _mask(page: str, **values) -> dict:
    """Widget values of ``page``'s mask controls (:func:`explorer.ui.widgets.mask_controls`)."""
    return {f"{page}.mask.{k}": v for k, v in {**_RANDOM_4X, **values}.items()}


STEPS: tuple[Step, ...] = (
    Step("pages/reconstruct.py", "Reconstruct",
         "How good is each family on one slice when nothing is adversarial? The baseline every robustness "
         "question is measured against.",
         f"{PAPER_2021}: trained end-to-end networks (U-net, VarNet) reconstruct best in distribution; the "
         "un-trained ConvDecoder and ℓ1 follow, without any training data.",
         settings={"reconstruct.methods": ["zero_filled", "sense", "l1", "tv", "unet", "varnet"], **_mask("reconstruct")},
         note="Opens with zero-filled, SENSE, ℓ1, TV, U-net and VarNet at 4× random; press Run reconstruction."),
    Step("pages/attack.py", "Attack",
         "Are trained networks more sensitive than ℓ1 and un-trained networks to a small worst-case perturbation "
         "of the measurements, ‖e‖ ≤ eps·‖k‖?",
         f"{PAPER_2021}: small adversarial perturbations degrade trained, un-trained and ℓ1 reconstructions alike; "
         "no family is uniquely unstable (their notebooks use eps = 0.08 at 4×).",
         readme=(("Adversarial attacks: what we measured", "Answer on this data"),),
         settings={"attack.methods": ["zero_filled", "sense", "unet"], "attack.eps": "0.02, 0.04, 0.08",
                   "attack.steps": 20, **_mask("attack")},
         note="Opens with zero-filled, SENSE and the U-net (quick on a CPU) and a budget sweep; add ℓ1 or VarNet "
              "for the full comparison (slower)."),
    Step("pages/features.py", "Small features",
         "Does a method that scores well on the whole image also recover small details it never saw, such as a "
         "5×5 square of 1/6 of the maximum intensity?",
         f"{PAPER_2021}: recovery of fine details is strongly correlated with overall reconstruction quality.",
         readme=(("Small features: what we measured", "Answer on this data"),),
         settings={"features.methods": ["zero_filled", "tv", "unet"], "features.shape": "square", "features.size": 5,
                   "features.random": 4, **_mask("features")},
         note="Opens with four random 5×5 squares and zero-filled, TV and the U-net; press Run."),
    Step("pages/shift.py", "Distribution shift",
         "How much does each family lose when the test data differ from the data its settings (or weights) were "
         "chosen on: another anatomy, contrast or scanner?",
         f"{PAPER_2021}: under natural shifts (e.g. fastMRI knee → Stanford knee, knee → brain) every family "
         "loses performance, and the loss follows in-distribution quality linearly across models.",
         readme=(("Distribution shifts and test-time training", "Anatomy shift: no linear"),
                 ("Distribution shifts and test-time training", "Dataset shift: closer to the paper")),
         settings={"shift.id.kind": "sample", "shift.id.family": "sample:knee", "shift.ood.kind": "sample",
                   "shift.ood.family": "sample:brain", "shift.methods": ["zero_filled", "sense", "unet", "varnet"],
                   "shift.max_slices": 2, **_mask("shift")},
         note="Opens with knee → brain, four models and 2 slices per set; press Run study."),
    Step("pages/ttt.py", "Test-time training",
         "Can a trained network recover under a shift by adapting its weights to the measurements of the very "
         "slice in front of it (a self-supervised loss, no ground truth)?",
         f"{PAPER_2022}: test-time training closes most of the distribution-shift gap; in the talk, a VarNet "
         "trained on knees goes from SSIM 0.852 to 0.922 on brains, against 0.923 for one trained on brains (99% "
         "of the gap). It helps networks trained with a self-supervised term, and can hurt purely supervised ones.",
         readme=(("Distribution shifts and test-time training", "The paper reports 99% of the gap"),),
         settings={"ttt.method": "unet", "ttt.params.unet.checkpoint.brain": "knee", "ttt.reference": "brain",
                   "ttt.steps": 50, **_mask("ttt")},
         sidebar={"src.kind": "sample", "src.family": "brain", "src.variant.brain": ""},
         note="Switches the sidebar to the brain sample and opens the knee U-net with the brain U-net as the "
              "in-distribution reference, 50 steps; press Run test-time training."),
    Step("pages/study.py", "Study",
         "Do the single-slice answers hold over many slices, masks and models? The papers' code is single-slice "
         "notebooks; a study runs every experiment over a set and tabulates it.",
         f"{PAPER_2021} and {PAPER_2022} report their findings from such experiments on fastMRI and Stanford data.",
         settings={"study.mode": "run", "study.folder": "studies/teaching"},
         note="Opens 'Run a small spec here' with the example spec and the folder studies/teaching (inside the "
              "data directory the app was started with, else inside the per-user output folder the Study page "
              "names, never the source checkout); press Run study."),
)


def readme_passage(heading: str, phrase: str, text: str | None = None) -> str | None:
    """The paragraph of README.md (or ``text``) that contains ``phrase`` inside the ``## heading`` section,
    with that section's leading ``>`` note (if any) prefixed; ``None`` when either is not found.

    Args:
        heading: the section heading without the ``## `` prefix.
        phrase: a phrase of the paragraph (exact, case-sensitive).
        text: README text (default: read README.md).
    """
    if text is None:
        try:
            text = resources.readme().read_text(encoding="utf-8")
        except OSError:
            return None
    section = _section(text, heading)
    if section is None:
        return None
    paragraphs = [p.strip() for p in section.split("\n\n") if p.strip()]
    found = next((p for p in paragraphs if phrase in p), None)
    if found is None:
        return None
    note = next((p for p in paragraphs if p.startswith(">")), None)
    return (" ".join(found.split()) if note is None
            else f"{' '.join(note.lstrip('> ').split())}\n\n{' '.join(found.split())}")


def _section(text: str, heading: str) -> str | None:
    """The body of the ``## heading`` section (up to the next ``## ``)."""
    lines = text.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == f"## {heading}")
    except StopIteration:
        return None
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return "\n".join(lines[start + 1:end])
