"""The local Atlantis (tests/atlantis_server.py) answers as the contract says: check order, exact texts and status
codes, the response shape, and plans that fail or succeed as Terraform would. Raw HTTP only, never the client."""

import json
import re
import socket
import threading
from pathlib import Path

import httpx
import pytest

from provisioning.terraform.render import render, tfvars_values
from provisioning.terraform.settings import MACHINE_INPUTS_TFVARS_FILE, RenderSettings
from tests.atlantis_server import (
    DEFAULT_SECRET,
    LocalAtlantis,
    decode_api_request,
    go_quote,
    parse_tfvars,
    terraform_plan,
)
from tests.atlantis_vcsim import clone_in_vcsim
from tests.git_fixtures import directory_files, make_bare_repo, push_branch
from tests.terraform_bin import run_terraform
from tests.test_terraform_render import dhcp_spec, hostile_spec, static_spec
from tests.vcenter_admin import admin_session, find, vim

# One client for the module: creating one per request (SSL context and all) would double the run time.
HTTP = httpx.Client(timeout=30)

REPO = "acme/vms"
BRANCH = "vmprov/1-web01"
STATIC_DIR = "vms/DC0/web01"
DHCP_DIR = "vms/DC0/web02"
NO_BACKEND_DIR = "vms/DC0/no-backend"
MACHINE_INPUTS_DIR = "vms/DC0/machine-inputs"
UNDECLARED_DIR = "vms/DC0/undeclared"
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
    files |= directory_files(
        UNDECLARED_DIR,
        {**render(dhcp_spec(vm_name="ud")), "outputs.tf": 'output "name" {\n  value = "${var.vm_nme}-x"\n}\n'},
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


# --- Routes -------------------------------------------------------------------------------------------------------


def test_routes_methods_and_unknown_paths(atlantis):
    assert HTTP.get(atlantis.url + "/api/plan").status_code == 405
    assert HTTP.request("PUT", atlantis.url + "/api/apply", content=b"{}").status_code == 405
    assert HTTP.get(atlantis.url + "/api/plan").content == b""
    missing = HTTP.get(atlantis.url + "/api/nope")
    assert (missing.status_code, missing.text) == (404, "404 page not found\n")
    assert HTTP.post(atlantis.url + "/api/plan/", content=b"{}").status_code == 404
    locks = HTTP.get(atlantis.url + "/api/locks")  # no token needed
    assert (locks.status_code, locks.content) == (200, b'{"Locks":null}\n')


# --- Checks, in order ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("version", "status"), [("0.34", 400), ("0.44", 400), ("0.45", 503)])
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
    ("body", "error"),
    [
        (b"", "unexpected end of JSON input"),
        (b"{", "unexpected end of JSON input"),
        (b"nul", "unexpected end of JSON input"),
        (b"nulx", "invalid character 'x' in literal null (expecting 'l')"),
        (b"[1,]", "invalid character ']' looking for beginning of value"),
        (b"{'Ref': 'x'}", "invalid character '\\'' looking for beginning of object key string"),
        (b'{"Ref" "x"}', "invalid character '\"' after object key"),
        (b'{"Ref":"x" "Type":"y"}', "invalid character '\"' after object key:value pair"),
        (b'{"Ref":"a\x01"}', "invalid character '\\x01' in string literal"),
        (b'{"Ref":"\\q"}', "invalid character 'q' in string escape code"),
        (b'{"PR":01}', "invalid character '1' after object key:value pair"),
        (b'{"PR":1.}', "invalid character '}' after decimal point in numeric literal"),
        (b'{"a":1}x', "invalid character 'x' after top-level value"),
        (b"\xff", "invalid character '\u00ff' looking for beginning of value"),
        (b"[]", "json: cannot unmarshal array into Go value of type controllers.APIRequest"),
        (b'"x"', "json: cannot unmarshal string into Go value of type controllers.APIRequest"),
        (b'{"PR":"2"}', "json: cannot unmarshal string into Go struct field APIRequest.PR of type int"),
        (b'{"pr":2.5}', "json: cannot unmarshal number 2.5 into Go struct field APIRequest.PR of type int"),
        (b'{"PR":true}', "json: cannot unmarshal bool into Go struct field APIRequest.PR of type int"),
        (b'{"Ref":2}', "json: cannot unmarshal number into Go struct field APIRequest.Ref of type string"),
        (
            b'{"Projects":"p"}',
            "json: cannot unmarshal string into Go struct field APIRequest.Projects of type []string",
        ),
        (
            b'{"Paths":"vms"}',
            "json: cannot unmarshal string into Go struct field APIRequest.Paths of type "
            "[]struct { Directory string; Workspace string }",
        ),
        (
            b'{"Paths":[{"Directory":1}]}',
            "json: cannot unmarshal number into Go struct field .Paths.Directory of type string",
        ),
        # The first type error is the one reported, whatever follows.
        (b'{"Ref":{},"PR":"x"}', "json: cannot unmarshal object into Go struct field APIRequest.Ref of type string"),
    ],
)
def test_json_errors_read_as_go_writes_them(atlantis, body, error):
    response = post(atlantis, "/api/plan", body)
    assert response.status_code == 400
    assert error_of(response) == f"failed to parse request: {error}"


