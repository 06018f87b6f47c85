"""The Atlantis double (devtools/atlantis) answers as its fixtures say Atlantis does: check order, texts and status
codes, the response shape, plans that fail or succeed as Terraform would. Raw HTTP only, never vmprov's client."""

import ast
import json
import re
import socket
import threading
from pathlib import Path

import httpx
import pytest

from devtools.atlantis import DEFAULT_SECRET, LocalAtlantis
from devtools.atlantis.fixtures import ANSWERS
from devtools.terraform_sim import SimulatedProvider, plan, read_tfvars
from provisioning.delivery.verify import created_vm_uuid
from provisioning.terraform.render import render, tfvars_values
from provisioning.terraform.settings import MACHINE_INPUTS_TFVARS_FILE, RenderSettings
from tests.support.atlantis_vcsim import FailingCreation
from tests.support.git_repos import directory_files, make_bare_repo, push_branch
from tests.support.specs import dhcp_spec, hostile_spec, static_spec
from tests.support.terraform_bin import run_terraform

# One client for the module: creating one per request (SSL context and all) would double the run time.
HTTP = httpx.Client(timeout=30)
DEVTOOLS = Path(__file__).resolve().parents[2] / "devtools"

REPO = "acme/vms"
BRANCH = "vmprov/1-web01"
STATIC_DIR = "vms/DC0/web01"
DHCP_DIR = "vms/DC0/web02"
NO_BACKEND_DIR = "vms/DC0/no-backend"
MACHINE_INPUTS_DIR = "vms/DC0/machine-inputs"
BROKEN_DIR = "vms/DC0/broken"
HOSTILE_DIR = "vms/DC0/hostile"


def without_backend(files: dict[str, str]) -> dict[str, str]:
    providers = re.sub(r"\n  # One state per VM.*?\n  }\n", "\n", files["providers.tf"], flags=re.DOTALL)
    assert "backend" not in providers
    return {**files, "providers.tf": providers}


@pytest.fixture(scope="module")
def bare_repo(tmp_path_factory) -> Path:
    """One repository for the module: a branch holding every kind of directory the tests plan."""
    bare = make_bare_repo(tmp_path_factory.mktemp("atlantis-contract") / "vms.git")
    files = {}
    files |= directory_files(STATIC_DIR, render(static_spec()))
    files |= directory_files(DHCP_DIR, render(dhcp_spec(vm_name="web02")))
    files |= directory_files(NO_BACKEND_DIR, without_backend(render(dhcp_spec(vm_name="nb"))))
    files |= directory_files(
        MACHINE_INPUTS_DIR, render(dhcp_spec(vm_name="mi"), RenderSettings(tfvars_file=MACHINE_INPUTS_TFVARS_FILE))
    )
    files |= directory_files(BROKEN_DIR, {**render(dhcp_spec(vm_name="br")), "broken.tf": 'resource "x" "y" {\n'})
    files |= directory_files(HOSTILE_DIR, render(hostile_spec()))
    push_branch(bare, BRANCH, files)
    return bare


@pytest.fixture
def atlantis(bare_repo):
    with LocalAtlantis(repo_clone_url={REPO: bare_repo}) as server:
        yield server


def post(server, path: str, body, token: str | None = DEFAULT_SECRET, method: str = "POST") -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["X-Atlantis-Token"] = token
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return HTTP.request(method, server.url + path, content=content, headers=headers)


def request(directory: str = STATIC_DIR, **changes) -> dict:
    body = {
        "Repository": REPO,
        "Ref": BRANCH,
        "Type": "Github",
        "Paths": [{"Directory": directory, "Workspace": "default"}],
    }
    body.update(changes)
    return body


def error_of(response: httpx.Response) -> str:
    assert response.headers["content-type"] == "application/json"
    assert response.content.endswith(b"}\n")
    return response.json()["error"]


# --- Where the double's answers come from -------------------------------------------------------------------------


def test_every_answer_names_the_release_and_commit_it_was_transcribed_from():
    fixtures = [*sorted(ANSWERS.glob("*.json")), DEVTOOLS / "terraform_sim" / "output.json"]
    assert len(fixtures) >= 19
    for path in fixtures:
        fixture = json.loads(path.read_text())
        sources = [fixture["source"]] + [variant["source"] for variant in fixture.get("variants", [])]
        for source in sources:
            assert re.search(r"^[\w-]+/[\w-]+ v\d+\.\d+\.\d+ \([0-9a-f]{40}\)", source), (path.name, source)


