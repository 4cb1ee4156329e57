"""Data in and out: readers, validation, import, export, removal, drift."""