def test_error_bodies_are_json_as_go_marshals_them(atlantis):
    response = post(atlantis, "/api/plan", b'{"a":1}<')
    assert (
        response.content
        == b'{"error":"failed to parse request: invalid character \'\\u003c\' after top-level value"}\n'
    )


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
    ],
)
def test_missing_fields_quote_the_raw_body(atlantis, body):
    response = post(atlantis, "/api/plan", body)
    assert response.status_code == 400
    assert error_of(response) == f"request {go_quote(body)} is missing fields"


def test_missing_fields_go_quoting_by_hand(atlantis):
    body = b'{\n\t"Ref": "caf\xc3\xa9\x7f", "x": "\xff", "q": "<\\"&>", "nb": "\xc2\xa0"}'
    response = post(atlantis, "/api/plan", body)
    expected = (
        'request "{\\n\\t\\"Ref\\": \\"café\\x7f\\", \\"x\\": \\"\\xff\\", \\"q\\": \\"<\\\\\\"&>\\", '
        '\\"nb\\": \\"\\u00a0\\"}" is missing fields'
    )
    assert error_of(response) == expected
    assert b"\\u003c" in response.content and b"\\u0026" in response.content and b"<" not in response.content


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


def test_go_key_folding_accepts_the_kelvin_sign_and_long_s():
    decoded, error = decode_api_request('{"Repo\u017fitory":"a/b","Ref":"r","Type":"Github","Wor\u212a":1}'.encode())
    assert error is None
    assert decoded["Repository"] == "a/b"


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


@pytest.mark.parametrize(("version", "status"), [("0.44", 200), ("0.44.1", 500)])
def test_an_invented_pr_number_fails_from_0_44_1(bare_repo, version, status):
    with LocalAtlantis(repo_clone_url={REPO: bare_repo}, version=version) as server:
        response = post(server, "/api/plan", request(PR=2))
    assert response.status_code == status
    if status == 500:
        assert error_of(response) == "GET https://api.github.com/repos/acme/vms/pulls/2: 404 Not Found []"


@pytest.mark.parametrize(("version", "empty"), [("0.35", None), ("0.36", []), ("0.44", [])])
def test_nothing_to_plan_is_a_200_with_no_project(bare_repo, version, empty):
    with LocalAtlantis(repo_clone_url={REPO: bare_repo}, version=version) as server:
        response = post(server, "/api/plan", {"Repository": REPO, "Ref": BRANCH, "Type": "Github"})
    assert response.status_code == 200
    assert response.json() == {"Error": None, "Failure": "", "ProjectResults": empty, "PlansDeleted": False}


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
    output = project["PlanSuccess"]["TerraformOutput"]
    assert output.endswith("\nPlan: 1 to add, 0 to change, 0 to destroy.\n")
    assert "# vsphere_virtual_machine.vm will be created" in output
    assert re.search(r'\+ name +  = "db-01"', output)


def test_apply_response_shape_holds_only_the_apply(atlantis):
    response = post(atlantis, "/api/apply", request(DHCP_DIR))
    assert response.status_code == 200
    [project] = response.json()["ProjectResults"]
    assert list(project) == PROJECT_KEYS
    assert (project["Command"], project["PlanSuccess"], project["Error"]) == (0, None, None)
    assert project["ApplySuccess"].endswith("Apply complete! Resources: 1 added, 0 changed, 0 destroyed.\n")
    assert atlantis.clones == [BRANCH]  # one fresh clone per call


