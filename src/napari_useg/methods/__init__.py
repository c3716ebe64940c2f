"""Segmentation methods, one module each.

Every module registers one :class:`~napari_useg.registry.Method` when imported.
"""
