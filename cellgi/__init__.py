"""cellgi: genetic interaction prediction with graph neural networks over gene networks."""

__version__ = "0.1.0"

__all__ = ["__version__"]
