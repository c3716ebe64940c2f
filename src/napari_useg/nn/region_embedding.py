"""Region-wise embedding (RWE) of InMARS: one fixed-length vector per superpixel.

Every variant is computed for all superpixels of a batch at once with scatter
operations on the flattened pixels (no loop over superpixels). Superpixel ids
are unique over the batch (``0..S-1``); pixels with id ``-1`` are ignored.

* ``max`` / ``mean``: max or mean of the backbone maps over each superpixel;
  the result is used directly as the cluster logits (no FC layer).
* ``spp``: spatial pyramid pooling over each superpixel's bounding box: for
  each level ``l`` the box is cut into ``l x l`` bins and every bin is
  max-pooled; pixels of the box that are not in the superpixel count as zeros
  (the paper's zero mask). The pyramid (levels 1, 2, 4, ...) goes through FC layers.
* ``interp``: the bounding box resampled (nearest neighbour) onto an ``s x s``
  grid, other superpixels' pixels zeroed, flattened, FC layers.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["RegionEmbedding", "bounding_boxes", "RWE_MODES"]

RWE_MODES = ("spp", "max", "mean", "interp")


def bounding_boxes(sp: torch.Tensor, n_sp: int) -> tuple[torch.Tensor, ...]:
    """Per-superpixel ``(batch, y0, y1, x0, x1, count)`` of an ``(N, H, W)`` id map (inclusive)."""
    n, h, w = sp.shape
    ids = sp.reshape(-1)
    ok = ids >= 0
    ids = ids[ok]
    b = torch.arange(n, device=sp.device).view(n, 1, 1).expand(n, h, w).reshape(-1)[ok]
    y = torch.arange(h, device=sp.device).view(1, h, 1).expand(n, h, w).reshape(-1)[ok]
    x = torch.arange(w, device=sp.device).view(1, 1, w).expand(n, h, w).reshape(-1)[ok]
    big = torch.iinfo(torch.int64).max

    def red(v: torch.Tensor, how: str, init: int) -> torch.Tensor:
        out = torch.full((n_sp,), init, dtype=torch.int64, device=sp.device)
        return out.scatter_reduce(0, ids, v, reduce=how, include_self=True)

    count = torch.bincount(ids, minlength=n_sp)
    bb = red(b, "amax", 0)
    y0, y1 = red(y, "amin", big), red(y, "amax", -1)
    x0, x1 = red(x, "amin", big), red(x, "amax", -1)
    empty = count == 0
    y0 = torch.where(empty, torch.zeros_like(y0), y0)
    x0 = torch.where(empty, torch.zeros_like(x0), x0)
    y1 = torch.where(empty, torch.zeros_like(y1), y1)
    x1 = torch.where(empty, torch.zeros_like(x1), x1)
    return bb, y0, y1, x0, x1, count


class RegionEmbedding(nn.Module):
    """Cluster logits per superpixel from backbone maps.

    Parameters
    ----------
    mode : {"spp", "max", "mean", "interp"}
        Embedding variant (see the module docstring).
    in_channels : int
        Channels of the backbone maps.
    n_clusters : int
        Output logits per superpixel (for ``max``/``mean`` it must equal ``in_channels``).
    spp_levels : int
        Pyramid levels ``1, 2, 4, ..., 2**(spp_levels-1)``.
    interp_size : int
        Side of the resampling grid of ``interp``.
    hidden : int
        Width of the hidden FC layer (``spp``/``interp``).
    """

    def __init__(self, mode: str, in_channels: int, n_clusters: int, spp_levels: int = 3,
                 interp_size: int = 4, hidden: int = 128) -> None:
        super().__init__()
        if mode not in RWE_MODES:
            raise ValueError(f"rwe must be one of {RWE_MODES}, got {mode!r}")
        self.mode = mode
        self.levels = [2 ** i for i in range(spp_levels)]
        self.interp_size = interp_size
        if mode in ("max", "mean"):
            if in_channels != n_clusters:
                raise ValueError("max/mean pooling needs as many backbone maps as clusters")
            self.fc = None
        else:
            cells = sum(v * v for v in self.levels) if mode == "spp" else interp_size ** 2
            self.fc = nn.Sequential(nn.Linear(in_channels * cells, hidden), nn.ReLU(inplace=True),
                                    nn.Linear(hidden, n_clusters))

    def forward(self, feat: torch.Tensor, sp: torch.Tensor,
                n_sp: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits ``(S, k)`` and pixel counts ``(S,)`` of the ``n_sp`` superpixels of ``sp``."""
        n, d, h, w = feat.shape
        flat = feat.permute(0, 2, 3, 1).reshape(-1, d)
        ids = sp.reshape(-1)
        ok = ids >= 0
        vals, idx = flat[ok], ids[ok]
        count = torch.bincount(idx, minlength=n_sp)
        if self.mode == "mean":
            s = torch.zeros(n_sp, d, dtype=feat.dtype, device=feat.device).index_add(0, idx, vals)
            return s / count.clamp_min(1)[:, None].to(feat.dtype), count
        if self.mode == "max":
            out = torch.zeros(n_sp, d, dtype=feat.dtype, device=feat.device)
            out = out.scatter_reduce(0, idx[:, None].expand(-1, d), vals, reduce="amax",
                                     include_self=False)
            return out, count
        bb, y0, y1, x0, x1, _ = bounding_boxes(sp, n_sp)
        if self.mode == "spp":
            y = torch.arange(h, device=feat.device).view(1, h, 1).expand(n, h, w).reshape(-1)[ok]
            x = torch.arange(w, device=feat.device).view(1, 1, w).expand(n, h, w).reshape(-1)[ok]
            hh = (y1 - y0 + 1)[idx]
            ww = (x1 - x0 + 1)[idx]
            ry = y - y0[idx]
            rx = x - x0[idx]
            parts = []
            for lv in self.levels:  # loop over pyramid levels only
                by = torch.div(ry * lv, hh, rounding_mode="floor")
                bx = torch.div(rx * lv, ww, rounding_mode="floor")
                cell = idx * (lv * lv) + by * lv + bx
                out = torch.zeros(n_sp * lv * lv, d, dtype=feat.dtype, device=feat.device)
                out = out.scatter_reduce(0, cell[:, None].expand(-1, d), vals, reduce="amax",
                                         include_self=True)
                parts.append(out.view(n_sp, lv * lv * d))
            emb = torch.cat(parts, dim=1)
        else:  # interp
            g = self.interp_size
            t = (torch.arange(g, device=feat.device, dtype=torch.float64) + 0.5) / g
            ys = y0[:, None].double() + t[None] * (y1 - y0 + 1)[:, None].double() - 0.5
            xs = x0[:, None].double() + t[None] * (x1 - x0 + 1)[:, None].double() - 0.5
            ys = ys.round().long().clamp(0, h - 1)  # S, g
            xs = xs.round().long().clamp(0, w - 1)
            yy = ys[:, :, None].expand(-1, g, g)
            xx = xs[:, None, :].expand(-1, g, g)
            b = bb[:, None, None].expand(-1, g, g)
            sample = feat.permute(0, 2, 3, 1)[b, yy, xx]  # S, g, g, d
            own = sp[b, yy, xx] == torch.arange(n_sp, device=feat.device)[:, None, None]
            emb = (sample * own[..., None].to(feat.dtype)).reshape(n_sp, g * g * d)
        return self.fc(emb), count
