"""provisioning.atlantis against the local Atlantis (devtools/atlantis): settings checked once, payloads that
can never be "missing fields", answers read as the contract says, the token kept secret, unanswered applies, one call
per repository."""

import copy
import dataclasses
import itertools
import logging
import re
import subprocess
import threading
import time
from datetime import UTC, datetime

import pytest
from django.core.cache import cache

from devtools.atlantis import LocalAtlantis
from devtools.atlantis.server import parse_request
from devtools.ports import free_port
from provisioning import atlantis
from provisioning.atlantis import AtlantisConfigError, Outcome, current_config, lock_key, plan_counts, settings_problems
from provisioning.atlantis.payload import branch_name_problem, build_payload, encode
from provisioning.atlantis.transport import WRITE_TIMEOUT
from provisioning.terraform.render import render
from provisioning.terraform.spec import MachineSpec, TemplateDisk, TemplateSpec
from tests.support.atlantis_vcsim import provider_in
from tests.support.git_repos import directory_files, make_bare_repo, push_branch
from tests.support.specs import dhcp_spec, static_spec
from tests.support.vcenter_admin import admin_session, find, vim

TOKEN = "tok-9f27c1d4e8b3-do-not-leak"
REPO = "acme/vms"
BRANCH = "vmprov/1-web01"
DIRECTORY = "vms/DC0/web01"
NO_BACKEND = "vms/DC0/no-backend"

# Every kind of request vmprov makes: branches `vmprov/<id>-<vm>`, directories `vms/<datacenter>/<vm>`, with
# datacenter segments as awkward as a valid path gets, DHCP and static alike.
REQUESTS = [
    ("vmprov/2-web01", "vms/DC0/web01", "dhcp"),
    ("vmprov/3-db-01", "vms/Zurich-prod/db-01", "static"),
    ("vmprov/4-app.01", "vms/DC 0 (Zürich)/app.01", "dhcp"),
    ("vmprov/5-x", "vms/数据中心/x", "static"),
    ("vmprov/6-vm_1", 'vms/O\'Brien "east" & <west>/vm_1', "dhcp"),
    ("vmprov/70000-a-b_c.d", "vms/dc-1_eu.west/a-b_c.d", "static"),
]


def spec_for(vm_name: str, kind: str):
    return static_spec(vm_name=vm_name) if kind == "static" else dhcp_spec(vm_name=vm_name)


@pytest.fixture(scope="module")
def bare_repo(tmp_path_factory):
    bare = make_bare_repo(tmp_path_factory.mktemp("atlantis-client") / "vms.git")
    files = directory_files(DIRECTORY, render(static_spec(vm_name="web01")))
    broken = render(dhcp_spec(vm_name="nb"))
    broken["providers.tf"] = re.sub(r"\n  # One state per VM.*?\n  }\n", "\n", broken["providers.tf"], flags=re.DOTALL)
    files |= directory_files(NO_BACKEND, broken)
    push_branch(bare, BRANCH, files)
    for branch, directory, kind in REQUESTS:
        push_branch(bare, branch, directory_files(directory, render(spec_for(directory.rsplit("/", 1)[-1], kind))))
    return bare


@pytest.fixture
def server(bare_repo):
    with LocalAtlantis(api_secret=TOKEN, repo_clone_url={REPO: bare_repo}) as local:
        yield local


def point_at(settings, local: LocalAtlantis) -> None:
    settings.ATLANTIS_URL = local.url
    settings.ATLANTIS_TOKEN = TOKEN
    settings.ATLANTIS_REPO = REPO
    settings.ATLANTIS_VCS_TYPE = "Github"
    settings.ATLANTIS_PLAN_TIMEOUT = 10
    settings.ATLANTIS_APPLY_TIMEOUT = 10
    settings.ATLANTIS_CONNECT_TIMEOUT = 2
    settings.ATLANTIS_LOCK_WAIT = 5
    settings.ATLANTIS_LOCK_MARGIN = 1


@pytest.fixture
def configured(settings, server):
    point_at(settings, server)
    return server


def missing_fields_answers(local: LocalAtlantis) -> list:
    return [record for record in local.requests if record.status == 400 and b"is missing fields" in record.response]


# --- The payload ------------------------------------------------------------------------------------------------


