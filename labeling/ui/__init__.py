"""The Streamlit UI and ``serve``: the only package (with app.py) that imports streamlit."""
