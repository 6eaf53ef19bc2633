"""Placeholder replaced by shipped samples."""
def load_sample_deals():
    raise RuntimeError("not yet")
def load_sample_projects():
    raise RuntimeError("not yet")
