"""Offline tools over a club's history files: replay, evaluate and calibrate. They run the live
detector's pure core, never the service around it."""
