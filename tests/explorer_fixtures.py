"""A stand-in for the live explorer, shared by the explorer tests and the script tests that pass ``--explore``."""

from __future__ import annotations

from vaelab.explore import explorer


class Opened:
    """Stands in for :func:`vaelab.explore.explorer.open_explorer`: records what a script hands it."""

    def __init__(self, monkeypatch):
        monkeypatch.setenv("DISPLAY", ":0")  # --explore is accepted; no window opens
        monkeypatch.setattr(explorer, "open_explorer", self)
        self.calls = []

    def __call__(self, decode, latent_dim, scatter=None, morph=None, title="", seed=0, classes=None):
        self.calls.append(dict(decode=decode, latent_dim=latent_dim, scatter=scatter, morph=morph, title=title,
                               classes=classes))
