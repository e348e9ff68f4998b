"""Write raw ISMRMRD files in the mridata.org Stanford 3D FSE knee layout (tests and demos).

The real files are read by :class:`explorer.data.ismrmrd.IsmrmrdVolume`; this writer
reproduces their layout and quirks from a known volume so the reader can be tested
without the 1.3 GB originals.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import ismrmrd
import ismrmrd.xsd as xsd
import numpy as np
from ismrmrd.hdf5 import acquisition_dtype

ORDERS = ("ky-major", "slice-major")


def stanford_header(num_coils: int, nz: int, nky: int, nkx: int, recon_size: tuple[int, int] = (512, 512)) -> str:
    """ISMRMRD XML header with the Stanford quirks.

    ``encodingLimits`` give ``maximum = KY`` for ``kspace_encoding_step_1`` and ``maximum = Z``
    for ``kspace_encoding_step_2`` (counts, not last indices); ``reconSpace`` is ``recon_size``
    (512x512 in the real files), which is not the image size.
    """

    def space(size: tuple[int, int, int]) -> xsd.encodingSpaceType:
        return xsd.encodingSpaceType(
            matrixSize=xsd.matrixSizeType(x=size[0], y=size[1], z=size[2]),
            fieldOfView_mm=xsd.fieldOfViewMm(x=160.0, y=160.0, z=153.6),
        )

    limits = xsd.encodingLimitsType(
        kspace_encoding_step_1=xsd.limitType(minimum=0, maximum=nky, center=nky // 2),
        kspace_encoding_step_2=xsd.limitType(minimum=0, maximum=nz, center=nz // 2),
        slice=xsd.limitType(minimum=0, maximum=nz - 1, center=nz // 2),
    )
    encoding = xsd.encodingType(
        encodedSpace=space((nkx, nky, nz)),
        reconSpace=space((recon_size[0], recon_size[1], 1)),
        encodingLimits=limits,
        trajectory=xsd.trajectoryType.CARTESIAN,
    )
    header = xsd.ismrmrdHeader(
        experimentalConditions=xsd.experimentalConditionsType(H1resonanceFrequency_Hz=127_740_000),
        acquisitionSystemInformation=xsd.acquisitionSystemInformationType(receiverChannels=num_coils),
        encoding=[encoding],
    )
    return xsd.ToXML(header)


def write_stanford_like(
    path: str | Path,
    kspace_xyz: np.ndarray,
    *,
    recon_size: tuple[int, int] = (512, 512),
    order: str = "ky-major",
    drop: Iterable[tuple[int, int]] = (),
) -> Path:
    """Write a raw ISMRMRD file with the Stanford 3D FSE layout (atomically: temp file, then rename).

    Args:
        path: output ``.h5`` file.
        kspace_xyz: complex hybrid volume ``(C, Z, KY, KX)``: z in image space, ky and the
            readout kx in k-space. Acquisition ``(z, ky)`` stores ``kspace_xyz[:, z, ky, :] * (-1)**z``
            as ``(C, KX)`` samples with ``idx.slice = z`` and ``idx.kspace_encode_step_1 = ky``.
        recon_size: ``reconSpace`` matrix written in the header (the real files say 512x512).
        order: acquisition order in the file, ``"ky-major"`` (ky outer loop) or ``"slice-major"``.
        drop: ``(z, ky)`` pairs to leave out (to test missing-acquisition checks).

    Returns:
        the written path.
    """
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    vol = np.asarray(kspace_xyz, dtype=np.complex64)
    if vol.ndim != 4:
        raise ValueError(f"kspace_xyz must be (C, Z, KY, KX), got shape {vol.shape}")
    c, nz, nky, nkx = vol.shape
    skip = {(int(z), int(k)) for z, k in drop}
    pairs = [(z, k) for k in range(nky) for z in range(nz)] if order == "ky-major" else \
        [(z, k) for z in range(nz) for k in range(nky)]
    pairs = [p for p in pairs if p not in skip]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with ismrmrd.Dataset(str(tmp), "dataset", mode="w") as dset:
        dset.write_xml_header(stanford_header(c, nz, nky, nkx, recon_size))
        dset._file.require_group("dataset").create_dataset(
            "data", (len(pairs),), maxshape=(None,), dtype=acquisition_dtype, chunks=(min(len(pairs), 1024) or 1,)
        )
        for n, (z, ky) in enumerate(pairs):
            acq = ismrmrd.Acquisition.from_array(np.ascontiguousarray(vol[:, z, ky, :] * (-1) ** z))
            acq.idx.slice = z
            acq.idx.kspace_encode_step_1 = ky
            acq.center_sample = nkx // 2
            acq.scan_counter = n
            acq.read_dir[:] = (1.0, 0.0, 0.0)
            acq.phase_dir[:] = (0.0, 1.0, 0.0)
            acq.slice_dir[:] = (0.0, 0.0, 1.0)
            dset.write_acquisition(acq, n)
    tmp.replace(path)
    return path
