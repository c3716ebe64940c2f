"""Reading images and writing results (atomic, never overwriting silently)."""

from .atomic import atomic_write
from .images import read_image, write_labels, write_overlay

__all__ = ["atomic_write", "read_image", "write_labels", "write_overlay"]