def test_the_double_imports_nothing_from_the_product():
    for path in DEVTOOLS.rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            names += [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for name in names:
                assert name.split(".")[0] not in {"inventory", "provisioning", "vmprov", "tests"}, (path, name)


# --- Routes -------------------------------------------------------------------------------------------------------


def test_routes_methods_and_unknown_paths(atlantis):
    assert HTTP.get(atlantis.url + "/api/plan").status_code == 405
    assert HTTP.request("PUT", atlantis.url + "/api/apply", content=b"{}").status_code == 405
    assert HTTP.get(atlantis.url + "/api/plan").content == b""
    missing = HTTP.get(atlantis.url + "/api/nope")
    assert (missing.status_code, missing.text) == (404, "404 page not found\n")
    assert HTTP.post(atlantis.url + "/api/plan/", content=b"{}").status_code == 404


# --- Checks, in order ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("version", "status"), [("0.34", 400), ("0.44.0", 400), ("0.45", 503), ("0.47.1", 503)])
def test_api_disabled_comes_first(bare_repo, version, status):
    with LocalAtlantis(api_secret=None, repo_clone_url={REPO: bare_repo}, version=version) as server:
        response = post(server, "/api/plan", b"not json", token="anything")
    assert response.status_code == status
    assert response.content == b'{"error":"ignoring request since API is disabled"}\n'


@pytest.mark.parametrize("token", [None, "", "wrong", DEFAULT_SECRET.upper()])
def test_token_is_checked_before_the_body(atlantis, token):
    response = post(atlantis, "/api/apply", b"{broken", token=token)
    assert response.status_code == 401
    assert response.content == b'{"error":"header X-Atlantis-Token did not match expected secret"}\n'
    assert atlantis.requests[-1].token == ("absent" if token is None else "wrong")


def test_unreadable_body(atlantis):
    host, port = atlantis.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(
            b"POST /api/plan HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"X-Atlantis-Token: {DEFAULT_SECRET}\r\nContent-Length: 100\r\n\r\n".encode()
            + b'{"Repository":'
        )
        sock.shutdown(socket.SHUT_WR)  # the body ends 86 bytes short
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert answer.endswith(b'\r\n\r\n{"error":"failed to read request"}\n')


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"", "invalid JSON"),
        (b"{", "invalid JSON"),
        (b'{"a":1}x', "invalid JSON"),
        (b"\xff", "invalid JSON"),
        (b"[]", "a JSON list is not an APIRequest object"),
        (b'"x"', "a JSON str is not an APIRequest object"),
        (b'{"PR":"2"}', "PR is not a JSON number"),
        (b'{"pr":2.5}', "pr is not a JSON number"),
        (b'{"PR":true}', "PR is not a JSON number"),
        (b'{"Ref":2}', "Ref is not a JSON str"),
        (b'{"Projects":"p"}', "Projects is not a JSON list"),
        (b'{"Projects":[1]}', "Projects holds a value that is not a string"),
        (b'{"Paths":"vms"}', "Paths is not a JSON list"),
        (b'{"Paths":[{"Directory":1}]}', "Paths holds an entry that is not {Directory: string, Workspace: string}"),
    ],
)
def test_a_body_that_does_not_decode_is_a_400_before_the_fields_are_checked(atlantis, body, detail):
    """Atlantis's text, with the double's own words for what Go's decoder would say."""
    response = post(atlantis, "/api/plan", body)
    assert response.status_code == 400
    assert error_of(response).startswith(f"failed to parse request: {detail}")


@pytest.mark.parametrize(
    "body",
    [
        b"{}",
        b"null",
        b'{"Repo":"acme/vms","Branch":"vmprov/1-web01","Type":"Github"}',
        b'{"Repository":"acme/vms","Ref":"","Type":"Github"}',
        b'{"Repository":"acme/vms","Ref":null,"Type":"Github"}',
        b'{"Repository":"acme/vms","Ref":"x","type":""}',
        b'{"Repository":"acme/vms","Ref":"x","Type":"Github","repository":""}',  # the last duplicate wins
        b'{"Repository":"acme/vms","Type":"Github","PR":2,"Paths":[{"Directory":"vms/x"}]}',
        '{\n\t"Ref": "café"}'.encode(),
    ],
)
def test_missing_fields_quote_the_raw_body(atlantis, body):
    response = post(atlantis, "/api/plan", body)
    assert response.status_code == 400
    assert error_of(response) == f"request {json.dumps(body.decode(), ensure_ascii=False)} is missing fields"


