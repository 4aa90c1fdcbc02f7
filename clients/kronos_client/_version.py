"""The one version number of every part: kronos-serve and kronos-client both read it (their
pyproject.toml files declare ``version = {attr = "kronos_client._version.__version__"}``)."""

__version__ = "0.1.0"
