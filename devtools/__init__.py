"""Development tools that stand in for vmprov's outside world: vCenter (vcsim), Redis (a throwaway redis-server)
and Atlantis (a local double of its API), plus the demo that wires them together for `scripts/run`.

None of it is product code, and none of it imports the product: the tests, the benchmark and the demo use it.
"""


class ServiceMissing(RuntimeError):
    """A tool this package starts is not installed (the message says what to install)."""
