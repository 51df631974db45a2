"""Datasets, view sampling and the letterbox transform shared by training, evaluation and inference."""
