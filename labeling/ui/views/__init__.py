"""Streamlit pages of the labelloop app: the only modules that import streamlit."""
