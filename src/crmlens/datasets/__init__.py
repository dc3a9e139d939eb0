"""Bundled sample data and the synthetic data generator."""

from crmlens.datasets.sample import SAMPLE_ROWS, sample_path

__all__ = ["SAMPLE_ROWS", "generate_dataset", "sample_path"]


def __getattr__(name: str):
    if name == "generate_dataset":
        from crmlens.datasets.generator import generate_dataset

        return generate_dataset
    raise AttributeError(name)
