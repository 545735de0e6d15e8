"""Analysis of models and runs: model summaries (layer table, parameters, MACs), reports, predictions."""

from papernets.analysis.summary import ModelSummary, count_macs, count_parameters, summarize

__all__ = ["ModelSummary", "count_macs", "count_parameters", "summarize"]