def test_payload_is_exactly_the_contracts(configured):
    payload = build_payload(current_config(), "vmprov/12-web01", "vms/DC0/web01")
    assert payload == {
        "Repository": REPO,
        "Ref": "vmprov/12-web01",
        "Type": "Github",
        "Paths": [{"Directory": "vms/DC0/web01", "Workspace": "default"}],
    }
    assert list(payload) == ["Repository", "Ref", "Type", "Paths"]  # no PR: PR 0 up to v0.44, non-PR mode after


def test_in_commit_mode_the_ref_is_vmprovs_commit_on_its_branch(configured, settings):
    """Atlantis v0.46+: `Ref` a commit, `base_branch` (snake_case) the branch it must be reachable from."""
    settings.ATLANTIS_REF_MODE = "commit"
    commit = "0123456789abcdef0123456789abcdef01234567"
    payload = build_payload(current_config(), "vmprov/12-web01", "vms/DC0/web01", commit)
    assert payload["Ref"] == commit and payload["base_branch"] == "vmprov/12-web01"
    with pytest.raises(AtlantisConfigError, match="not a full commit id"):
        build_payload(current_config(), "vmprov/12-web01", "vms/DC0/web01", "main")
    settings.ATLANTIS_REF_MODE = "sha"
    assert any("ATLANTIS_REF_MODE" in problem for problem in settings_problems())


def test_every_request_vmprov_makes_plans_and_applies(configured):
    for branch, directory, _kind in REQUESTS:
        planned = atlantis.plan(branch, directory)
        assert planned.succeeded, planned.message
        assert plan_counts(planned.projects[0].output) == (1, 0, 0)
        applied = atlantis.apply(branch, directory)
        assert applied.succeeded, applied.message
        assert applied.projects[0].directory == directory
    assert missing_fields_answers(configured) == []
    assert [record.status for record in configured.requests] == [200] * 2 * len(REQUESTS)
    for record, (branch, directory, _kind) in zip(configured.requests[::2], REQUESTS, strict=True):
        decoded, error = parse_request(record.body)  # as Atlantis decodes it
        assert error is None
        assert (decoded["Repository"], decoded["Ref"], decoded["Type"], decoded["PR"]) == (REPO, branch, "Github", 0)
        assert decoded["Paths"] == [{"Directory": directory, "Workspace": "default"}]
        assert record.token == "matching"


def git_accepts_branch(name: str) -> bool:
    return subprocess.run(["git", "check-ref-format", "--branch", name], capture_output=True).returncode == 0


INVALID_BRANCHES = [
    "", " ", "a b", "a..b", "-x", "a/", "/a", "a//b", "a.lock", "x/y.lock/z", ".a", "a/.b", "a.", "a@{1}",
    "a~1", "a^", "a:b", "a?", "a*", "a[", "a\\b", "a\nb", "a\tb", "a\x7f", "HEAD",
]  # fmt: skip
VALID_BRANCHES = ["vmprov/12-web01", "feature/ünïcode", "a.b", "a-b_c", "v1.0/x", "a@b", "a{b}", "x/HEAD", "a/b.locks"]


@pytest.mark.parametrize("name", INVALID_BRANCHES)
def test_invalid_branch_names_are_refused_as_git_refuses_them(configured, name):
    assert not git_accepts_branch(name)
    with pytest.raises(AtlantisConfigError, match="not a valid Git branch name"):
        build_payload(current_config(), name, DIRECTORY)
    with pytest.raises(AtlantisConfigError):
        atlantis.plan(name, DIRECTORY)
    assert configured.requests == []


def test_at_sign_alone_is_refused_though_git_reads_it_as_head(configured):
    """`git check-ref-format --branch @` resolves @ to the current branch; `git clone --branch @` has none."""
    with pytest.raises(AtlantisConfigError, match="not a valid Git branch name"):
        build_payload(current_config(), "@", DIRECTORY)


@pytest.mark.parametrize("name", VALID_BRANCHES)
def test_valid_branch_names_are_accepted_as_git_accepts_them(configured, name):
    assert git_accepts_branch(name)
    assert branch_name_problem(name) is None
    assert build_payload(current_config(), name, DIRECTORY)["Ref"] == name


