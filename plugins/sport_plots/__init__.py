"""The paper's figures (a–f) and a Markdown report, from runs' own artifacts (built-in plugin ``plots``).

``sport plot RUN_DIR…`` writes the figures (PNG and SVG); ``sport report RUN_DIR…`` writes ``report.md``
with the certificate and per-α tables, the figures, versions and hashes. Given several runs (seeds), both
show the mean and the spread across them. During a run, the figures and tables of every completed
certificate and sweep also go to the loggers (``sport_stage_completed``), e.g. TensorBoard's Images tab.
"""
