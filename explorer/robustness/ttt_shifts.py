"""The four distribution shifts of the test-time-training paper (Darestani, Liu & Heckel, ICML 2022), on the embedded
samples: for each, the data the network meets (Q), the shipped network trained elsewhere (P), the shipped network
trained on Q's distribution (the reference that defines the gap), the test acceleration and the papers' stopping
window.

The papers' shifts and ours (../shared/reference/seed-code-facts.md, "Paper 2 shifts"), P -> Q, and the reference
network (trained on Q):

* anatomy: papers fastMRI knee PD -> brain AXT2; here the knee sample -> the brain sample (T2); ``brain`` (shipped).
* dataset: papers fastMRI knee PDFS -> Stanford knee; here the knee sample (2D FSE, PD) -> the Stanford-like 3D FSE
  knee of the same subjects; ``knee-stanford``.
* contrast: papers brain AXT2 -> AXT1PRE; here the brain sample T2 -> T1; ``brain-t1``.
* acceleration: papers knee 4x -> 2x; here the knee sample 4x -> 2x (centre fraction 0.16); ``knee-2x``.

Windows W of the stopping rule as the papers' notebooks set them: 100, except 20 for the dataset shift (both
networks) and for the contrast shift's U-net. The slide's "gap closed for VarNet: 99% 87% 96% 97%" does not name
the order of its shifts; the paper's order (anatomy, dataset, contrast, acceleration) is the likely one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping


@dataclass(frozen=True)
class TTTShift:
    """One shift of the paper.

    Attributes:
        name: ``anatomy``, ``dataset``, ``contrast`` or ``acceleration``; title: how tables name it.
        family: the sample family of Q; variant: its source fields (``"dataset=stanford"``, ``""`` for the default).
        checkpoint: the network trained on P (a shipped checkpoint name); reference: the network trained on Q.
        acceleration: the test mask's acceleration (random columns, fastMRI's centre fraction for it).
        window: the papers' stopping window; windows: exceptions per network kind (the papers' notebooks).
        papers: how the papers' P -> Q reads.
    """

    name: str
    title: str
    family: str
    variant: str
    checkpoint: str
    reference: str
    acceleration: float = 4.0
    window: int = 100
    windows: Mapping[str, int] = field(default_factory=dict)
    papers: str = ""

    @property
    def source(self) -> str:
        """The Q data as a sample source (``sample:knee,dataset=stanford``)."""
        return f"sample:{self.family}" + (f",{self.variant}" if self.variant else "")

    def window_for(self, kind: str) -> int:
        """The papers' window for network kind ``kind``."""
        return int(self.windows.get(kind, self.window))


SHIFTS: tuple[TTTShift, ...] = (
    TTTShift("anatomy", "knee -> brain (anatomy)", "brain", "", "knee", "brain",
             papers="fastMRI knee PD -> fastMRI brain AXT2"),
    TTTShift("dataset", "fastMRI-like -> Stanford-like knee (dataset)", "knee", "dataset=stanford", "knee",
             "knee-stanford", window=20, papers="fastMRI knee PDFS -> Stanford knee (3D FSE)"),
    TTTShift("contrast", "brain T2 -> T1 (contrast)", "brain", "contrast=t1", "brain", "brain-t1",
             windows={"unet": 20}, papers="fastMRI brain AXT2 -> AXT1PRE"),
    TTTShift("acceleration", "knee 4x -> 2x (acceleration)", "knee", "", "knee", "knee-2x", acceleration=2.0,
             papers="fastMRI knee at 4x -> the same knees at 2x"),
)


def get_shift(name: str) -> TTTShift:
    """The shift ``name``.

    Raises:
        KeyError: an unknown name.
    """
    for shift in SHIFTS:
        if shift.name == name:
            return shift
    raise KeyError(name)


__all__ = ["SHIFTS", "TTTShift", "get_shift"]