@pytest.mark.parametrize(
    "directory", ["", "/vms/x", "../x", "vms/../x", "vms//x", "vms/x/", "./vms", "vms/./x", "vms\\x", "vms/\x00x", None]
)
def test_invalid_directories_are_refused(configured, directory):
    with pytest.raises(AtlantisConfigError, match="directory"):
        build_payload(current_config(), BRANCH, directory)
    with pytest.raises(AtlantisConfigError):
        atlantis.apply(BRANCH, directory)
    assert configured.requests == []


@pytest.mark.parametrize(
    ("setting", "value", "fragment"),
    [
        ("ATLANTIS_REPO", "", "ATLANTIS_REPO is not set"),
        ("ATLANTIS_REPO", "vms", "ATLANTIS_REPO 'vms' has no '/'"),
        ("ATLANTIS_REPO", "acme//vms", "ATLANTIS_REPO"),
        ("ATLANTIS_REPO", "/vms", "ATLANTIS_REPO"),
        ("ATLANTIS_VCS_TYPE", "", "ATLANTIS_VCS_TYPE is not set"),
        ("ATLANTIS_VCS_TYPE", "github", "must be spelled exactly 'Github'"),
        ("ATLANTIS_VCS_TYPE", "GitHub", "must be spelled exactly 'Github'"),
        ("ATLANTIS_VCS_TYPE", "BitbucketCloud", "does not implement it yet"),
        ("ATLANTIS_URL", "ftp://atlantis", "ATLANTIS_URL must be an http(s) URL"),
        ("ATLANTIS_URL", "http://user:pw@atlantis", "ATLANTIS_URL must not hold credentials"),
        ("ATLANTIS_TOKEN", "", "ATLANTIS_TOKEN is not set"),
        ("ATLANTIS_TOKEN", "tok\nX-Injected: 1", "ATLANTIS_TOKEN holds characters an HTTP header cannot carry"),
        ("ATLANTIS_TOKEN", "tökén-secret", "ATLANTIS_TOKEN holds characters"),
        ("ATLANTIS_TOKEN", " padded-secret ", "ATLANTIS_TOKEN holds characters"),
        ("ATLANTIS_PLAN_TIMEOUT", 0, "ATLANTIS_PLAN_TIMEOUT must be a positive number"),
    ],
)
def test_bad_settings_are_listed_and_fail_before_any_http_call(settings, configured, setting, value, fragment):
    setattr(settings, setting, value)
    [problem] = settings_problems()
    assert fragment in problem
    with pytest.raises(AtlantisConfigError) as raised:
        atlantis.plan(BRANCH, DIRECTORY)
    assert str(raised.value) == problem
    assert configured.requests == []
    assert "pw" not in problem and (setting != "ATLANTIS_TOKEN" or not value or value not in problem)


def test_every_bad_setting_is_listed_at_once(settings, configured):
    settings.ATLANTIS_URL = "atlantis.example.com"
    settings.ATLANTIS_TOKEN = ""
    settings.ATLANTIS_REPO = "vms"
    settings.ATLANTIS_VCS_TYPE = "GitHub"
    settings.ATLANTIS_APPLY_TIMEOUT = "3600"
    settings.ATLANTIS_LOCK_WAIT = True
    problems = settings_problems()
    assert [problem.split(" ", 1)[0] for problem in problems] == [
        "ATLANTIS_URL",
        "ATLANTIS_TOKEN",
        "ATLANTIS_REPO",
        "ATLANTIS_VCS_TYPE",
        "ATLANTIS_APPLY_TIMEOUT",
        "ATLANTIS_LOCK_WAIT",
    ]
    with pytest.raises(AtlantisConfigError) as raised:
        atlantis.apply(BRANCH, DIRECTORY)
    assert str(raised.value) == "; ".join(problems)


def test_no_url_means_atlantis_is_not_configured_which_is_no_problem(settings, configured):
    settings.ATLANTIS_URL = ""
    settings.ATLANTIS_REPO = "vms"  # irrelevant while Atlantis is not configured
    assert settings_problems() == []
    for call in (atlantis.plan, atlantis.apply):
        with pytest.raises(AtlantisConfigError, match=r"ATLANTIS_URL is not set \(e.g. https://atlantis.example.com\)"):
            call(BRANCH, DIRECTORY)
    assert configured.requests == []


