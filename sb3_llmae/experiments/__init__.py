"""Experiments: method specs, the compare runner (local processes or Ray), and the report
(rliable IQM with stratified-bootstrap CIs, time to threshold, plots, heatmap panels)."""
