"""Home: what the explorer is for, and an interactive primer on accelerated MRI."""
# ruff: noqa: E402

from explorer.ui import router

router.require()  # before the heavy imports: app.py (router, sidebar) wraps this page first

import streamlit as st

from explorer.figures import images as figures
from explorer.figures import teaching as teaching_figures
from explorer.masks import MaskConfig
from explorer.recon.base import MethodInstance, available_methods
from explorer.teaching import lessons as teaching_lessons
from explorer.ui import cache, state, widgets
from explorer.ui.teaching import mode as teaching
from explorer.ui.teaching import path as teaching_path


RECONSTRUCT = "pages/reconstruct.py"

teaching_path.switch_if_asked()  # a guided-path button was pressed: open its page

st.title("MRI robustness explorer")
st.markdown(
    "Deep networks now reconstruct accelerated MRI scans better than classical compressed sensing, but are they "
    "**less robust**? Following *Darestani, Chaudhari & Heckel, “Measuring Robustness in Deep Learning Based "
    "Compressive Sensing”, ICML 2021*, this explorer puts three families of methods side by side on the same "
    "undersampled k-space: **sparse (ℓ1) recovery**, **un-trained networks** and **trained end-to-end networks**, "
    "and lets you probe how they behave."
)
st.markdown("**What the papers found** (their claims; what this explorer measured on its data, and where it differs, "
            "is in the guided path of the teaching mode below and in the README):")
findings = st.columns(3)
for col, (title, text) in zip(findings, [
    ("Adversarial perturbations", "Small worst-case perturbations of the measurements hurt trained, un-trained "
                                  "and ℓ1 methods alike: no evidence that networks are uniquely unstable."),
    ("Small features", "Recovery of fine details tracks overall reconstruction quality: better methods keep "
                       "more small features."),
    ("Distribution shifts", "Performance drops under dataset and anatomy shifts are similar for all families; "
                            "test-time training closes most of the gap for trained networks."),
]):
    with col.container(border=True):
        st.markdown(f"**{title}**")
        st.caption(text)

# ---------------------------------------------------------------- interactive primer
st.subheader("Accelerated MRI in one slider", divider="gray")
st.markdown(
    "An MRI scanner measures **k-space**, the 2D Fourier transform of the image, one line (column) at a time; scan "
    "time is proportional to the number of lines. Acquiring only every *R*-th line makes the scan *R* times "
    "faster, but the inverse FFT of the zero-filled k-space then shows **aliasing**: folded, blurred copies of "
    "the anatomy. Reconstruction methods fill in what was not measured."
)
source = state.current_source()
if source is None:
    st.info("Choose a valid data source in the sidebar to see its k-space here.", icon=":material/arrow_back:")