def test_the_config_is_read_once_and_again_after_a_setting_changes(settings, configured):
    config = current_config()
    assert current_config() is config
    assert (config.url, config.repo, config.apply_timeout, config.lock_margin) == (configured.url, REPO, 10.0, 1.0)
    assert TOKEN not in repr(config)
    settings.ATLANTIS_APPLY_TIMEOUT = 20
    assert current_config() is not config and current_config().apply_timeout == 20.0
    settings.ATLANTIS_URL = configured.url + "/"
    assert current_config().url == configured.url


def test_no_combination_of_inputs_can_be_missing_fields(settings, configured):
    """Whatever the settings and arguments, the config or build_payload refuses, or the payload is what Atlantis
    decodes whole."""
    repos = ["", "acme/vms", "vms", " acme/vms", None, "group/sub/repo"]
    kinds = ["Github", "Gitlab", "Gitea", "", "github", None]
    branches = ["", "vmprov/1-x", " ", None, "-x", "vmprov/2-ü"]
    directories = ["", "vms/x", None, ".", "vms/a b"]
    accepted = 0
    for repo, kind in itertools.product(repos, kinds):
        settings.ATLANTIS_REPO, settings.ATLANTIS_VCS_TYPE = repo, kind
        for branch, directory in itertools.product(branches, directories):
            try:
                payload = build_payload(current_config(), branch, directory)
            except AtlantisConfigError:
                continue
            accepted += 1
            decoded, error = parse_request(encode(payload))
            assert error is None
            assert decoded["Repository"] and decoded["Ref"] and decoded["Type"], payload
    assert accepted == 2 * 3 * 2 * 3  # the valid values only


# --- Reading answers ------------------------------------------------------------------------------------------


def test_plan_success(configured):
    before = datetime.now(UTC)
    result = atlantis.plan(BRANCH, DIRECTORY)
    assert (result.outcome, result.succeeded, result.http_status, result.command) == (
        Outcome.SUCCEEDED,
        True,
        200,
        "plan",
    )
    [project] = result.projects
    assert (project.directory, project.workspace, project.command, project.failure) == (
        DIRECTORY,
        "default",
        "plan",
        "",
    )
    assert project.output.endswith("Plan: 1 to add, 0 to change, 0 to destroy.\n")
    assert result.output_text() == project.output
    assert result.summary() == "Plan: 1 to add, 0 to change, 0 to destroy."
    assert (
        result.message == f"The plan of {DIRECTORY} on {BRANCH} succeeded: Plan: 1 to add, 0 to change, 0 to destroy."
    )
    assert (result.branch, result.directory) == (BRANCH, DIRECTORY)
    assert before <= result.called_at <= datetime.now(UTC) and result.duration > 0


def test_apply_success(configured):
    result = atlantis.apply(BRANCH, DIRECTORY)
    assert result.succeeded and result.projects[0].command == "apply"
    assert result.summary() == "Apply complete! Resources: 1 added, 0 changed, 0 destroyed."
    assert [request.path for request in configured.requests] == ["/api/apply"]  # Atlantis plans again by itself


@pytest.mark.parametrize("empty", [[], None])
def test_200_without_projects_is_a_failure(configured, empty):
    configured.respond_next(200, {"Error": None, "Failure": "", "ProjectResults": empty, "PlansDeleted": False})
    result = atlantis.plan(BRANCH, DIRECTORY)
    assert (result.outcome, result.http_status) == (Outcome.FAILED, 200)
    assert f"nothing was planned: Atlantis found no project in {DIRECTORY} on {BRANCH}" in result.message


LOG_TIME = re.compile(r"see its log at (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC")


def logged_at(message: str) -> datetime:
    return datetime.strptime(LOG_TIME.search(message).group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)


@pytest.mark.parametrize("command", ["plan", "apply"])
def test_error_without_text_points_at_atlantis_log(configured, command):
    configured.error_next()
    before = datetime.now(UTC).replace(microsecond=0)
    result = getattr(atlantis, command)(BRANCH, DIRECTORY)
    assert (result.outcome, result.http_status) == (Outcome.FAILED, 500)
    assert "no detail from Atlantis; see its log at " in result.message
    assert before <= logged_at(result.message) <= datetime.now(UTC)
    assert result.projects[0].failure.startswith("no detail from Atlantis")


