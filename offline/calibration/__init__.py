"""Calibration: fitting the detector's policies to a club's own history (pure, no I/O)."""
