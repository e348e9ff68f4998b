"""The image viewer for fine-detail reading: layouts (grid, flip, blink), ROI statistics, line profiles,
error maps and window presets. Numpy and plotly only (no Streamlit): the app's viewer component
(:mod:`explorer.ui.viewer`), notebooks and tests use the same functions.
"""