def test_keys_match_case_insensitively_and_unknown_keys_are_dropped(atlantis):
    body = {
        "repository": REPO,
        "REF": BRANCH,
        "tYpE": "Github",
        "paths": [{"directory": STATIC_DIR}],  # Workspace defaults to "default"
        "BaseBranch": "main",
        "base_branch": "main",
        "Extra": {"nested": [1, 2]},
    }
    response = post(atlantis, "/api/plan", body)
    assert response.status_code == 200, response.text
    [project] = response.json()["ProjectResults"]
    assert (project["RepoRelDir"], project["Workspace"]) == (STATIC_DIR, "default")


@pytest.mark.parametrize(("kind", "status", "error"), [
    ("github", 400, '"github" is not a valid type'),
    ("GitHub", 400, '"GitHub" is not a valid type'),
    ("Bitbucket", 400, '"Bitbucket" is not a valid type'),
    ("BitbucketCloud", 500, "not yet implemented"),
    ("BitbucketServer", 500, "not yet implemented"),
    ("AzureDevops", 500, "not yet implemented"),
])  # fmt: skip
def test_vcs_type(atlantis, kind, status, error):
    response = post(atlantis, "/api/plan", request(Type=kind))
    assert (response.status_code, error_of(response)) == (status, error)


def test_clone_url_lookup_fails_for_an_unknown_repository(atlantis):
    response = post(atlantis, "/api/plan", request(Repository="acme/unknown"))
    assert (response.status_code, error_of(response)) == (
        500,
        "GET https://api.github.com/repos/acme/unknown: 404 Not Found []",
    )


def test_repository_without_owner(bare_repo):
    with LocalAtlantis(repo_clone_url={"vms": bare_repo}, repo_allowlist=["*"]) as server:
        response = post(server, "/api/plan", request(Repository="vms"))
    assert (response.status_code, error_of(response)) == (
        400,
        'failed to parse request: invalid repo format "vms", owner "" or repo "vms" was empty',
    )


def test_repository_not_allowlisted(bare_repo):
    with LocalAtlantis(repo_clone_url={REPO: bare_repo}, repo_allowlist=["github.com/other/*"]) as server:
        response = post(server, "/api/plan", request())
        assert (response.status_code, error_of(response)) == (403, "repo not allowlisted")
        assert server.clones == []
    with LocalAtlantis(repo_clone_url={REPO: bare_repo}, repo_allowlist=["github.com/acme/*"]) as server:
        assert post(server, "/api/plan", request()).status_code == 200


def test_clone_failure_is_a_500_with_gits_text(atlantis, bare_repo):
    response = post(atlantis, "/api/plan", request(Ref="vmprov/404-nothing"))
    assert response.status_code == 500
    error = error_of(response)
    assert error.startswith("running git clone --depth=1 --branch vmprov/404-nothing --single-branch file://")
    assert "Remote branch vmprov/404-nothing not found in upstream origin" in error
    assert error.endswith(": exit status 128")


def test_project_names_need_an_atlantis_yaml(atlantis):
    response = post(atlantis, "/api/plan", request(Projects=["web01"]))
    assert (response.status_code, error_of(response)) == (
        500,
        "failed to build command: cannot specify a project name unless an atlantis.yaml file exists to configure "
        "projects",
    )


def test_nothing_to_plan_is_a_200_with_no_project(atlantis):
    response = post(atlantis, "/api/plan", {"Repository": REPO, "Ref": BRANCH, "Type": "Github"})
    assert response.status_code == 200
    assert response.json() == {"Error": None, "Failure": "", "ProjectResults": [], "PlansDeleted": False}


# --- Response shape --------------------------------------------------------------------------------------------

PROJECT_KEYS = [
    "Error",
    "Failure",
    "PlanSuccess",
    "PolicyCheckResults",
    "ApplySuccess",
    "VersionSuccess",
    "ImportSuccess",
    "StateRmSuccess",
    "Command",
    "SubCommand",
    "RepoRelDir",
    "Workspace",
    "ProjectName",
    "SilencePRComments",
]


