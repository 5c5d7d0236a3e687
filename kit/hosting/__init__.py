"""Handing a prepared competition to a hosting platform: Codabench bundles, Kaggle, their pages."""