def test_terraform_failure_reads_as_atlantis_shows_it(configured):
    """Atlantis puts Terraform's error in a Go error, serialized as {}: the text is only in Atlantis's log."""
    result = atlantis.plan(BRANCH, NO_BACKEND)
    assert (result.outcome, result.http_status) == (Outcome.FAILED, 500)
    assert "no detail from Atlantis; see its log at" in result.message
    assert "No backend configured" in configured.errors[-1].text


def test_missing_directory(configured):
    result = atlantis.plan(BRANCH, "vms/DC0/gone")
    assert result.outcome is Outcome.FAILED
    assert "the directory vms/DC0/gone does not exist on the branch" in result.message


def test_refused_token(settings, configured):
    settings.ATLANTIS_TOKEN = "wrong-but-also-secret-9431"
    result = atlantis.plan(BRANCH, DIRECTORY)
    assert (result.outcome, result.http_status) == (Outcome.FAILED, 401)
    assert "the token was refused" in result.message and "ATLANTIS_TOKEN" in result.message
    assert "header X-Atlantis-Token did not match expected secret" in result.message
    assert "wrong-but-also-secret-9431" not in repr(result)


def test_repository_not_allowlisted(settings, bare_repo):
    with LocalAtlantis(api_secret=TOKEN, repo_clone_url={REPO: bare_repo}, repo_allowlist=["other/*"]) as local:
        point_at(settings, local)
        result = atlantis.plan(BRANCH, DIRECTORY)
    assert (result.outcome, result.http_status) == (Outcome.FAILED, 403)
    assert "the repository is not allowlisted" in result.message and "repo not allowlisted" in result.message


@pytest.mark.parametrize(("version", "status"), [("0.44", 400), ("0.45", 503)])
def test_api_disabled(settings, bare_repo, version, status):
    with LocalAtlantis(api_secret=None, repo_clone_url={REPO: bare_repo}, version=version) as local:
        point_at(settings, local)
        result = atlantis.apply(BRANCH, DIRECTORY)
    assert (result.outcome, result.http_status) == (Outcome.FAILED, status)
    assert "the Atlantis server has no API secret configured" in result.message


def test_500_error_body_gives_its_text(configured):
    result = atlantis.plan("vmprov/404-nothing", DIRECTORY)
    assert (result.outcome, result.http_status) == (Outcome.FAILED, 500)
    assert "Remote branch vmprov/404-nothing not found in upstream origin" in result.message


def test_project_failure_text_is_surfaced(configured):
    failure = "This project is currently locked by an unapplied plan from pull #3. To continue, delete the lock."
    project = {"Error": None, "Failure": failure, "PlanSuccess": None, "Command": 1, "RepoRelDir": DIRECTORY}
    configured.respond_next(500, {"Error": None, "Failure": "", "ProjectResults": [project], "PlansDeleted": False})
    result = atlantis.plan(BRANCH, DIRECTORY)
    assert result.outcome is Outcome.FAILED and failure in result.message and result.projects[0].failure == failure


def test_non_json_answer(configured):
    configured.respond_next(502, "<html><body>Bad Gateway</body></html>")
    result = atlantis.plan(BRANCH, DIRECTORY)
    assert (result.outcome, result.http_status) == (Outcome.FAILED, 502)
    assert "HTTP 502" in result.message and "Bad Gateway" in result.message


def test_older_answer_shapes(configured):
    """v0.19 … v0.23 had PolicyCheckSuccess, up to v0.25 PlanSuccess.HasDiverged; fields may be missing."""
    output = "Plan: 1 to add, 0 to change, 0 to destroy."
    project = {
        "Error": None,
        "Failure": "",
        "PlanSuccess": {"TerraformOutput": output, "LockURL": "", "RePlanCmd": "", "ApplyCmd": "", "HasDiverged": True},
        "PolicyCheckSuccess": None,
        "ApplySuccess": "",
        "VersionSuccess": "",
        "Command": 1,
        "RepoRelDir": DIRECTORY,
        "Workspace": "default",
    }
    configured.respond_next(200, {"Error": None, "Failure": "", "ProjectResults": [project]})
    result = atlantis.plan(BRANCH, DIRECTORY)
    assert result.succeeded and plan_counts(result.output_text()) == (1, 0, 0)
    configured.respond_next(
        200, {"ProjectResults": [{**project, "Command": "plan", "PlanSuccess": {"TerraformOutput": output}}]}
    )
    assert atlantis.plan(BRANCH, DIRECTORY).succeeded


