"""Torch building blocks shared by the learning methods."""
