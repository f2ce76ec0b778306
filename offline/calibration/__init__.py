"""Calibration: fitting the detector's policies to a club's own history (pure: no I/O but
reading a ground-truth file, ``scoring.read_truth``; ``offline/calibrate.py`` is the tool)."""
