"""Synthetic data laid out exactly like each supported dataset, for tests and ``sample_data/``.

Every writer takes an output folder and small sizes, so the whole sample set stays a few MB.
"""
