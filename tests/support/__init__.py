"""Helpers the tests share: worlds, fixtures data, Git repositories, vCenter admin."""
