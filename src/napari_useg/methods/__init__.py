"""Segmentation methods, one module each.

Every module registers one :class:`~napari_useg.core.registry.Method` when imported.
"""