# --- Timeouts and dropped connections ---------------------------------------------------------------------------


def test_apply_timeout_is_unanswered_and_keeps_the_lock(settings, configured):
    settings.ATLANTIS_APPLY_TIMEOUT = 0.3
    configured.delay = 1.5
    started = time.monotonic()
    result = atlantis.apply(BRANCH, DIRECTORY)
    assert time.monotonic() - started < 1.2
    assert (result.outcome, result.succeeded, result.http_status) == (Outcome.UNANSWERED, False, None)
    assert "the apply may have happened" in result.message and "timed out" in result.message
    assert (result.branch, result.directory, result.projects) == (BRANCH, DIRECTORY, [])
    # Atlantis may still be applying in its shared working directory: nothing else is sent until the lock expires.
    settings.ATLANTIS_LOCK_WAIT = 0.2
    blocked = atlantis.plan(BRANCH, DIRECTORY)
    assert blocked.outcome is Outcome.BUSY
    assert f"Another Atlantis call for {REPO} is running" in blocked.message
    assert len(configured.commands()) == 1


def test_plan_timeout_is_unanswered_and_keeps_the_lock(settings, configured):
    settings.ATLANTIS_PLAN_TIMEOUT = 0.3
    configured.delay = 1.5
    result = atlantis.plan(BRANCH, DIRECTORY)
    assert (result.outcome, result.http_status) == (Outcome.UNANSWERED, None)
    assert "timed out" in result.message and "it may still be planning" in result.message
    settings.ATLANTIS_LOCK_WAIT = 0.2
    assert atlantis.plan(BRANCH, DIRECTORY).outcome is Outcome.BUSY
    assert len(configured.commands()) == 1


def test_dropped_connection_on_apply_is_unanswered(configured):
    configured.drop_next()  # after the work: the VM was created, the answer lost
    result = atlantis.apply(BRANCH, DIRECTORY)
    assert result.outcome is Outcome.UNANSWERED
    assert "connection dropped before Atlantis answered" in result.message
    assert len(configured.applied) == 1


def test_dropped_connection_before_the_work_is_still_unanswered_to_the_client(configured):
    configured.drop_next(before_work=True)
    assert atlantis.apply(BRANCH, DIRECTORY).outcome is Outcome.UNANSWERED
    assert configured.applied == []


def test_dropped_connection_on_plan_is_unanswered(configured):
    configured.drop_next()
    result = atlantis.plan(BRANCH, DIRECTORY)
    assert result.outcome is Outcome.UNANSWERED
    assert "connection dropped before Atlantis answered" in result.message


@pytest.mark.parametrize("command", ["plan", "apply"])
def test_unreachable_atlantis_is_not_sent(settings, configured, command):
    url = f"http://127.0.0.1:{free_port()}"
    settings.ATLANTIS_URL = url
    result = getattr(atlantis, command)(BRANCH, DIRECTORY)
    assert (result.outcome, result.http_status) == (Outcome.NOT_SENT, None)
    assert f"Atlantis at {url} is unreachable" in result.message and "nothing was sent" in result.message


# --- The token ---------------------------------------------------------------------------------------------------


