"""Errors that archgym reports to users as one clear line (the CLI turns them into exit code 2)."""

from __future__ import annotations


class ArchGymError(Exception):
    """Base class for every error archgym raises on purpose; its message is meant for the user."""


class InvalidDesignError(ArchGymError, ValueError):
    """A design does not belong to its DesignSpace; the message names the parameter, value and what is allowed."""


class ConfigError(ArchGymError, ValueError):
    """Bad user input outside a design: unknown env or searcher, bad argument, bad budget."""


class LogError(ArchGymError):
    """A trial log that cannot be used: corrupt, foreign, or from an incompatible run."""
