"""Study: open a study directory (or run a small spec here) and see every experiment's figures and tables.

Thin page: widgets -> explorer.study (runner, report) via explorer.ui.runs.study -> figures.
"""
# ruff: noqa: E402

from explorer.ui import router

router.require()  # before the heavy imports: app.py (router, sidebar) wraps this page first

import pandas as pd
import streamlit as st

from explorer.engine.table import read_records
from explorer.readers.report import study_readers
from explorer.study.report import definitions, report_html, sections, slice_table
from explorer.study.runner import RESULTS, SPEC
from explorer.ui import bundle, paths, present, state, widgets
from explorer.ui.runs import study as study_run

goto = st.session_state.pop(study_run.GOTO, None)
if goto:  # a row was opened (the button's callback set the page's widgets)
    st.switch_page(goto)
st.title("Study")
st.caption("Robustness experiments (clean, attack, small features, shift, test-time training) over files × slices × "
           "masks × method instances, as one table. Large studies run from the command line "
           "(`python -m explorer study SPEC.yaml --out DIR [--executor ray]`); open their folder here.")

EXAMPLE = """name: demo
data:
  - source: sample:knee
    slices: [1, 2, 3]
masks:
  - {type: random, acceleration: 4, center_fraction: 0.08, seed: 0}
methods:
  - zero_filled
  - sense
  - unet
experiments:
  - clean
  - attack: {eps: [0.02, 0.04], steps: 5}
  - shift: {ood: [{source: sample:brain, slices: [1, 2, 3]}]}
"""

mode = st.radio("Study", ["open", "run"], horizontal=True, key="study.mode",
                format_func=lambda m: {"open": "Open a study folder", "run": "Run a small spec here"}[m])
root = state.output_root()
folder = st.text_input("Study folder", key="study.folder", placeholder="studies/demo",
                       help=f"Relative folders start in {root}.")
if state.outputs_configured():
    st.caption(f"Study folders are read and written under the data directory {root}.")
else:
    st.caption(f"No data directory was given (`streamlit run app.py -- --data-dir DIR` or EXPLORER_DATA_DIR): studies "
               f"run here are written to your own folder **{root}** (created when needed), never into the folder "
               "the app was started in.")
out = None
with widgets.stop_on_error():
    if folder.strip():
        out = (paths.confine_output(folder, "the study folder") if mode == "run"
               else paths.confine_path(folder, "the study folder", base=root))
if mode == "run":
    spec_text = st.text_area("Spec (YAML)", EXAMPLE, height=320, key="study.spec")
    resume = st.checkbox("Resume (skip finished units)", key="study.resume")
    request = study_run.StudyRequest(spec_text, str(out), bool(resume))
    study_run.RUN.section(request, heading=None, disabled=out is None, stop_if_idle=False)
if out is None:
    st.info("Enter a study folder.", icon=":material/folder_open:")
    st.stop()
if not (out / RESULTS).is_file():
    st.info(f"No study in {out} yet." + (" Run the spec above." if mode == "run" else ""), icon=":material/folder_open:")
    st.stop()
with widgets.stop_on_error():
    records = read_records(out / RESULTS)
if not records:
    st.info("The study has no rows yet.")
    st.stop()
failed = sum(bool(r.error) for r in records)
st.subheader("Results", divider="gray")
st.caption(f"{len(records)} rows from {len({r.unit for r in records})} units · {failed} failed · {out}")
st.caption(definitions(records))
for key, section in sections(records):
    st.markdown(f"**{section.title}**")
    if section.caption:
        st.caption(section.caption)
    if section.figure is not None:
        st.plotly_chart(present.bound_ssim_axes(study_run.human_figure(section.figure)), key=f"study.fig.{key}",
                        theme=None, config={"displaylogo": False})
    for j, (caption, rows) in enumerate(section.tables):
        st.caption(caption + study_run.fit_note(rows))
        frame, config = present.table(rows, formats=study_run.FORMATS)
        st.dataframe(frame, hide_index=True, key=f"study.table.{key}.{j}", width="stretch",
                     column_config=present.column_config(config))
st.subheader("Per-slice rows", divider="gray")
raw = pd.DataFrame(slice_table(records))
experiments = sorted(raw["experiment"].unique())
chosen = st.multiselect("Experiments", experiments, default=experiments, key="study.filter")
selected = raw[raw["experiment"].isin(chosen)]
shown, config = present.table(selected, formats=study_run.FORMATS)
event = st.dataframe(shown, hide_index=True, key="study.table.rows", on_select="rerun", selection_mode="single-row",
                     width="stretch", column_config=present.column_config(config))
picked = list(event.selection.rows) if event is not None else []
if picked:
    record = records[int(selected.index[picked[0]])]
    study_run.show_stored(record)  # the stored result: nothing is run again
    reason = study_run.openable(record)
    page = study_run.row_page(record)[0].rsplit("/", 1)[-1].removesuffix(".py")
    where = record.data if record.data.startswith("sample:") else record.file
    st.button(f"Reconstruct slice {record.slice} of {where} with {present.method_name(record.label)} again on the "
              f"{page} page", key="study.open", icon=":material/open_in_new:", disabled=reason is not None,
              help=reason or "Puts the row's data, slice, mask, method and parameters into that page; press its Run "
                             "button there to compute the images again.",
              on_click=study_run.open_in_page, args=(record,))
else:
    st.caption("Select a row to see its stored result (settings, metrics and scores), and to reconstruct it again on "
               "the matching page.")
spec_text = (out / SPEC).read_text() if (out / SPEC).is_file() else ""
c1, c2, c3 = st.columns(3)
readers = study_readers(out)  # the reading sessions built from this study (registered in its readers/ folder)
c1.download_button("Report (self-contained HTML)", report_html(records, spec_text, f"Study {out.name}",
                                                               readers.sections(), readers.files()),
                   file_name=f"{out.name}_report.html", mime="text/html", key="study.report",
                   icon=":material/description:")
c2.download_button("Table (CSV)", present.csv_text([r.row() for r in records]), file_name=f"{out.name}.csv",
                   mime="text/csv", key="study.csv", icon=":material/table:")
bundle.offer("study.bundle", out.name, study_run.bundle(records, spec_text, out.name), container=c3,
             label="Download this study (.zip)")
