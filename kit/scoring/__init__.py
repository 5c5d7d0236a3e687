"""Scoring a submission: the metrics, the one submission reader, the scorer and the submission writer."""