def test_the_token_never_appears_in_messages_reprs_or_logs(settings, configured, caplog):
    caplog.set_level(logging.DEBUG)
    seen = []
    seen.append(atlantis.plan(BRANCH, DIRECTORY))
    seen.append(atlantis.apply(BRANCH, DIRECTORY))
    seen.append(atlantis.plan(BRANCH, NO_BACKEND))
    configured.respond_next(500, {"error": f"echoed {TOKEN} by a careless proxy"})
    seen.append(atlantis.plan(BRANCH, DIRECTORY))
    configured.drop_next()
    seen.append(atlantis.apply(BRANCH, DIRECTORY))
    assert seen[-1].outcome is Outcome.UNANSWERED
    cache.delete("atlantis:" + REPO)  # the unanswered apply's lock would hold off the calls below
    with pytest.raises(AtlantisConfigError) as refused:
        atlantis.plan("bad branch", DIRECTORY)
    seen.append(refused.value)
    settings.ATLANTIS_URL = f"http://127.0.0.1:{free_port()}"
    seen.append(atlantis.plan(BRANCH, DIRECTORY))
    assert "is unreachable" in seen[-1].message
    texts = [caplog.text, *(repr(item) for item in seen), *(str(item) for item in seen)]
    texts += [item.output_text() for item in seen if isinstance(item, atlantis.AtlantisResult)]
    assert all(TOKEN not in text for text in texts)
    assert "[token]" in seen[3].message  # what an echo of it becomes
    assert all(record.token == "matching" for record in configured.commands())


def test_calls_are_logged_without_outputs_at_info(configured, caplog):
    caplog.set_level(logging.INFO, logger="provisioning.atlantis")
    atlantis.plan(BRANCH, DIRECTORY)
    [record] = [record for record in caplog.records if record.name.startswith("provisioning.atlantis")]
    message = record.getMessage()
    for part in (
        "atlantis plan",
        f"repo={REPO}",
        f"branch={BRANCH}",
        f"directory={DIRECTORY}",
        "status=200",
        "outcome=succeeded",
    ):
        assert part in message
    assert re.search(r"duration=\d+\.\ds", message)
    assert "vsphere_virtual_machine" not in message  # the plan's output stays out of INFO


# --- One call per repository at a time ---------------------------------------------------------------------------


@pytest.mark.redis_server
def test_concurrent_calls_never_overlap_at_atlantis(settings, configured, real_redis):
    configured.delay = 0.2
    results, ttls = [], []
    calls = [(atlantis.plan, BRANCH, DIRECTORY), (atlantis.apply, BRANCH, DIRECTORY), (atlantis.plan, *REQUESTS[0][:2])]
    threads = [threading.Thread(target=lambda c=call: results.append(c[0](*c[1:]))) for call in calls]
    for thread in threads:
        thread.start()
    key = lock_key(REPO)
    while any(thread.is_alive() for thread in threads):
        ttls.append(real_redis.pttl(key))
        time.sleep(0.02)
    for thread in threads:
        thread.join()
    assert all(result.succeeded for result in results), [result.message for result in results]
    assert (configured.overlaps, configured.max_in_flight, len(configured.commands())) == (0, 1, 3)
    assert key == cache.make_key("atlantis:" + REPO) and key.endswith(":atlantis:acme/vms")
    held = [ttl for ttl in ttls if ttl > 0]
    assert held and max(held) <= (10 + 2 + WRITE_TIMEOUT + 1) * 1000
    assert real_redis.exists(key) == 0  # released after each call


def test_a_held_lock_means_nothing_is_sent(settings, configured):
    settings.ATLANTIS_LOCK_WAIT = 0.2
    holder = cache.lock("atlantis:" + REPO, timeout=10)
    assert holder.acquire(blocking=False)
    try:
        for call in (atlantis.plan, atlantis.apply):
            result = call(BRANCH, DIRECTORY)
            assert result.outcome is Outcome.BUSY
            assert f"Another Atlantis call for {REPO} is running" in result.message
    finally:
        holder.release()
    assert configured.requests == []
    assert atlantis.plan(BRANCH, DIRECTORY).succeeded


def test_redis_down_means_no_call(settings, configured):
    caches = copy.deepcopy(settings.CACHES)
    caches["default"]["LOCATION"] = f"redis://127.0.0.1:{free_port()}/0"
    caches["default"]["OPTIONS"].pop("CONNECTION_POOL_KWARGS", None)
    settings.CACHES = caches
    for call in (atlantis.plan, atlantis.apply):
        result = call(BRANCH, DIRECTORY)
        assert result.outcome is Outcome.BUSY
        assert "Redis is unavailable" in result.message and "nothing was sent to Atlantis" in result.message
    assert configured.requests == []