def test_plan_response_shape(atlantis):
    response = post(atlantis, "/api/plan", request())
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.content.endswith(b"}\n") and b": " not in response.content[:40]
    result = response.json()
    assert list(result) == ["Error", "Failure", "ProjectResults", "PlansDeleted"]
    assert (result["Error"], result["Failure"], result["PlansDeleted"]) == (None, "", False)
    [project] = result["ProjectResults"]
    assert list(project) == PROJECT_KEYS
    assert list(project["PlanSuccess"]) == ["TerraformOutput", "LockURL", "RePlanCmd", "ApplyCmd", "MergedAgain"]
    assert project["Command"] == 1
    assert (project["RepoRelDir"], project["Workspace"], project["ProjectName"]) == (STATIC_DIR, "default", "")
    assert (project["Error"], project["Failure"], project["ApplySuccess"]) == (None, "", "")
    assert project["PlanSuccess"]["RePlanCmd"] == f"atlantis plan -d {STATIC_DIR}"
    assert project["PlanSuccess"]["ApplyCmd"] == f"atlantis apply -d {STATIC_DIR}"
    assert project["PlanSuccess"]["LockURL"] == f"{atlantis.url}/lock?id=acme%2Fvms%2Fvms%2FDC0%2Fweb01%2Fdefault"
    output = project["PlanSuccess"]["TerraformOutput"]
    assert output.endswith("\nPlan: 1 to add, 0 to change, 0 to destroy.\n")
    assert "# vsphere_virtual_machine.vm will be created" in output
    assert re.search(r'\+ name += "db-01"', output)


def test_apply_response_shape_holds_only_the_apply(atlantis):
    response = post(atlantis, "/api/apply", request(DHCP_DIR))
    assert response.status_code == 200
    [project] = response.json()["ProjectResults"]
    assert list(project) == PROJECT_KEYS
    assert (project["Command"], project["PlanSuccess"], project["Error"]) == (0, None, None)
    output = project["ApplySuccess"]
    assert output.endswith("\nApply complete! Resources: 1 added, 0 changed, 0 destroyed.\n")
    assert re.match(r"vsphere_virtual_machine\.vm: Creating\.\.\.\n", output)
    assert created_vm_uuid(output), "the vsphere provider's 'Creation complete after ... [id=<uuid>]' line"
    assert atlantis.clones == [BRANCH]  # one fresh clone per call


def test_a_trailing_slash_is_trimmed_from_the_directory(atlantis):
    response = post(atlantis, "/api/plan", request(STATIC_DIR + "/"))
    assert response.json()["ProjectResults"][0]["RepoRelDir"] == STATIC_DIR


def test_each_path_is_a_project_and_one_failure_makes_a_500(atlantis):
    body = request(Paths=[{"Directory": STATIC_DIR}, {"Directory": "vms/DC0/nothere", "Workspace": "blue"}])
    response = post(atlantis, "/api/plan", body)
    assert response.status_code == 500
    planned, missing = response.json()["ProjectResults"]
    assert planned["PlanSuccess"]["TerraformOutput"].endswith("Plan: 1 to add, 0 to change, 0 to destroy.\n")
    assert (missing["Workspace"], missing["PlanSuccess"], missing["Error"]) == (
        "blue",
        None,
        {"RepoRelDir": "vms/DC0/nothere"},
    )


# --- Plans that fail as Terraform fails -------------------------------------------------------------------------


def failed_project(response: httpx.Response) -> dict:
    assert response.status_code == 500
    [project] = response.json()["ProjectResults"]
    assert (project["Failure"], project["PlanSuccess"]) == ("", None)
    return project


def test_missing_directory_is_atlantis_dir_not_exist_error(atlantis):
    project = failed_project(post(atlantis, "/api/plan", request("vms/DC0/nothere")))
    assert project["Error"] == {"RepoRelDir": "vms/DC0/nothere"}
    assert atlantis.errors[-1].text == 'dir "vms/DC0/nothere" does not exist'


def test_missing_backend_fails_the_plan(atlantis):
    project = failed_project(post(atlantis, "/api/plan", request(NO_BACKEND_DIR)))
    assert project["Error"] == {}  # a Go error: its text is only in Atlantis's log
    assert "Error: No backend configured" in atlantis.errors[-1].text


