"""Spectra and molecules: reading, cleaning, simulating and downloading libraries; fingerprints; pairs; m/z binning."""
