"""Tests of the development tools (the Atlantis double, its vCenter effects)."""
