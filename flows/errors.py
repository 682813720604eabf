"""The one base of chainsignals' errors: every module's own error class derives from it, and the CLI
tells them (the reason, one line) from an unexpected failure (a bug: one line and where the traceback is).
Declared in transforms.errors, which the transforms and schemas can import without importing flows."""

from __future__ import annotations

from transforms.errors import ChainsignalsError

__all__ = ["ChainsignalsError"]