def line_of(text: str, needle: str) -> int:
    return next(number for number, line in enumerate(text.splitlines(), 1) if line == needle)


def test_required_variable_without_value_fails_with_terraforms_text(atlantis):
    """machine_inputs.tfvars is not loaded by Terraform unless the workflow passes -var-file."""
    failed_project(post(atlantis, "/api/plan", request(MACHINE_INPUTS_DIR)))
    variables = render(dhcp_spec())["variables.tf"]
    number = line_of(variables, 'variable "vm_name" {')
    expected = (
        "Error: No value for required variable\n\n"
        f"  on variables.tf line {number}:\n"
        f'{number:4d}: variable "vm_name" {{\n\n'
        'The root module input variable "vm_name" is not set, and has no default value. Use a -var or -var-file '
        "command line argument to provide a value for this variable.\n"
    )
    assert expected in atlantis.errors[-1].text


def test_machine_inputs_tfvars_plans_when_the_workflow_passes_it(bare_repo):
    with LocalAtlantis(repo_clone_url={REPO: bare_repo}, var_files=[MACHINE_INPUTS_TFVARS_FILE]) as server:
        response = post(server, "/api/plan", request(MACHINE_INPUTS_DIR))
        assert response.status_code == 200, server.errors
        missing = post(server, "/api/plan", request(STATIC_DIR))  # renders terraform.tfvars only
        failed_project(missing)
        text = server.errors[-1].text
    assert "Error: Failed to read variables file\n\nGiven variables file machine_inputs.tfvars does not exist." in text


def test_unparsable_configuration_fails_the_plan(atlantis):
    failed_project(post(atlantis, "/api/plan", request(BROKEN_DIR)))
    assert "Error: Invalid configuration in broken.tf" in atlantis.errors[-1].text


def normalized(text: str) -> str:
    return " ".join(text.replace("╷", "").replace("│", "").replace("╵", "").split())


def test_the_required_variable_text_is_real_terraforms(tmp_path):
    """A real `terraform plan -input=false` says the same (Terraform wraps lines)."""
    (tmp_path / "variables.tf").write_text(render(dhcp_spec())["variables.tf"])
    (tmp_path / "main.tf").write_text('terraform {\n  backend "local" {}\n}\n')
    run_terraform(tmp_path, "init", "-input=false", "-no-color")
    real = run_terraform(tmp_path, "plan", "-input=false", "-no-color", check=False)
    ours = plan(tmp_path)
    assert not ours.ok and real.returncode == 1
    assert normalized(ours.error) == normalized(real.stderr)


# --- Plans that succeed, and applies ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("directory", "spec"),
    [(STATIC_DIR, static_spec()), (DHCP_DIR, dhcp_spec(vm_name="web02")), (HOSTILE_DIR, hostile_spec())],
)
def test_apply_passes_the_values_vmprov_rendered(bare_repo, directory, spec):
    calls = []

    class Recorder(SimulatedProvider):
        def create(self, path, values, attributes):
            calls.append((path, sorted(file.name for file in path.iterdir()), values))
            return super().create(path, values, attributes)

    with LocalAtlantis(repo_clone_url={REPO: bare_repo}, provider=Recorder()) as server:
        assert post(server, "/api/plan", request(directory)).status_code == 200
        assert calls == []  # a plan applies nothing
        response = post(server, "/api/apply", request(directory))
    assert response.status_code == 200, server.errors
    [(path, files, values)] = calls  # the project's directory in the fresh clone, during the apply
    assert path.name == directory.rsplit("/", 1)[-1] and "machine.tf" in files
    expected = json.loads(json.dumps(tfvars_values(spec)))  # tuples as lists, as Terraform values come
    assert {name: values[name] for name in expected} == expected
    assert values["vsphere_user"] is None  # declared with a null default
    assert server.applied == [(directory, values)]


def test_a_failing_apply_is_a_project_error(bare_repo):
    provider = FailingCreation("Error: error cloning virtual machine: datastore full")
    with LocalAtlantis(repo_clone_url={REPO: bare_repo}, provider=provider) as server:
        response = post(server, "/api/apply", request())
    [project] = response.json()["ProjectResults"]
    assert (response.status_code, project["Error"], project["Command"], project["ApplySuccess"]) == (500, {}, 0, "")
    assert "datastore full" in server.errors[-1].text
    assert server.applied == []