def test_a_trailing_slash_is_trimmed_from_the_directory(atlantis):
    response = post(atlantis, "/api/plan", request(STATIC_DIR + "/"))
    assert response.json()["ProjectResults"][0]["RepoRelDir"] == STATIC_DIR


# --- Plans that fail as Terraform fails -------------------------------------------------------------------------


def failed_project(response: httpx.Response) -> dict:
    assert response.status_code == 500
    [project] = response.json()["ProjectResults"]
    assert (project["Failure"], project["PlanSuccess"]) == ("", None)
    return project


def test_missing_directory_is_atlantis_dir_not_exist_error(atlantis):
    project = failed_project(post(atlantis, "/api/plan", request("vms/DC0/nothere")))
    assert project["Error"] == {"RepoRelDir": "vms/DC0/nothere"}
    assert atlantis.errors[-1].text == "dir 'vms/DC0/nothere' does not exist"


def test_missing_backend_fails_the_plan(atlantis):
    project = failed_project(post(atlantis, "/api/plan", request(NO_BACKEND_DIR)))
    assert project["Error"] == {}  # a Go error: its text is only in Atlantis's log
    assert "Error: No backend configured" in atlantis.errors[-1].text
    assert "Error: No backend configured" in "\n".join(atlantis.log)


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


def test_undeclared_variable_reference(atlantis):
    failed_project(post(atlantis, "/api/plan", request(UNDECLARED_DIR)))
    assert (
        "Error: Reference to undeclared input variable\n\n"
        '  on outputs.tf line 2, in output "name":\n'
        '   2:   value = "${var.vm_nme}-x"\n\n'
        'An input variable with the name "vm_nme" has not been declared. Did you mean "vm_name"?\n'
    ) in atlantis.errors[-1].text


def test_unparsable_configuration_fails_with_the_parsers_text(atlantis):
    failed_project(post(atlantis, "/api/plan", request(BROKEN_DIR)))
    assert "Error: Invalid configuration syntax" in atlantis.errors[-1].text
    assert "broken.tf" in atlantis.errors[-1].text


def normalized(text: str) -> str:
    return " ".join(text.replace("╷", "").replace("│", "").replace("╵", "").split())


def test_diagnostics_match_real_terraform(tmp_path):
    """The texts above are Terraform's: a real `terraform plan -input=false` says the same (Terraform wraps lines)."""
    files = render(dhcp_spec())
    (tmp_path / "variables.tf").write_text(files["variables.tf"])
    (tmp_path / "main.tf").write_text('terraform {\n  backend "local" {}\n}\n')
    run_terraform(tmp_path, "init", "-input=false", "-no-color")
    real = run_terraform(tmp_path, "plan", "-input=false", "-no-color", check=False)
    ours = terraform_plan(tmp_path)
    assert not ours.ok and real.returncode == 1
    assert normalized(ours.error) == normalized(real.stderr)

    (tmp_path / "terraform.tfvars").write_text(files["terraform.tfvars"])
    (tmp_path / "outputs.tf").write_text('output "name" {\n  value = "${var.vm_nme}-${var.zzzzzz}"\n}\n')
    real = run_terraform(tmp_path, "plan", "-input=false", "-no-color", check=False)
    ours = terraform_plan(tmp_path)
    assert normalized(ours.error) == normalized(real.stderr)


# --- Plans that succeed, and applies ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("directory", "spec"),
    [(STATIC_DIR, static_spec()), (DHCP_DIR, dhcp_spec(vm_name="web02")), (HOSTILE_DIR, hostile_spec())],
)
def test_apply_passes_the_values_vmprov_rendered(bare_repo, directory, spec):
    calls = []

    def on_apply(path, values):
        calls.append((path, sorted(file.name for file in path.iterdir()), values))
        return "Apply complete! Resources: 1 added, 0 changed, 0 destroyed."

    with LocalAtlantis(repo_clone_url={REPO: bare_repo}, on_apply=on_apply) as server:
        assert post(server, "/api/plan", request(directory)).status_code == 200
        assert calls == []  # a plan applies nothing
        response = post(server, "/api/apply", request(directory))
    assert response.status_code == 200, server.errors
    [(path, files, values)] = calls  # the project's directory in the fresh clone, during the apply
    assert path.name == directory.rsplit("/", 1)[-1] and "machine.tf" in files
    expected = json.loads(json.dumps(tfvars_values(spec)))  # tuples as lists, as Terraform values come
    assert {name: values[name] for name in expected} == expected
    assert values["vsphere_user"] is None  # declared with a null default


