from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _register_schedule(sender, **kwargs) -> None:
    from inventory.tasks import register_schedule

    register_schedule()


class InventoryConfig(AppConfig):
    name = "inventory"
    verbose_name = "vSphere inventory"

    def ready(self) -> None:
        from inventory import checks  # noqa: F401  (registers the vSphere settings check)

        # Every deploy migrates: the periodic refresh is (re)registered then, idempotently.
        post_migrate.connect(_register_schedule, sender=self)
