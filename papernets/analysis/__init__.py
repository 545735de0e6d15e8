"""Analysis of finished runs: reports, plots, calibration, predictions, comparison of runs, the papers'
published results. It reads run folders (papernets.runs) and never imports papernets.training."""
