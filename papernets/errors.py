"""Errors a user can cause. The command line prints their message on one line and exits with status 2.

Anything that is not a `PapernetsError` is a bug in papernets and may show a traceback.
"""


class PapernetsError(Exception):
    """Base of every error a user can cause: a bad flag, a missing or corrupt file, an unknown name."""


class ModelError(PapernetsError):
    """An unknown model name or options a model cannot take."""


class DatasetError(PapernetsError):
    """Data that cannot be found, downloaded, verified or parsed."""


class ConfigError(PapernetsError):
    """A recipe, config file or command-line value that is not valid."""


class CheckpointError(PapernetsError):
    """A checkpoint that is missing, corrupt, refused as unsafe, or does not fit the model."""


class TrainingError(PapernetsError):
    """Training that cannot go on: a non-finite loss, an unwritable run folder, a full disk."""


class WriteError(PapernetsError):
    """A file papernets could not write: a read-only folder, a full disk, a name the file system refuses."""


class RunFolderBusy(PapernetsError):
    """A run folder another papernets process is writing into (`papernets.files.RunLock`)."""
