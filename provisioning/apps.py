from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _register_reaper(sender, **kwargs) -> None:
    from provisioning.delivery.reaper import register_reaper

    register_reaper()


class ProvisioningConfig(AppConfig):
    name = "provisioning"
    verbose_name = "VM requests"

    def ready(self) -> None:
        from provisioning import checks  # noqa: F401  (registers vmprov's system checks)

        # Every deploy migrates: the job that requeues lost delivery steps is (re)registered then.
        post_migrate.connect(_register_reaper, sender=self)
