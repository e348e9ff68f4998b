"""The embedded sample: deterministic multi-coil knee and brain volumes, no download.

The explorer opens on this data when no fastMRI file is given. A volume is a stack
of cuts through one seeded 3D subject (:mod:`explorer.data.phantoms`) simulated as
an acquisition:

1. magnitude ``m(x, y, z)`` (anatomy, about 0..1) times a smooth background phase;
2. times ``C`` smooth complex coil sensitivities (:mod:`explorer.data.coils`);
3. centred orthonormal FFT per coil (:func:`explorer.physics.fft2c`), no oversampling;
4. plus complex Gaussian k-space noise, slightly correlated between coils, at an
   image SNR of about 30 in tissue.

The reference is exactly what fastMRI stores: ``target = RSS(ifft2c(kspace))`` of
the full noisy k-space (``reconstruction_rss``), scaled like fastMRI knee data
(target maximum of a few 1e-4).

Families: ``"knee"`` (sagittal proton density, fastMRI ``CORPD_FBK`` protocol name,
3 mm slices) and ``"brain"`` (axial T2, ``AXT2``, 5 mm slices), so a knee->brain
anatomy shift is a real distribution shift.

Datasets (knee only): ``"fastmri"`` (the default: fastMRI-like 2D fast spin echo) or
``"stanford"``, a Stanford-like 3D FSE (CUBE) knee as on mridata.org: a larger field
of view (180 mm, so 0.56 mm pixels at 320 against 0.5 mm), thin contiguous 0.6 mm
partitions instead of 3 mm slices, half the SNR (15), the longer echo train's
stronger blurring along the phase encoding and its more T2-weighted contrast
(brighter fluid, darker muscle and fat), and another 8-element coil array. It is
the embedded stand-in for the papers' fastMRI -> Stanford dataset shift.

``coils=1`` gives k-space ``(S, 1, H, W)`` from :func:`generate`, and
:func:`write_sample` then writes a *single-coil* file (``kspace`` ``(S, H, W)`` and
``reconstruction_esc``), the layout of fastMRI's single-coil track.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import torch

from explorer.data import phantoms
from explorer.data.coils import background_phase, coil_maps
from explorer.data.fastmri import write_volume
from explorer.errors import ExplorerError
from explorer.physics import fft2c, ifft2c

FAMILIES: tuple[str, ...] = ("knee", "brain")
GENERATOR_VERSION = 1
SCALE = 4.0e-4  # image intensity of fat / CSF near the coils (fastMRI knee-like values)
SNR = 30.0  # median tissue signal / noise standard deviation (per real/imaginary part)
NOISE_CORRELATION = 0.15  # between neighbouring coils
MAX_SLICES, MAX_COILS = 256, 32
MAX_SAMPLES = 1 << 27  # slices * coils * size^2: 1 GiB of complex64 k-space

_GENERATING = threading.Lock()  # one generation at a time per process (a second caller waits for it)
CONTRASTS: dict[str, tuple[str, ...]] = {"knee": ("pd", "pdfs"), "brain": ("t2", "t1")}  # the first: the default
_ACQUISITION = {("knee", "pd"): "CORPD_FBK", ("knee", "pdfs"): "CORPDFS_FBK", ("brain", "t2"): "AXT2",
                ("brain", "t1"): "AXT1"}
DATASETS: dict[str, tuple[str, ...]] = {"knee": ("fastmri", "stanford"), "brain": ("fastmri",)}  # first: default


class _Dataset(NamedTuple):
    """How a dataset acquires a family's subject (see the module docstring)."""

    fov: float | None  # mm; None: the family's
    spacing: float | None  # mm between slices; None: the family's
    snr: float
    key: int  # added to the family's random-stream keys (another coil array, other noise)
    acquisition_suffix: str  # replaces "_FBK" in the protocol name


_DATASET = {
    "fastmri": _Dataset(None, None, SNR, 0, ""),
    "stanford": _Dataset(180.0, 0.6, 15.0, 1000, "_3DFSE"),
}


