"""Git delivery against a real local bare repository: branch, commit as the requester, push, merge."""

import re
import stat
import tempfile
import threading
from pathlib import Path

import pytest

from provisioning import gitops
from provisioning.terraform.render import render
from tests.support.git_repos import git, push_branch
from tests.support.specs import dhcp_spec


def files_for(vm_name="web01", **changes):
    return render(dhcp_spec(vm_name=vm_name, **changes))


def push(vm_name="web01", request_id=7, files=None, **changes):
    return gitops.push_request(
        branch=gitops.request_branch(request_id, vm_name),
        directory=gitops.request_directory("Zürich / prod", "datacenter-3", vm_name),
        files=files if files is not None else files_for(vm_name, **changes),
        author_name="Alice Example",
        author_email="alice@example.com",
        message=f"vmprov: request #{request_id} {vm_name}",
    )


def show(bare, ref, path):
    return git("--git-dir", str(bare), "show", f"{ref}:{path}")


def test_names_become_path_safe():
    assert gitops.request_directory("Zürich / prod", "datacenter-3", "web01") == "vms/Zurich-prod/web01"
    assert gitops.request_directory("../..", "datacenter-3", "web01") == "vms/datacenter-3/web01"
    assert gitops.request_branch(12, "web01") == "vmprov/12-web01"


def test_a_request_is_pushed_on_its_own_branch_authored_by_the_requester(gitops_remote):
    result = push()

    assert result.pushed is True
    assert result.branch == "vmprov/7-web01"
    assert result.directory == "vms/Zurich-prod/web01"
    assert git("--git-dir", str(gitops_remote), "rev-parse", "refs/heads/vmprov/7-web01") == result.commit
    assert git("--git-dir", str(gitops_remote), "log", "-1", "--format=%an <%ae>|%cn <%ce>|%s", result.commit) == (
        "Alice Example <alice@example.com>|vmprov <vmprov@localhost>|vmprov: request #7 web01"
    )
    tree = git("--git-dir", str(gitops_remote), "ls-tree", "-r", "--name-only", result.commit)
    assert set(tree.splitlines()) >= {
        "README.md",
        "vms/Zurich-prod/web01/providers.tf",
        "vms/Zurich-prod/web01/variables.tf",
        "vms/Zurich-prod/web01/machine.tf",
        "vms/Zurich-prod/web01/terraform.tfvars",
    }
    assert "vm_name" in show(gitops_remote, result.commit, "vms/Zurich-prod/web01/terraform.tfvars")
    assert not (gitops_remote / "atlantis.yaml").exists()
    assert "atlantis.yaml" not in tree, "Atlantis gets the directory through Paths, no per-request entry"
    # The base branch does not change until the VM is applied.
    assert "vms/" not in git("--git-dir", str(gitops_remote), "ls-tree", "-r", "--name-only", "main")


def test_rendered_files_are_pushed_exactly_as_rendered(gitops_remote):
    files = files_for()
    result = push(files=files)
    tree = git("--git-dir", str(gitops_remote), "ls-tree", "-r", "--name-only", result.commit, "vms/Zurich-prod/web01")
    assert sorted(tree.splitlines()) == sorted(f"vms/Zurich-prod/web01/{name}" for name in files)
    for name, content in files.items():
        assert show(gitops_remote, result.commit, f"vms/Zurich-prod/web01/{name}") == content.strip()


def test_an_incomplete_file_set_fails_loudly_and_pushes_nothing(gitops_remote):
    """Rendered files are complete by construction: the push reports a gap instead of patching it."""
    files = files_for()
    del files["variables.tf"]
    with pytest.raises(gitops.GitError) as raised:
        push(files=files)
    message = str(raised.value)
    assert "refusing to push vms/Zurich-prod/web01" in message
    assert 'declaration of variable "vm_name"' in message
    assert "would write variables.tf" in message
    assert gitops.branch_head("vmprov/7-web01") is None, "nothing was pushed"


def test_a_rendered_file_set_without_a_backend_fails_loudly(gitops_remote):
    files = files_for()
    files["providers.tf"] = re.sub(r"\n\n  # One state per VM.*?\n  }\n", "\n", files["providers.tf"], flags=re.S)
    with pytest.raises(gitops.GitError, match=r"missing backend block; would write backend\.tf"):
        push(files=files)
    assert gitops.branch_head("vmprov/7-web01") is None


