"""Image inpainting with partial convolutions."""

__version__ = "0.1.0"