class _Family(NamedTuple):
    draw: Callable[[phantoms.Grid, int, str], np.ndarray]  # (grid, seed, contrast) -> magnitude (S, H, W)
    fov: float  # mm
    spacing: float  # mm between slices
    span: float  # mm: slices are squeezed into this range
    key: int  # random-stream key


_FAMILY = {
    "knee": _Family(phantoms.knee, phantoms.KNEE_FOV, phantoms.KNEE_SPACING, phantoms.KNEE_SPAN, phantoms.KNEE_ID),
    "brain": _Family(
        phantoms.brain, phantoms.BRAIN_FOV, phantoms.BRAIN_SPACING, phantoms.BRAIN_SPAN, phantoms.BRAIN_ID
    ),
}


@dataclass(frozen=True)
class SampleSpec:
    """What to generate (frozen: hashable, usable as a cache key).

    Attributes:
        family: ``"knee"`` or ``"brain"``.
        size: image / k-space matrix ``size x size`` (16..1024); the field of view
            is fixed, so ``size`` sets the resolution.
        slices: number of slices ``S`` (1..256), centred on the most detailed cut.
        coils: number of receive coils ``C`` (1..32); 1 = single-coil data.
        seed: the subject (shape perturbations, lesions, textures, noise).
        contrast: ``""`` (the family's default: knee ``"pd"``, brain ``"t2"``) or one of :data:`CONTRASTS`
            (knee ``"pdfs"``: fat-suppressed; brain ``"t1"``): the same subject, another contrast (a shift).
        dataset: ``""`` (``"fastmri"``) or one of :data:`DATASETS` (knee ``"stanford"``: a Stanford-like 3D
            FSE acquisition of the same subject, a dataset shift).
        fov: field of view along W (the phase encoding) as a fraction of the sample's, 0.5..1 (1 = the whole
            object). Below 1 the acquisition's field of view is smaller than the object: its anatomy folds over
            (wraps around) as in a real scan with too small a phase-encode FOV. The k-space is ``(S, C, size,
            W)`` with ``W`` = :func:`folded_width` (same pixel size) and the reference the RSS of that acquisition.
    """

    family: str = "knee"
    size: int = 320
    slices: int = 5
    coils: int = 8
    seed: int = 0
    contrast: str = ""
    dataset: str = ""
    fov: float = 1.0

    @property
    def resolved_contrast(self) -> str:
        """The contrast generated (the family's default for ``""``)."""
        return self.contrast or CONTRASTS.get(self.family, ("",))[0]

    @property
    def resolved_dataset(self) -> str:
        """The dataset simulated (``"fastmri"`` for ``""``)."""
        return self.dataset or "fastmri"

    @property
    def acquisition(self) -> str:
        """The fastMRI-style protocol name written to the file (``CORPD_FBK``, ``CORPDFS_3DFSE``, ``AXT2``...)."""
        name = _ACQUISITION[(self.family, self.resolved_contrast)]
        suffix = _DATASET[self.resolved_dataset].acquisition_suffix
        return name.replace("_FBK", suffix) if suffix else name


