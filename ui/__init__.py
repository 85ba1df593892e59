"""Streamlit glue shared by the pages: cached models and captures, URL state, shared widgets."""
