"""A local double of Atlantis's API (server.py), fed by answers transcribed from Atlantis's source (answers/,
fixtures.py), planning as Terraform would (terraform.py) and applying into vcsim (vcenter.py)."""

from devtools.atlantis.server import DEFAULT_SECRET, LocalAtlantis, ProjectError, RecordedRequest

__all__ = ["DEFAULT_SECRET", "LocalAtlantis", "ProjectError", "RecordedRequest"]
