"""The package version, in its own module so that everything can import it without cycles."""

__version__ = "0.2.0"