else:
    with widgets.stop_on_error():
        volume = cache.open_volume(source)
        index = volume.num_slices // 2
        controls, _ = st.columns([2, 1])
        left, right = controls.columns([3, 2])
        acceleration = left.slider("Acceleration R", 1, 16, 4, key="home.acceleration",
                                   help="Keep about 1/R of the k-space columns (plus a fully sampled centre).")
        mask_type = right.radio("Mask", ["random", "equispaced"], horizontal=True, key="home.mask",
                                help="Random columns give incoherent, noise-like aliasing; equispaced columns give "
                                     "coherent folded copies.")
        mask = MaskConfig(mask_type, float(acceleration), None, 0)
        problem = cache.problem(source, "kxky", index, mask)
        zf = cache.run(source, "kxky", index, mask, MethodInstance.of("zero_filled"))
    slc = problem.slice
    ref = slc.target if slc.target is not None else zf.image
    window = (0.0, float(ref.max()))
    h, w = slc.shape
    panels = st.columns(4)
    px = 280
    full = problem.sampled.config is not None  # False for test files: their k-space is already undersampled
    panels[0].plotly_chart(figures.kspace_figure(slc.kspace.numpy(), "Full k-space" if full else "Acquired k-space",
                                                 height=px, colorbar=False),
                           key="home.kspace", config={"displayModeBar": False}, theme=None)
    panels[1].plotly_chart(figures.image_figure(ref, "Fully sampled image" if slc.target is not None else "No reference",
                                                window, height=px),
                           key="home.image", config={"displayModeBar": False}, theme=None)
    actual = problem.sampled.acceleration
    mask_title = (f"Mask · R = {acceleration} (actual {actual:.2f})" if full and round(actual, 2) != acceleration
                  else f"Mask · R = {actual:.2f}")
    panels[2].plotly_chart(teaching_figures.mask_figure(problem.sampled.pattern((h, w)), mask_title, height=px),
                           key="home.mask_fig", config={"displayModeBar": False}, theme=None)
    title = "Zero-filled recon" + (f" · SSIM {zf.metrics['ssim']:.3f}" if zf.metrics else "")
    panels[3].plotly_chart(figures.image_figure(zf.image, title, window, height=px),
                           key="home.zero_filled", config={"displayModeBar": False}, theme=None)
    if not full:
        st.info("This file is already undersampled (fastMRI test data): its own mask is shown and the slider has "
                "no effect.", icon=":material/info:")
    st.caption(f"{volume.name}, slice {index}: {slc.num_coils} coil(s), {h}×{w} k-space; log₁₀ magnitude of the "
               "coil root-sum-of-squares. The bright centre of k-space holds contrast, the periphery edges and "
               "detail, which is why every mask keeps the centre fully sampled. **Mask:** "
               + teaching_lessons.acceleration_note(problem.sampled, (h, w))
               + " The mask is drawn line by line (white = sampled column), so no line is lost at any panel size.")

# ---------------------------------------------------------------- method families
st.subheader("Three families of reconstruction methods", divider="gray")
registered: dict[str, list[str]] = {}
with_weights: set[str] = set()  # families whose methods own trained weights: they get the Models page link
for spec in available_methods():
    registered.setdefault(spec.family, []).append(spec.label)
    if spec.capabilities.weights:
        with_weights.add(spec.family)
families = [
    ("sparse", "Sparse recovery (ℓ1)", "Classical compressed sensing: minimise ‖Ax − y‖² + λ‖Ψx‖₁ with a wavelet or "
     "total-variation prior and ESPIRiT coil maps. One parameter (λ), no training data."),
    ("untrained", "Un-trained networks", "Deep Decoder / ConvDecoder / Deep Image Prior: fit the weights of a "
     "randomly initialised convolutional generator to the measurements of this one scan. A few hyper-parameters, "
     "no training data; minutes per slice."),
    ("trained", "Trained networks", "U-net and end-to-end VarNet, trained end to end on many scans (the published "
     "fastMRI models: thousands of scans, up to ~500 million parameters): one forward pass, best image quality in "
     "distribution. Small demo checkpoints trained on the embedded sample ship with the explorer, and `brain-real` "
     "ones trained on real brain scans (type the name as the checkpoint on brain data); published fastMRI weights "
     "can be added on the Models page."),
]
for col, (family, title, text) in zip(st.columns(3), families):
    with col.container(border=True):
        st.markdown(f"**{title}**")
        st.caption(text)
        names = registered.get(family)
        st.caption("Available: " + ", ".join(names) if names else "Not registered in this build yet.")
        st.page_link(RECONSTRUCT, label="Compare on the Reconstruct page", icon=":material/arrow_forward:")
        if family in with_weights:
            st.page_link("pages/models.py", label="Checkpoints on the Models page", icon=":material/arrow_forward:")
baselines = registered.get("baseline")
if baselines:
    st.caption("Baselines for reference: " + ", ".join(baselines) + ".")

# ---------------------------------------------------------------- teaching mode
teaching.render(state.current_source())
