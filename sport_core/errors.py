"""Errors a user can act on. The CLI prints them as one line (no traceback unless ``--debug``)."""


class SportError(Exception):
    """Base class of every error that is the user's input, not a bug: printed as one line by the CLI."""


class RecipeError(SportError):
    """A recipe is invalid; the message starts with the key path (``stages[0].config.total_steps: ...``)."""


class PluginError(SportError):
    """A plugin failed to load, or two plugins register the same component name."""


class ArtifactError(SportError):
    """A file is missing, corrupt, foreign or altered; the message names the file and the stage that makes it."""


class RegistryError(SportError):
    """A component that no loaded plugin registers was asked for."""


class DiskFullError(ArtifactError):
    """A write failed because the disk (or the user's quota) is full; the message names the file. What was
    written before it is intact (writes are atomic or append-only), so a resumed run continues once there is
    space again."""


class WorkerDiedError(SportError):
    """An executor's task kept killing the worker process that ran it (every retry used up); the message names
    the task. Executors raise it instead of hanging or passing on their pool's own exception (see
    :class:`sport_core.protocols.Executor`)."""
