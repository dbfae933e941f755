"""The version of the tracing-api distribution."""

__version__ = "0.1.0"