def test_pushing_the_same_configuration_again_changes_nothing(gitops_remote):
    first = push()
    again = push()
    assert again.pushed is False
    assert again.commit == first.commit
    changed = push(num_cpus=4)
    assert changed.pushed is True and changed.commit != first.commit
    assert git("--git-dir", str(gitops_remote), "rev-list", "--count", "vmprov/7-web01") == "3"  # seed + 2


def test_concurrent_jobs_use_their_own_working_copies(gitops_remote):
    results, errors = {}, []

    def job(n):
        try:
            results[n] = push(vm_name=f"web{n:02d}", request_id=n)
        except Exception as error:  # collected for the assertion below
            errors.append(error)

    threads = [threading.Thread(target=job, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    heads = git("--git-dir", str(gitops_remote), "for-each-ref", "--format=%(refname:short)", "refs/heads/vmprov")
    assert sorted(heads.splitlines()) == [f"vmprov/{n}-web{n:02d}" for n in range(6)]


def test_after_apply_the_branch_is_merged_into_main_and_deleted(gitops_remote):
    pushed = push()
    result = gitops.merge_and_delete(pushed.branch, "vmprov: web01 is applied")
    assert result.merged is True
    assert "machine.tf" in git("--git-dir", str(gitops_remote), "ls-tree", "-r", "--name-only", "main")
    assert gitops.branch_head(pushed.branch) is None


def reject_pushes_to(bare, ref):
    hook = bare / "hooks" / "pre-receive"
    hook.write_text(
        "#!/bin/sh\nwhile read old new ref; do\n"
        f'  if [ "$ref" = "{ref}" ]; then echo "protected branch hook declined" >&2; exit 1; fi\n'
        "done\n"
    )
    hook.chmod(hook.stat().st_mode | stat.S_IEXEC)


def test_a_protected_base_branch_leaves_the_branch_and_says_so(gitops_remote):
    pushed = push()
    reject_pushes_to(gitops_remote, "refs/heads/main")
    result = gitops.merge_and_delete(pushed.branch, "vmprov: web01 is applied")
    assert result.merged is False
    assert "left for a person to merge" in result.message
    assert "protected branch hook declined" in result.message
    assert gitops.branch_head(pushed.branch) == pushed.commit


def test_a_rejected_push_is_a_clear_error(gitops_remote):
    reject_pushes_to(gitops_remote, "refs/heads/vmprov/7-web01")
    with pytest.raises(gitops.GitError, match=r"git push failed: .*protected branch hook declined"):
        push()


def test_a_repository_url_with_a_password_is_refused(settings):
    settings.VMPROV_GITOPS_REPO = "https://bot:s3cret-token@git.example.com/infra/vms.git"
    with pytest.raises(gitops.GitError) as raised:
        push()
    assert "s3cret-token" not in str(raised.value)
    assert "VMPROV_GIT_PASSWORD" in str(raised.value)


def test_credentials_never_show_in_git_errors(settings, tmp_path):
    settings.VMPROV_GITOPS_REPO = str(tmp_path / "missing.git")
    settings.VMPROV_GIT_USERNAME, settings.VMPROV_GIT_PASSWORD = "bot", "tok-123-secret"
    settings.VMPROV_GIT_WORKDIR = str(tmp_path)
    with pytest.raises(gitops.GitError) as raised:
        push()
    assert "tok-123-secret" not in str(raised.value)
    assert list(tmp_path.glob("vmprov-git-*")) == [], "working copies (and the askpass helper) are removed"


def test_a_missing_base_branch_is_reported(gitops_remote, settings):
    settings.VMPROV_GITOPS_BASE_BRANCH = "production"
    with pytest.raises(gitops.GitError, match="has no branch 'production'"):
        push()


def test_the_askpass_helper_answers_from_the_environment_only(tmp_path):
    import subprocess

    script = tmp_path / "askpass.sh"
    script.write_text(gitops.ASKPASS_SCRIPT)
    script.chmod(0o700)
    env = {"VMPROV_GIT_USERNAME": "bot", "VMPROV_GIT_PASSWORD": "tok-xyz", "PATH": "/usr/bin:/bin"}
    ask = lambda prompt: subprocess.run([str(script), prompt], env=env, capture_output=True, text=True).stdout  # noqa: E731
    assert ask("Username for 'https://git.example.com': ") == "bot\n"
    assert ask("Password for 'https://bot@git.example.com': ") == "tok-xyz\n"
    assert "tok-xyz" not in script.read_text()


@pytest.mark.parametrize(
    "link",
    [
        "vms/Zurich-prod/web01/terraform.tfvars",  # a linked values file
        "vms/Zurich-prod",  # a linked datacenter directory
        "vms/Zurich-prod/web01/extra",  # a link anywhere in the request's directory
    ],
)
def test_a_symlink_on_the_request_path_is_refused_and_nothing_is_written_outside(gitops_remote, tmp_path, link):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "terraform.tfvars").write_text("precious\n")
    with tempfile.TemporaryDirectory() as work:
        git("clone", "--quiet", "--branch", "main", str(gitops_remote), work)
        git("checkout", "--quiet", "-b", "vmprov/7-web01", cwd=work)
        target = Path(work) / link
        target.parent.mkdir(parents=True, exist_ok=True)
        points_to = outside / "terraform.tfvars" if link.endswith("tfvars") else outside
        target.symlink_to(points_to)
        git("add", "--all", cwd=work)
        git("commit", "--quiet", "-m", "a link", cwd=work)
        git("push", "--quiet", "origin", "HEAD:refs/heads/vmprov/7-web01", cwd=work)
    before = git("--git-dir", str(gitops_remote), "rev-parse", "vmprov/7-web01")

    with pytest.raises(gitops.GitError, match="is a symbolic link in the repository"):
        push()

    assert sorted(path.name for path in outside.iterdir()) == ["terraform.tfvars"]
    assert (outside / "terraform.tfvars").read_text() == "precious\n"
    assert git("--git-dir", str(gitops_remote), "rev-parse", "vmprov/7-web01") == before, "nothing pushed"


def test_the_directory_holds_exactly_what_vmprov_rendered(gitops_remote):
    push_branch(
        gitops_remote,
        "vmprov/7-web01",
        {"vms/Zurich-prod/web01/evil.tf": 'resource "null_resource" "x" {}\n', "elsewhere.txt": "kept\n"},
    )
    result = push()
    tree = git("--git-dir", str(gitops_remote), "ls-tree", "-r", "--name-only", result.commit).splitlines()
    assert "vms/Zurich-prod/web01/evil.tf" not in tree
    assert "elsewhere.txt" in tree, "only the request's own directory is vmprov's"
    assert sorted(p.rsplit("/", 1)[1] for p in tree if p.startswith("vms/")) == sorted(files_for())


# --- A delivered VM's directory: read from the base branch, removed after its decommission -------------------------


def test_a_delivered_vms_directory_is_read_as_the_base_branch_holds_it(gitops_remote):
    pushed = push()
    gitops.merge_and_delete(pushed.branch, "merged")
    assert gitops.base_directory_files(pushed.directory) == files_for()
    assert gitops.base_directory_files("vms/Zurich-prod/nothere") is None


def test_a_directory_holding_more_than_files_is_not_read(gitops_remote):
    files = {**{f"vms/DC0/web01/{name}": content for name, content in files_for().items()}, "vms/DC0/web01/x/y": ""}
    push_branch(gitops_remote, "hand", files)
    git("--git-dir", str(gitops_remote), "update-ref", "refs/heads/main", "refs/heads/hand")
    with pytest.raises(gitops.GitError, match="vms/DC0/web01/x on main is not a file"):
        gitops.base_directory_files("vms/DC0/web01")


def test_a_decommissioned_vms_directory_is_removed_by_a_commit_of_its_own(gitops_remote):
    pushed = push()
    gitops.merge_and_delete(pushed.branch, "merged")

    removal = gitops.push_removal(branch=pushed.branch, directory=pushed.directory, message="remove web01")

    assert removal.pushed is True
    changed = git("--git-dir", str(gitops_remote), "show", "--name-status", "--format=%s|%an", removal.commit)
    assert changed.splitlines()[0] == "remove web01|vmprov"
    assert all(line.startswith("D\t") for line in changed.splitlines()[1:] if line)
    merge = gitops.merge_and_delete(pushed.branch, "removed")
    assert merge.merged and gitops.base_directory_files(pushed.directory) is None
    again = gitops.push_removal(branch=pushed.branch, directory=pushed.directory, message="remove web01")
    assert again.pushed is False and gitops.branch_head(pushed.branch) is None, "nothing left to remove"
