"""Segmentation methods, one module each; every module registers one :class:`~napari_useg.registry.Method`."""