def test_apply_plans_first_and_applies_nothing_when_the_plan_fails(bare_repo):
    calls = []

    class Recorder(SimulatedProvider):
        def create(self, *args):
            calls.append(args)
            return super().create(*args)

    with LocalAtlantis(repo_clone_url={REPO: bare_repo}, provider=Recorder()) as server:
        response = post(server, "/api/apply", request(NO_BACKEND_DIR))
        missing = post(server, "/api/apply", request("vms/DC0/nothere"))
    [project] = response.json()["ProjectResults"]
    assert (response.status_code, project["Error"], project["Command"]) == (500, {}, 0)
    assert calls == []
    assert "No backend configured" in server.errors[0].text and "no plan found at path" in server.errors[0].text
    assert missing.json()["ProjectResults"][0]["Error"] == {"RepoRelDir": "vms/DC0/nothere"}


@pytest.mark.parametrize("command", ["plan", "apply"])
def test_injected_project_error(atlantis, command):
    atlantis.error_next()
    project = failed_project(post(atlantis, f"/api/{command}", request()))
    assert (project["Error"], project["Command"]) == ({}, 1 if command == "plan" else 0)
    assert atlantis.errors[-1].text == "injected error"
    assert post(atlantis, f"/api/{command}", request()).status_code == 200  # only the next call


def test_answers_and_drops_are_injected_per_command(atlantis):
    atlantis.respond_next(502, "<html>Bad Gateway</html>", commands=("apply",))
    atlantis.drop_next(before_work=True, commands=("plan",))
    with pytest.raises(httpx.RemoteProtocolError):
        post(atlantis, "/api/plan", request())
    response = post(atlantis, "/api/apply", request())
    assert (response.status_code, response.text) == (502, "<html>Bad Gateway</html>")
    assert atlantis.clones == [] and atlantis.applied == []
    atlantis.drop_next(commands=("apply",))  # after the work: the apply happened, its answer is lost
    with pytest.raises(httpx.RemoteProtocolError):
        post(atlantis, "/api/apply", request())
    assert [directory for directory, _ in atlantis.applied] == [STATIC_DIR]
    assert atlantis.requests[-1].status is None


def test_concurrent_calls_are_serialized_and_recorded_as_overlapping(atlantis):
    """Two raw calls at once: Atlantis's PR-0 directory would be shared; the double notes it (the client must not)."""
    atlantis.delay = 0.3
    responses = []
    threads = [threading.Thread(target=lambda: responses.append(post(atlantis, "/api/plan", request()))) for _ in "ab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [response.status_code for response in responses] == [200, 200]
    assert atlantis.overlaps == 1 and atlantis.max_in_flight == 2
    assert [record.overlapped for record in atlantis.requests] == [False, True]


def test_requests_are_recorded_without_the_token(atlantis):
    post(atlantis, "/api/plan", request())
    [record] = atlantis.requests
    assert (record.method, record.path, record.status, record.token) == ("POST", "/api/plan", 200, "matching")
    assert all(name.lower() != "x-atlantis-token" for name, _ in record.headers)
    assert DEFAULT_SECRET.encode() not in record.body and DEFAULT_SECRET not in repr(record)
    assert json.loads(record.response)["ProjectResults"][0]["RepoRelDir"] == STATIC_DIR


# --- Reading values files ----------------------------------------------------------------------------------------


def test_values_files_read_back_every_literal_vmprov_writes():
    for spec in (static_spec(), dhcp_spec(), hostile_spec()):
        values = read_tfvars(render(spec)["terraform.tfvars"], "terraform.tfvars")
        assert values == json.loads(json.dumps(tfvars_values(spec)))


def test_values_files_hold_escapes_objects_and_json():
    text = 'a = "x $${y} %%{z}"\nb = { k = [1, 2.5, null] }\nc = "\\u00e9\\t"\n'
    assert read_tfvars(text, "t.tfvars") == {"a": "x ${y} %{z}", "b": {"k": [1, 2.5, None]}, "c": "é\t"}
    assert read_tfvars('{"a": [1, "x"]}', "t.tfvars.json") == {"a": [1, "x"]}
