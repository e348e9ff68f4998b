"""The Streamlit script bench/bench_viewer.py drives: the app's viewer on the embedded knee, a reference and N
"methods" (the slice with seeded noise of growing strength: the viewer's cost does not depend on what made the
images) per slice, every slice cached on the server, neighbours sent only once the browser has seen them.

Environment: BENCH_VIEWER_SIZE (default 320), BENCH_VIEWER_METHODS (default 6).
"""

import os

import numpy as np
import streamlit as st

from explorer.data.sample import SampleSpec, sample_path
from explorer.data.sources import open_volume
from explorer.ui import viewer

SIZE = int(os.environ.get("BENCH_VIEWER_SIZE", "320"))
METHODS = int(os.environ.get("BENCH_VIEWER_METHODS", "6"))
st.set_page_config(page_title="viewer benchmark", layout="wide")


@st.cache_resource
def volume():
    return open_volume(str(sample_path(SampleSpec("knee", size=SIZE))))


@st.cache_data
def slice_images(index: int):
    target = np.asarray(volume().read_slice(index).target, np.float32)
    rng, top = np.random.default_rng(index), float(target.max())
    images = {f"Method {i + 1}": np.abs(target + (0.02 + 0.01 * i) * top * rng.standard_normal(target.shape))
              .astype(np.float32) for i in range(METHODS)}
    return target, images


count = volume().num_slices
seen = st.session_state.setdefault("bench.seen", set())
index = st.session_state.setdefault("bench.slice", count // 2)


def to_slice(i: int) -> None:
    st.session_state["bench.slice"] = i


target, images = slice_images(index)
seen.add(index)
neighbours = {j: (*slice_images(j), {}) for j in (index - 1, index + 1) if j in seen}
viewer.show("bench", target, images, uirevision="bench", filename="bench",
            subtitles={label: "SSIM 0.000 · PSNR 00.00 dB" for label in images},
            slices=viewer.Slices(index, count, to_slice, "bench", neighbours))
st.caption(f"bytes sent this run: {st.session_state['bench.bytes']}")
