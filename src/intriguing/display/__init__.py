"""The book's display: plots, tables, viewers, claims on a page and the scorecard. Reads results
files (``plumbing.results``), plain arrays and frames files; never the attack or an experiment."""