def test_a_failing_apply_is_a_project_error(bare_repo):
    def on_apply(path, values):
        raise RuntimeError("Error: error cloning virtual machine: datastore full")

    with LocalAtlantis(repo_clone_url={REPO: bare_repo}, on_apply=on_apply) as server:
        response = post(server, "/api/apply", request())
    [project] = response.json()["ProjectResults"]
    assert (response.status_code, project["Error"], project["Command"], project["ApplySuccess"]) == (500, {}, 0, "")
    assert "datastore full" in server.errors[-1].text


def test_apply_plans_first_and_applies_nothing_when_the_plan_fails(bare_repo):
    calls = []
    with LocalAtlantis(repo_clone_url={REPO: bare_repo}, on_apply=lambda *args: calls.append(args)) as server:
        response = post(server, "/api/apply", request(NO_BACKEND_DIR))
    [project] = response.json()["ProjectResults"]
    assert (response.status_code, project["Error"], project["Command"]) == (500, {}, 0)
    assert calls == []
    assert "no plan found at path" in server.errors[-1].text


def test_existing_vm_plans_no_changes(bare_repo):
    with LocalAtlantis(repo_clone_url={REPO: bare_repo}, existing=lambda name: name == "db-01") as server:
        plan = post(server, "/api/plan", request()).json()["ProjectResults"][0]
        apply = post(server, "/api/apply", request()).json()["ProjectResults"][0]
    assert plan["PlanSuccess"]["TerraformOutput"].startswith(
        "No changes. Your infrastructure matches the configuration."
    )
    assert "Resources: 0 added, 0 changed, 0 destroyed." in apply["ApplySuccess"]


def test_injected_project_error(atlantis):
    atlantis.error_next()
    project = failed_project(post(atlantis, "/api/plan", request()))
    assert project["Error"] == {}
    assert post(atlantis, "/api/plan", request()).status_code == 200  # only the next call


def test_concurrent_calls_are_serialized_and_recorded_as_overlapping(atlantis):
    """Two raw calls at once: Atlantis's PR-0 directory would be shared; the server notes it (the client must not)."""
    atlantis.delay = 0.3
    responses = []
    threads = [threading.Thread(target=lambda: responses.append(post(atlantis, "/api/plan", request()))) for _ in "ab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [response.status_code for response in responses] == [200, 200]
    assert atlantis.overlaps == 1 and atlantis.max_in_flight == 2


def test_locks_are_listed_while_a_call_runs(atlantis):
    atlantis.delay = 0.4
    thread = threading.Thread(target=post, args=(atlantis, "/api/plan", request()))
    thread.start()
    try:
        for _ in range(50):
            locks = HTTP.get(atlantis.url + "/api/locks").json()["Locks"]
            if locks:
                break
            threading.Event().wait(0.02)
    finally:
        thread.join()
    assert locks[0]["ProjectRepo"] == REPO and locks[0]["ProjectRepoPath"] == STATIC_DIR and locks[0]["PullID"] == "0"


def test_requests_are_recorded_without_the_token(atlantis):
    post(atlantis, "/api/plan", request())
    [record] = atlantis.requests
    assert (record.method, record.path, record.status, record.token) == ("POST", "/api/plan", 200, "matching")
    assert all(name.lower() != "x-atlantis-token" for name, _ in record.headers)
    assert DEFAULT_SECRET.encode() not in record.body and DEFAULT_SECRET not in repr(record)


# --- Helpers of the server ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "quoted"),
    [
        (b'a"b\\c', '"a\\"b\\\\c"'),
        (b"\x07\x08\x0c\n\r\t\x0b", '"\\a\\b\\f\\n\\r\\t\\v"'),
        (b"\x00\x1f\x7f", '"\\x00\\x1f\\x7f"'),
        ("café 😀".encode(), '"café 😀"'),
        (b"\xff\xc3", '"\\xff\\xc3"'),
        ("\u00a0\u2028\U000e0001".encode(), '"\\u00a0\\u2028\\U000e0001"'),
    ],
)
def test_go_quote(raw, quoted):
    assert go_quote(raw) == quoted


