"""The tests' bridge between a started vcsim and the Atlantis double: the double's apply clones in that vcsim.

The vCenter effects themselves (clone, resize, destroy) are devtools.atlantis.vcenter's.
"""

from devtools.atlantis.vcenter import VCenterApply
from devtools.vcsim import Vcsim


def apply_in(vcsim: Vcsim) -> VCenterApply:
    """The double's `on_apply` for this vcsim: Terraform's apply output, the VM cloned in vcsim."""
    return VCenterApply(vcsim.url)
