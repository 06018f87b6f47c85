# The approvers group exists from the first migrate on (provisioning.roles.APPROVERS_GROUP): an administrator only
# adds people to it. "VM request" is the model's name in the admin.

from django.db import migrations

APPROVERS_GROUP = "approvers"  # provisioning.roles.APPROVERS_GROUP at the time of this migration


def create_approvers_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.get_or_create(name=APPROVERS_GROUP)


class Migration(migrations.Migration):

    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("provisioning", "0006_branch_changed"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="vmrequest",
            options={"ordering": ["-created_at", "-id"], "verbose_name": "VM request"},
        ),
        # Kept on the way back: the group may have members by then.
        migrations.RunPython(create_approvers_group, migrations.RunPython.noop),
    ]
