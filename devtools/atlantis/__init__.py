"""A local double of Atlantis's API (server.py), answering from fixtures transcribed from Atlantis's source (answers/,
fixtures.py); it plans and applies with devtools.terraform_sim, whose provider may apply into vcsim
(devtools.vsphere_provider)."""

from devtools.atlantis.server import DEFAULT_SECRET, LocalAtlantis, ProjectError, RecordedRequest

__all__ = ["DEFAULT_SECRET", "LocalAtlantis", "ProjectError", "RecordedRequest"]