def test_without_a_redis_cache_there_is_no_call(settings, configured):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    with pytest.raises(AtlantisConfigError, match="the default cache must be django-redis"):
        atlantis.plan(BRANCH, DIRECTORY)
    assert configured.requests == []


# --- plan_counts ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("output", "counts"),
    [
        ("...\nPlan: 1 to add, 0 to change, 0 to destroy.\n", (1, 0, 0)),
        ("Plan: 0 to add, 2 to change, 1 to destroy.", (0, 2, 1)),
        ("Plan: 12 to add, 0 to change, 0 to destroy.\n\nPlan: 1 to add, 0 to change, 0 to destroy.", (1, 0, 0)),
        ("No changes. Your infrastructure matches the configuration.\n", (0, 0, 0)),
        ("\nNo changes. Infrastructure is up-to-date.\n", (0, 0, 0)),
        # Anything else is not a plain "add this VM": no counts, so no auto-approval.
        ("Plan: 1 to import, 1 to add, 0 to change, 0 to destroy.", None),
        ("Plan: 0 to add, 0 to change, 0 to destroy, 1 to forget.", None),
        ("Changes to Outputs:\n  + x = 1\n", None),
        ("Error: something", None),
        ("", None),
    ],
)
def test_plan_counts(output, counts):
    assert plan_counts(output) == counts


# --- End to end: vmprov's files, the local Atlantis, a clone in vcsim -----------------------------------------------


@pytest.mark.vcsim
def test_plan_and_apply_clone_the_template_in_vcsim(settings, bare_repo, vcsim_factory):
    vcsim = vcsim_factory()
    with admin_session(vcsim) as si:
        content = si.RetrieveContent()
        view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
        template = next(vm for vm in view.view if vm.config.template)
        view.DestroyView()
        uuid = template.config.uuid
        cluster = find(si, vim.ClusterComputeResource, "DC0_C0")
        datacenter = find(si, vim.Datacenter, "DC0")
        ids = {
            "resource_pool_id": cluster.resourcePool._moId,
            "datastore_id": cluster.datastore[0]._moId,
            "network_id": find(si, vim.Network, "VM Network", within=datacenter.networkFolder)._moId,
        }
    spec = MachineSpec(
        vm_name="e2e-web01",
        datacenter_id=datacenter._moId,
        datacenter_name="DC0",
        cluster_id=cluster._moId,
        cluster_name="DC0_C0",
        folder="",
        template=TemplateSpec(
            uuid=uuid,
            guest_id="ubuntu64Guest",
            scsi_type="lsilogic",
            firmware="bios",
            nic_types=("e1000",),
            disks=(TemplateDisk(label="disk0", size_gb=1, unit_number=0),),
        ),
        num_cpus=2,
        memory_mb=2048,
        disk_size_gb=2,
        domain="example.com",
        ipv4_address="10.77.0.10",
        ipv4_prefix=24,
        ipv4_gateway="10.77.0.1",
        dns_servers=("10.77.0.53",),
        **ids,
    )
    branch, directory = "vmprov/99-e2e-web01", "vms/DC0/e2e-web01"
    push_branch(bare_repo, branch, directory_files(directory, render(spec)))
    with LocalAtlantis(api_secret=TOKEN, repo_clone_url={REPO: bare_repo}, provider=provider_in(vcsim)) as local:
        point_at(settings, local)
        planned = atlantis.plan(branch, directory)
        assert planned.succeeded and plan_counts(planned.output_text()) == (1, 0, 0), planned.message
        applied = atlantis.apply(branch, directory)
        assert applied.succeeded, (applied.message, local.errors)
    assert applied.summary() == "Apply complete! Resources: 1 added, 0 changed, 0 destroyed."
    with admin_session(vcsim) as si:
        vm = find(si, vim.VirtualMachine, "e2e-web01")
        assert (vm.runtime.powerState, vm.guest.ipAddress, vm.guest.hostName) == (
            "poweredOn",
            "10.77.0.10",
            "e2e-web01",
        )
        assert (vm.config.hardware.numCPU, vm.config.hardware.memoryMB) == (2, 2048)


def test_result_dataclass_holds_no_settings():
    names = {item.name for item in dataclasses.fields(atlantis.AtlantisResult)}
    assert not names & {"token", "url", "headers", "request"}