class SampleParts(NamedTuple):
    """The noiseless ingredients of a sample (for re-simulation after edits).

    Attributes:
        image: complex64 ``(S, H, W)``: scaled magnitude times background phase.
        maps: complex64 coil sensitivities ``(S, C, H, W)``.
        noise_std: k-space noise standard deviation per real/imaginary part.
        z: slice positions ``(S,)`` in mm.
    """

    image: np.ndarray
    maps: np.ndarray
    noise_std: float
    z: np.ndarray


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def validate(spec: SampleSpec) -> SampleSpec:
    """Check a spec.

    Raises:
        ExplorerError: unknown family, size outside 16..1024, slices outside
            1..256, coils outside 1..32, a non-integer field, a negative seed, or
            more than :data:`MAX_SAMPLES` k-space samples in total.
    """
    if not isinstance(spec, SampleSpec):
        raise ExplorerError(f"expected a SampleSpec, got {type(spec).__name__}")
    if spec.family not in FAMILIES:
        raise ExplorerError(f"unknown sample family {spec.family!r}; choose one of {', '.join(FAMILIES)}")
    for name, lo, hi in (("size", 16, 1024), ("slices", 1, MAX_SLICES), ("coils", 1, MAX_COILS)):
        value = getattr(spec, name)
        if not _is_int(value) or not lo <= value <= hi:
            raise ExplorerError(f"sample {name} must be an integer in {lo}..{hi}, got {value!r}")
    if spec.contrast and spec.contrast not in CONTRASTS[spec.family]:
        raise ExplorerError(f"unknown {spec.family} contrast {spec.contrast!r}; choose one of "
                            f"{', '.join(CONTRASTS[spec.family])}")
    if spec.dataset and spec.dataset not in DATASETS[spec.family]:
        raise ExplorerError(f"unknown {spec.family} sample dataset {spec.dataset!r}; choose one of "
                            f"{', '.join(DATASETS[spec.family])}")
    if isinstance(spec.fov, bool) or not isinstance(spec.fov, (int, float)) or not 0.5 <= spec.fov <= 1:
        raise ExplorerError(f"sample fov must be a number in 0.5..1, got {spec.fov!r}")
    if not _is_int(spec.seed) or spec.seed < 0:
        raise ExplorerError(f"sample seed must be a non-negative integer, got {spec.seed!r}")
    total = spec.slices * spec.coils * spec.size**2
    if total > MAX_SAMPLES:
        raise ExplorerError(
            f"sample too large: slices*coils*size^2 = {total:,} exceeds {MAX_SAMPLES:,}; use fewer slices or coils"
        )
    return spec


def slice_positions(spec: SampleSpec) -> np.ndarray:
    """Slice positions (mm) of a spec: the family's spacing, squeezed into its span.

    Returns:
        float64 ``(S,)``, symmetric about ``z = 0``, the family's most detailed cut
        (an odd number of slices always includes it).
    """
    fam = _FAMILY[spec.family]
    spacing = _DATASET[spec.resolved_dataset].spacing or fam.spacing
    spacing = spacing if spec.slices == 1 else min(spacing, fam.span / (spec.slices - 1))
    return (np.arange(spec.slices) - (spec.slices - 1) / 2) * spacing


def parts(spec: SampleSpec) -> SampleParts:
    """The noiseless object and coil maps of a spec.

    Returns:
        :class:`SampleParts` (image ``(S, H, W)``, maps ``(S, C, H, W)``).
    """
    validate(spec)
    fam = _FAMILY[spec.family]
    ds = _DATASET[spec.resolved_dataset]
    z = slice_positions(spec)
    g = phantoms.make_grid(spec.size, ds.fov or fam.fov, z)
    extra = {"three_d": True} if ds.key else {}  # only the knee has another dataset
    magnitude = fam.draw(g, spec.seed, spec.resolved_contrast, **extra)
    phase = background_phase(g, spec.family, spec.seed)
    image = (magnitude * np.float32(SCALE)) * np.exp(1j * phase).astype(np.complex64)
    maps = coil_maps(g, spec.family, spec.coils, spec.seed, array=spec.resolved_dataset)
    # noise level from the tissue signal of the coil-combined image
    sub = (slice(None), slice(None), slice(None, None, 4), slice(None, None, 4))
    combined = magnitude[sub[1:]] * np.sqrt((np.abs(maps[sub]) ** 2).sum(1)) * np.float32(SCALE)
    tissue = combined[magnitude[sub[1:]] > 0.25]
    level = float(np.median(tissue)) if tissue.size else float(SCALE) * 0.5
    return SampleParts(image.astype(np.complex64), maps, level / ds.snr, z)