def test_tfvars_parser_reads_back_every_literal_vmprov_writes():
    for spec in (static_spec(), dhcp_spec(), hostile_spec()):
        values = parse_tfvars(render(spec)["terraform.tfvars"], "terraform.tfvars")
        assert values == json.loads(json.dumps(tfvars_values(spec)))


def test_tfvars_parser_refuses_what_terraform_refuses():
    with pytest.raises(Exception, match="Variables not allowed"):
        parse_tfvars('name = "${var.other}"\n', "terraform.tfvars")
    with pytest.raises(Exception, match="Invalid expression"):
        parse_tfvars("name = \n", "terraform.tfvars")
    assert parse_tfvars("a = <<-EOT\n    x $${y}\n    EOT\nb = { k = [1, 2.5, null] }\n", "t.tfvars") == {
        "a": "x ${y}\n",
        "b": {"k": [1, 2.5, None]},
    }


# --- The apply hook that clones in vcsim ---------------------------------------------------------------------------


@pytest.mark.vcsim
def test_clone_in_vcsim_clones_customizes_and_powers_on(vcsim_factory):
    vcsim = vcsim_factory(templates=1, folder=1)
    with admin_session(vcsim) as si:
        template = next(vm for vm in find_all(si, vim.VirtualMachine) if vm.config.template)
        uuid = template.config.uuid
        cluster = find(si, vim.ClusterComputeResource, "DC0_C0")
        pool, datastore = cluster.resourcePool._moId, cluster.datastore[0]._moId
        network = find(si, vim.DistributedVirtualPortgroup, "DC0_DVPG0")._moId
    common = {
        "template_uuid": uuid,
        "resource_pool_id": pool,
        "datastore_id": datastore,
        "network_id": network,
        "num_cpus": 3,
        "memory_mb": 3072,
        "disks": [{"size": 30, "unit_number": 0, "thin_provisioned": True, "eagerly_scrub": False}],
        "domain": "example.com",
        "annotation": "requested by alice",
    }
    static = {**common, "vm_name": "web-static", "folder": "F0", "ipv4_address": "10.20.30.40", "ipv4_prefix": 24}
    static |= {"ipv4_gateway": "10.20.30.1", "dns_servers": ["10.20.0.53"]}
    dhcp = {**common, "vm_name": "web-dhcp", "folder": "", "ipv4_address": None, "ipv4_prefix": None}
    dhcp |= {"ipv4_gateway": None, "dns_servers": []}
    assert clone_in_vcsim(vcsim, static).endswith("Apply complete! Resources: 1 added, 0 changed, 0 destroyed.\n")
    clone_in_vcsim(vcsim, dhcp)
    with admin_session(vcsim) as si:
        vm = find(si, vim.VirtualMachine, "web-static")
        assert (vm.runtime.powerState, vm.guest.ipAddress, vm.guest.hostName) == (
            "poweredOn",
            "10.20.30.40",
            "web-static",
        )
        assert (vm.config.hardware.numCPU, vm.config.hardware.memoryMB, vm.parent.name) == (3, 3072, "F0")
        assert (vm.resourcePool._moId, [n.name for n in vm.network]) == (pool, ["DC0_DVPG0"])
        assert vm.config.annotation == "requested by alice"
        disk = next(d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk))
        assert disk.capacityInKB == 30 * 1024 * 1024
        other = find(si, vim.VirtualMachine, "web-dhcp")
        assert (other.runtime.powerState, other.parent.name, other.guest.hostName) == ("poweredOn", "vm", "web-dhcp")
    with pytest.raises(LookupError, match="no template"):
        clone_in_vcsim(vcsim, {**static, "template_uuid": "00000000-0000-0000-0000-000000000000"})


def find_all(si, vim_type):
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim_type], True)
    try:
        return list(view.view)
    finally:
        view.DestroyView()
