"""Models: the shipped trained checkpoints with their model cards, and adding published or own checkpoints."""
# ruff: noqa: E402

from explorer.ui import router

router.require()  # before the heavy imports: app.py (router, sidebar) wraps this page first

import json

import streamlit as st

from explorer.errors import ExplorerError
from explorer.ui import checkpoint_store, widgets
from explorer.ui import present as human

st.title("Models")
st.caption("Trained networks (fastMRI's U-net and end-to-end VarNet) and their checkpoints. Un-trained networks "
           "and sparse recovery need no checkpoint: they fit each slice on their own.")

from explorer.recon import checkpoints  # torch: imported after the first elements are on screen
from explorer.recon import model_store
from explorer.recon.networks import network_kinds

COLUMNS = ["model", "trained on", "architecture", "weights (M)", "size (MB)", "steps", "val SSIM"]
HEADERS = {"name": "Checkpoint", "model": "Model", "trained on": "Trained on", "architecture": "Architecture",
           "weights (M)": "Weights (M)", "size (MB)": "Size (MB)", "steps": "Training steps",
           "val SSIM": "Validation SSIM", "file": "File"}
WIDTHS = {"Checkpoint": "medium", "Model": "small", "Trained on": "large", "Architecture": "medium", "File": "medium"}


def show_table(rows: list[dict], key: str) -> None:
    """A table of checkpoints that fits the page: human headers, long texts in bounded columns (full text on
    hover), a dash where a value is unknown."""
    rows = [{HEADERS.get(k, k): v for k, v in row.items()} for row in rows]
    frame, config = human.table(rows, formats={"Validation SSIM": "%.4f", "Weights (M)": "%.2f", "Size (MB)": "%.1f"},
                                widths=WIDTHS)
    st.dataframe(frame, hide_index=True, key=key, width="stretch", column_config=human.column_config(config))


# ---------------------------------------------------------------- shipped
st.subheader("Shipped checkpoints", divider="gray")
st.markdown("Trained with `python -m explorer train` on the embedded sample (4× random masks, centre 0.08). "
            "In **Reconstruct**, `checkpoint = auto` picks the one trained on the data's anatomy; `knee` / `brain` "
            "force one (a knee checkpoint on brain data is the anatomy shift studied by the robustness pages).")
try:
    rows = model_store.shipped_catalog()
except ExplorerError as exc:  # e.g. a damaged file in EXPLORER_CHECKPOINT_DIR: say so, keep the page
    widgets.show_error(exc)
    rows = []
present = [r for r in rows if "missing" not in r]
if present:
    show_table([{"name": r["name"], **{c: r[c] for c in COLUMNS}} for r in present], "models.shipped")
for r in rows:
    if "missing" in r:
        st.warning(f"**{r['name']}** is missing (not trained yet). Train it with:", icon=":material/warning:")
        st.code(r["missing"], language="bash", wrap_lines=True)
if present:
    with st.expander("Model cards", icon=":material/description:"):
        name = st.selectbox("Checkpoint", [r["name"] for r in present], key="models.card")
        chosen = next(r for r in present if r["name"] == name)
        with widgets.stop_on_error():
            st.json(checkpoints.load_checkpoint(chosen["file"], chosen["kind"]).card, expanded=1)

# ---------------------------------------------------------------- shipped beyond the anatomy slots
extras = [(network, name, path) for network in network_kinds()
          for name, path in checkpoint_store.shipped_extras(network.name).items()]
if extras:
    st.subheader("Also shipped: networks trained on real scans", divider="gray")
    st.markdown("Trained on real anatomy rather than the embedded phantoms (their cards name the public data, its "
                "commit, split and terms, and the training command). To use one, type its name as the "
                "**checkpoint** of U-net / E2E VarNet in Reconstruct and the robustness pages, or give its file to "
                "the CLI (`--set unet.checkpoint=assets/checkpoints/unet_brain-real.pt`).")
    extra_rows = []
    for network, name, path in extras:
        try:
            extra_rows.append({"name": name, **model_store.summary(path, None), "kind": network.name})
        except ExplorerError as exc:
            widgets.show_error(exc)
    if extra_rows:
        show_table([{"name": r["name"], **{c: r[c] for c in COLUMNS}} for r in extra_rows], "models.extras")
        with st.expander("Their model cards", icon=":material/description:"):
            label = st.selectbox("Checkpoint", [f"{r['kind']} {r['name']}" for r in extra_rows], key="models.extra_card")
            chosen = extra_rows[[f"{r['kind']} {r['name']}" for r in extra_rows].index(label)]
            with widgets.stop_on_error():
                st.json(checkpoints.load_checkpoint(chosen["file"], chosen["kind"]).card, expanded=1)

# ---------------------------------------------------------------- add
st.subheader("Add a checkpoint", divider="gray")
st.markdown(
    "A published fastMRI state dict (VarNet knee / brain leaderboard: 12 cascades, chans 18, pools 4, sens_chans 8, "
    "sens_pools 4; U-net knee_sc / knee_mc / brain: chans 256, 4 pools), a Lightning-style `{\"state_dict\": …}` "
    "file, or any checkpoint written by the training CLI. The architecture is recognised from the weights (or "
    "taken from the model card). Files are read with `torch.load(weights_only=True)`: a file that holds any other "
    "pickled object is refused without running it. Nothing is downloaded.")
how = st.radio("From", ["Local path", "Upload"], horizontal=True, key="models.how")
try:
    if how == "Local path":
        path_col, button_col = st.columns([5, 1], vertical_alignment="bottom")
        text = path_col.text_input("Checkpoint file", key="models.path",
                                   placeholder="~/fastmri/varnet_knee_leaderboard_state_dict.pt")
        if button_col.button("Add", key="models.add", icon=":material/add:"):
            row = checkpoint_store.add_path(text)
            st.success(f"Added {row['model']} ({row['architecture']}).", icon=":material/check_circle:")
    else:
        upload = st.file_uploader("Checkpoint file", type=[s.lstrip(".") for s in checkpoint_store.SUFFIXES],
                                  key="models.upload")
        if upload is not None:
            row = checkpoint_store.add_upload(upload.name, upload.getbuffer(), upload.file_id)
            st.success(f"Added {row['model']} ({row['architecture']}).", icon=":material/check_circle:")
except ExplorerError as exc:  # one line; the rest of the page (the added checkpoints) stays
    widgets.show_error(exc)

mine = checkpoint_store.added()
if mine:
    st.markdown("**Added in this session.** To use one, set the **checkpoint** parameter of U-net / E2E VarNet in "
                "Reconstruct (or `--set varnet.checkpoint=PATH` in the CLI) to its file:")
    show_table([{**{c: r[c] for c in COLUMNS}, "file": r["file"]} for r in mine.values()], "models.added")
    for r in mine.values():
        st.code(r["file"], language=None)
    st.download_button("Catalogue (.json)", json.dumps(list(mine.values()), indent=2), "checkpoints.json",
                       key="models.dl", icon=":material/download:")
