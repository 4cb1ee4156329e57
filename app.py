"""``streamlit run app.py`` from a clone: the app itself is labeling/ui/main.py, in the package."""

import runpy

runpy.run_module("labeling.ui.main", run_name="__main__")
