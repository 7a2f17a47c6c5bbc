"""Evaluation: numpy retrieval metrics (torch-free) and encoding helpers."""
