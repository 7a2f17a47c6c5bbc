"""The errors dagh raises for bad input and missing dependencies.

Every error a user can cause is a :class:`DaghError`; the CLI prints its
message and exits with code 2, without a traceback. Messages name the
problem and what to do about it.
"""

from __future__ import annotations


class DaghError(Exception):
    """Base class of every error caused by input, files or the environment."""


class DataError(DaghError):
    """A dataset, image or array is missing, empty, corrupt or malformed."""


class CheckpointError(DaghError):
    """A checkpoint is unreadable or does not match what was asked for."""


class ConfigError(DaghError):
    """An option or configuration value is out of range or inconsistent."""


class UnsafeFileError(DaghError):
    """A file tried to do more than hold data (e.g. a pickle that runs code)."""


class DependencyError(DaghError):
    """An optional dependency is missing; the message names the extra to install."""

    def __init__(self, module: str, extra: str, purpose: str):
        self.module = module
        self.extra = extra
        super().__init__(
            f"{purpose} needs the Python module '{module}', which is not installed. "
            f"Install it with: pip install 'dagh[{extra}]'"
        )


class DeviceError(DaghError):
    """A GPU (or other device) was asked for and is not usable here."""
