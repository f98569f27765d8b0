"""The project's own error types: a user mistake becomes one clear line, never a traceback."""


class PipelineError(Exception):
    """A problem the user can fix (bad input, missing or stale artifact). Scripts print it as one line."""


class AudioError(PipelineError):
    """An audio file cannot be used (not audio, empty, damaged, non-finite samples, ...)."""


class ArtifactError(PipelineError):
    """A saved dataset or model is missing, damaged, or was made by a different earlier step."""
