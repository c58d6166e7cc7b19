"""Errors a user can act on. The CLI prints their message, never a traceback."""


class GanreproError(Exception):
    """Base class: the message is one sentence naming the file or key and what is allowed."""


class ConfigError(GanreproError):
    """A config file or key is wrong."""


class DataError(GanreproError):
    """A dataset source cannot be prepared (fatal bad input)."""


class DownloadError(DataError):
    """A download failed, was cut off for good, or did not match its checksum."""


class MetricsError(GanreproError):
    """A snapshot cannot be measured: feature extractor missing or wrong, bad options."""
