"""The one exception type kws raises for bad models, files and inputs a user can cause."""


class KwsError(ValueError):
    """A model file, data folder or argument kws cannot use; the message says what to do."""
