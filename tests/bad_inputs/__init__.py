"""The bad-input corpus: every case gets a clear message and leaves the store as it was."""
