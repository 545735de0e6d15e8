"""papernets: the classic CNN papers, implemented line by line, trained fast, verified by tests."""

__version__ = "0.1.0"