def _noise_mixing(coils: int, rng: np.random.Generator) -> np.ndarray:
    """Lower-triangular factor of a coil noise covariance (neighbours correlated)."""
    i = np.arange(coils)
    dist = np.abs(i[:, None] - i[None, :])
    dist = np.minimum(dist, coils - dist)
    cov = NOISE_CORRELATION ** dist.astype(np.float64)
    gain = rng.uniform(0.9, 1.1, coils)
    cov = cov * gain[:, None] * gain[None, :]
    return np.linalg.cholesky(cov).astype(np.float32)


def generate(spec: SampleSpec) -> tuple[np.ndarray, np.ndarray]:
    """Simulate a fully sampled multi-coil volume.

    Args:
        spec: what to generate (validated).

    Returns:
        ``(kspace, target)``: complex64 ``(S, C, H, W)`` k-space with ``H = spec.size``,
        ``W =`` :func:`folded_width` and float32 ``(S, H, W)`` reference ``RSS(ifft2c(kspace))``.

    Raises:
        ExplorerError: invalid spec.
    """
    p = parts(spec)
    S, C, H, W = p.maps.shape
    folded = folded_width(spec)
    if folded != W:  # a smaller phase-encode field of view: what lies outside wraps around (coil images add up)
        index = torch.from_numpy((np.arange(W) - W // 2 + folded // 2) % folded)
        images = torch.from_numpy(p.maps) * torch.from_numpy(p.image).unsqueeze(1)
        wrapped = torch.zeros((S, C, H, folded), dtype=images.dtype).index_add_(-1, index, images)
        return _acquire(spec, wrapped, float(p.noise_std), prepared=False)
    # centred FFTs without fftshift copies: fft2c(x) = chk * fft2(chk0 * x) for even
    # sizes (chk0 = (-1)^(i+j), chk = chk0 * (-1)^(H/2 + W/2)); RSS ignores the output sign
    even = H % 2 == 0 and W % 2 == 0
    chk0 = torch.from_numpy(_checker(H, W))
    with torch.no_grad():
        image = torch.from_numpy(p.image)
        coil_images = torch.from_numpy(p.maps) * (image * chk0 if even else image).unsqueeze(1)
    return _acquire(spec, coil_images, float(p.noise_std), prepared=even)


def folded_width(spec: SampleSpec) -> int:
    """Columns of a sample's k-space: ``spec.size``, or the even ``round(spec.fov * spec.size)`` when folded."""
    return spec.size if spec.fov >= 1 else max(16, 2 * round(spec.fov * spec.size / 2))


def _acquire(spec: SampleSpec, coil_images: torch.Tensor, noise_std: float,
             prepared: bool) -> tuple[np.ndarray, np.ndarray]:
    """k-space and RSS reference of coil images ``(S, C, H, W)`` (``prepared``: already multiplied by the
    checkerboard of the FFT trick below), plus the correlated coil noise."""
    S, C, H, W = coil_images.shape
    even = H % 2 == 0 and W % 2 == 0
    chk0 = torch.from_numpy(_checker(H, W))
    with torch.no_grad():
        if even and not prepared:
            coil_images = coil_images * chk0
        if even:
            kspace = torch.fft.fft2(coil_images, norm="ortho")
            kspace *= chk0 * float((-1) ** (H // 2 + W // 2))
        else:
            kspace = fft2c(coil_images)
        del coil_images
        key = _FAMILY[spec.family].key + _DATASET[spec.resolved_dataset].key
        gen = torch.Generator().manual_seed(phantoms.seed_int(spec.seed, key, 99))
        white = torch.randn((C, S * H * W * 2), generator=gen)
        mix = torch.from_numpy(_noise_mixing(C, phantoms.rng_for(spec.seed, key, 98)))
        noise = torch.view_as_complex((mix @ white).reshape(C, S, H, W, 2)).transpose(0, 1)
        kspace += noise * noise_std
        del noise, white
        coil_images = torch.fft.ifft2(kspace * chk0, norm="ortho") if even else ifft2c(kspace)
        parts_sq = coil_images.numpy().view(np.float32)  # (S, C, H, 2W): re, im interleaved
        power = np.square(parts_sq).sum(1)
        target = np.sqrt(power[..., 0::2] + power[..., 1::2])
    return kspace.numpy(), target.astype(np.float32, copy=False)


def _checker(h: int, w: int) -> np.ndarray:
    ci = 1 - 2 * (np.arange(h) % 2)
    cj = 1 - 2 * (np.arange(w) % 2)
    return (ci[:, None] * cj[None, :]).astype(np.float32)


def file_name(spec: SampleSpec) -> str:
    """``sample_<family>_<size>_s<slices>_c<coils>_seed<seed>[_<contrast>][_<dataset>].h5`` (no suffix for the
    defaults)."""
    suffix = f"_{spec.contrast}" if spec.contrast and spec.contrast != CONTRASTS[spec.family][0] else ""
    suffix += f"_{spec.dataset}" if spec.dataset and spec.dataset != DATASETS[spec.family][0] else ""
    suffix += f"_fov{spec.fov:g}" if spec.fov < 1 else ""
    return f"sample_{spec.family}_{spec.size}_s{spec.slices}_c{spec.coils}_seed{spec.seed}{suffix}.h5"


def write_sample(out_dir: str | Path, spec: SampleSpec) -> Path:
    """Generate a sample and write it as a fastMRI-layout HDF5 file.

    Multi-coil specs write ``kspace`` ``(S, C, H, W)`` and ``reconstruction_rss``;
    ``coils=1`` writes a single-coil file, ``kspace`` ``(S, H, W)`` and
    ``reconstruction_esc``. Attributes: ``acquisition`` (:attr:`SampleSpec.acquisition`),
    ``patient_id``, ``sample_spec`` (JSON), ``generator_version``, ``max``, ``norm``.

    Returns:
        the written path ``out_dir / file_name(spec)``.
    """
    validate(spec)
    kspace, target = generate(spec)
    if spec.coils == 1:
        kspace = kspace[:, 0]
    attrs = {
        "acquisition": spec.acquisition,
        "patient_id": f"sample-{spec.family}-{spec.seed:04d}",
        "sample_spec": json.dumps(asdict(spec), sort_keys=True),
        "generator_version": GENERATOR_VERSION,
        "norm": float(np.linalg.norm(target)),
    }
    return write_volume(Path(out_dir) / file_name(spec), kspace, target, recon_size=tuple(target.shape[-2:]),
                        attrs=attrs)


def cache_dir() -> Path:
    """Where generated samples are cached: ``$EXPLORER_CACHE_DIR`` or ``~/.cache/mri-explorer``."""
    env = os.environ.get("EXPLORER_CACHE_DIR", "").strip()
    return Path(env).expanduser() if env else Path.home() / ".cache" / "mri-explorer"


def sample_path(spec: SampleSpec = SampleSpec()) -> Path:
    """The cached sample file of ``spec``, generated on first use.

    The name carries :data:`GENERATOR_VERSION`, so a changed generator never serves
    a stale file. Generation writes into a private temporary directory and renames,
    so concurrent callers never see a partial file; callers in one process wait for
    one generation instead of repeating it.

    Raises:
        ExplorerError: invalid spec, or the cache directory is not writable.
    """
    validate(spec)
    directory = cache_dir()
    path = directory / f"{Path(file_name(spec)).stem}_g{GENERATOR_VERSION}.h5"
    if path.is_file():
        return path
    with _GENERATING:  # e.g. the app's start-up preload and a first page run ask at once
        if path.is_file():
            return path
        tmp = None
        try:
            directory.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=".sample-", dir=directory))
            os.replace(write_sample(tmp, spec), path)
        except OSError as exc:
            raise ExplorerError(
                f"cannot write the sample cache in {directory} ({exc.strerror or exc}); set EXPLORER_CACHE_DIR"
            ) from None
        finally:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
    return path
