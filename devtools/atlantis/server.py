"""A local double of Atlantis's API for tests and the demo: `LocalAtlantis`, on 127.0.0.1 in a background thread.

Every answer comes from a fixture in answers/ naming the Atlantis source it was read from (v0.44.0; v0.45.0's where
one changed and `version` asks for it). Routes: `POST /api/plan` and `POST /api/apply` (what vmprov calls). Checks in
Atlantis's order (api_controller.go, apiParseAndValidate): API disabled, token, body, JSON, missing fields, VCS type,
clone URL (a repository this double serves), repository name, allowlist. Then, like Atlantis's PR-0 working
directory, one call at a time clones the branch afresh and plans each `Paths` entry (terraform.py); an apply plans
again, then carries the plan out through `provider`. A call arriving while another runs counts as an overlap. A
project's Go error is written `{}` in the answer (a missing directory: `{"RepoRelDir": ...}`); its text goes to
`errors`, as only Atlantis's log shows it; any failed project makes the answer a 500.

Faults: `respond_next(status, body)`, `drop_next(before_work=False)` (close the connection without an answer, after
the work unless `before_work`), `error_next()` (every project of the next call fails), `delay` (seconds of work).
"""

from __future__ import annotations

import fnmatch
import json
import os
import subprocess
import sys
import tempfile
import threading
import traceback
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from devtools.atlantis import terraform
from devtools.atlantis.fixtures import answer, fixture

TOKEN_HEADER = "X-Atlantis-Token"
DEFAULT_SECRET = "local-atlantis-api-secret"
VCS_TYPES = ("Github", "Gitlab", "BitbucketCloud", "BitbucketServer", "AzureDevops", "Gitea")
NOT_IMPLEMENTED_TYPES = ("BitbucketCloud", "BitbucketServer", "AzureDevops")
VCS_HOSTS = {"Github": "github.com", "Gitlab": "gitlab.com", "Gitea": "gitea.com"}
ROUTES = ("/api/plan", "/api/apply")
# APIRequest's fields as Go's encoding/json fills them: keys match whatever their case, unknown keys are dropped.
FIELDS = {"repository": str, "ref": str, "type": str, "pr": int, "projects": list, "paths": list}
NAMES = {"pr": "PR"}


@dataclass
class RecordedRequest:
    """One request as the double saw it, without the token header (`token`: "absent", "matching" or "wrong")."""

    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes
    token: str
    status: int | None = None  # None: the connection was closed without an answer
    response: bytes = b""
    overlapped: bool = False


@dataclass
class ProjectError:
    """A project's Go error: `{}` in the answer, its text only in Atlantis's log."""

    command: str
    directory: str
    workspace: str
    text: str


@dataclass
class Answer:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    drop: bool = False  # close the connection without answering


def parse_request(body: bytes) -> tuple[dict[str, Any], str | None]:
    """The APIRequest Atlantis decodes from `body`, and why it cannot (None when it can). A null leaves a field
    empty; a value of the wrong type is a parse error."""
    request: dict[str, Any] = {"Repository": "", "Ref": "", "Type": "", "PR": 0, "Projects": [], "Paths": []}
    try:
        document = json.loads(body.decode("utf-8"))
    except ValueError as error:  # UnicodeDecodeError included
        return request, f"invalid JSON ({error})"
    if not isinstance(document, dict | None):
        return request, f"a JSON {type(document).__name__} is not an APIRequest object"
    for key, value in (document or {}).items():
        kind = FIELDS.get(key.lower())
        if kind and value is not None:
            if not isinstance(value, kind) or isinstance(value, bool):
                return request, f"{key} is not a JSON {'number' if kind is int else kind.__name__}"
            request[NAMES.get(key.lower(), key.lower().capitalize())] = value
    if not all(isinstance(project, str) for project in request["Projects"]):
        return request, "Projects holds a value that is not a string"
    for index, entry in enumerate(request["Paths"]):
        fields = {key.lower(): value for key, value in entry.items()} if isinstance(entry, dict) else {}
        path = {name: fields.get(name.lower()) or "" for name in ("Directory", "Workspace")}
        if not isinstance(entry, dict) or not all(isinstance(value, str) for value in path.values()):
            return request, "Paths holds an entry that is not {Directory: string, Workspace: string}"
        request["Paths"][index] = path
    return request, None


class LocalAtlantis:
    """Atlantis's API on 127.0.0.1:<port> (a free one by default). Use as a context manager or start()/stop()."""

    def __init__(
        self,
        *,
        api_secret: str | None = DEFAULT_SECRET,
        repo_clone_url: Mapping[str, str | Path] | None = None,
        repo_allowlist: Iterable[str] | None = None,
        version: str = "0.44.0",
        var_files: Iterable[str] = (),
        provider: Any = None,
    ) -> None:
        self.api_secret, self.version, self.delay = api_secret, version, 0.0
        self.repo_clone_url = {repo: str(url) for repo, url in (repo_clone_url or {}).items()}
        self.repo_allowlist = list(self.repo_clone_url if repo_allowlist is None else repo_allowlist)
        self.var_files = list(var_files)  # the server-side workflow's -var-file arguments
        self.provider = provider or terraform.SimulatedProvider()
        self.states: terraform.States = {}
        self.requests: list[RecordedRequest] = []
        self.errors: list[ProjectError] = []
        self.applied: list[tuple[str, dict[str, Any]]] = []
        self.clones: list[str] = []
        self.overlaps = self.max_in_flight = self._in_flight = 0
        self._faults: list[tuple[str, tuple[str, ...], Answer | None]] = []
        self._state, self._working_dir = threading.Lock(), threading.Lock()
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None

    def start(self, port: int = 0) -> LocalAtlantis:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), type("Handler", (_Handler,), {"atlantis": self}))
        self._httpd.daemon_threads, self._httpd.handle_error = True, _report_error
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> LocalAtlantis:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._httpd is not None, "start() the server first"
        return "http://{}:{}".format(*self._httpd.server_address[:2])

    def commands(self) -> list[RecordedRequest]:
        """The plan and apply requests received so far."""
        return [record for record in self.requests if record.path in ("/api/plan", "/api/apply")]

    def respond_next(self, status: int, body: bytes | str | Mapping, *, commands=("plan", "apply")) -> None:
        """The next plan/apply request (of `commands`) gets this answer instead of being processed."""
        data = _json(dict(body)) if isinstance(body, Mapping) else body.encode() if isinstance(body, str) else body
        self._faults.append(("respond", tuple(commands), Answer(status, data)))

    def drop_next(self, *, before_work: bool = False, commands=("plan", "apply")) -> None:
        """Close the next plan/apply connection without answering; by default after the work (an apply happened)."""
        self._faults.append(("drop before" if before_work else "drop", tuple(commands), None))

    def error_next(self, *, commands=("plan", "apply")) -> None:
        """Every project of the next plan/apply fails with a Go error (`{}`)."""
        self._faults.append(("error", tuple(commands), None))

    def _answer(self, name: str, **fields: Any) -> Answer:
        found = answer(name, self.version, **fields)
        return Answer(found["status"], _json(found["body"]))

    def command(self, record: RecordedRequest, token: str | None, body: bytes | None) -> Answer:
        """Atlantis's Plan/Apply handler: the checks in order, then the work. `body` None: it could not be read."""
        command = record.path.rsplit("/", 1)[-1]
        with self._state:
            record.overlapped = self._in_flight > 0
            self.overlaps += record.overlapped
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
            fault = next((fault for fault in self._faults if command in fault[1]), None)
            if fault:
                self._faults.remove(fault)
        kind, _commands, injected = fault or ("", (), None)
        try:
            if injected or kind == "drop before":
                return injected or Answer(0, drop=True)
            request, refusal = self._validate(token, body)
            if refusal:
                return refusal
            with self._working_dir:
                self._stopping.wait(self.delay)
                result = self._work(command, request, kind == "error")
            return Answer(0, drop=True) if kind == "drop" else result
        finally:
            with self._state:
                self._in_flight -= 1

    def _validate(self, token: str | None, body: bytes | None) -> tuple[dict[str, Any], Answer | None]:
        if not self.api_secret:
            return {}, self._answer("api-disabled")
        if token != self.api_secret:
            return {}, self._answer("token-mismatch")
        if body is None:
            return {}, self._answer("unreadable-body")
        request, problem = parse_request(body)
        repository, kind = request["Repository"], request["Type"]
        owner, _, name = repository.rpartition("/")
        full_name = f"{VCS_HOSTS.get(kind, '')}/{repository}"
        if problem:
            return request, self._answer("unparsable-body", detail=problem)
        if not (repository and request["Ref"] and kind):
            raw = json.dumps(body.decode("utf-8", errors="replace"), ensure_ascii=False)
            return request, self._answer("missing-fields", raw_body=raw)
        if kind not in VCS_TYPES:
            return request, self._answer("invalid-vcs-type", quoted_type=json.dumps(kind))
        if kind in NOT_IMPLEMENTED_TYPES:
            return request, self._answer("clone-url-not-implemented")
        if repository not in self.repo_clone_url:
            return request, self._answer("clone-url-not-found", repository=repository)
        if not owner or not name:
            quoted = {"quoted_repository": repository, "quoted_owner": owner, "quoted_name": name}
            return request, self._answer("invalid-repo-name", **{key: json.dumps(v) for key, v in quoted.items()})
        if not any(
            pattern == "*" or fnmatch.fnmatchcase(repository, pattern) or fnmatch.fnmatchcase(full_name, pattern)
            for pattern in self.repo_allowlist
        ):
            return request, self._answer("repo-not-allowlisted")
        return request, None

    def _work(self, command: str, request: dict[str, Any], inject_error: bool) -> Answer:
        with tempfile.TemporaryDirectory(prefix="local-atlantis-", ignore_cleanup_errors=True) as clone_dir:
            root = Path(clone_dir, "default")
            url = self.repo_clone_url[request["Repository"]]
            url = url if "://" in url else Path(url).resolve().as_uri()  # file:// so that --depth is honoured
            args = ["git", "clone", "--depth=1", "--branch", request["Ref"], "--single-branch", url, str(root)]
            environment = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1"}
            cloned = subprocess.run(args, capture_output=True, text=True, env=environment)
            self.clones.append(request["Ref"])
            if cloned.returncode:
                output, status = cloned.stdout + cloned.stderr, f"exit status {cloned.returncode}"
                return self._answer("clone-failed", command=" ".join(args), output=output, exit=status)
            if request["Projects"]:
                reason = "cannot specify a project name unless an atlantis.yaml file exists to configure projects"
                if (root / "atlantis.yaml").is_file():
                    reason = "the local Atlantis does not read atlantis.yaml"
                return self._answer("build-command-failed", reason=reason)
            projects = []
            for path in request["Paths"]:
                directory, workspace = path["Directory"].rstrip("/") or ".", path["Workspace"] or "default"
                planned, run = self._plan(request, root, directory, workspace, inject_error and command == "plan")
                projects.append(self._apply(root, planned, run, inject_error) if command == "apply" else planned)
        result = answer("result", self.version)
        result["body"]["ProjectResults"] = projects
        return Answer(result["status"] if all(map(_succeeded, projects)) else 500, _json(result["body"]))

    def _project(self, command: str, directory: str, workspace: str) -> dict[str, Any]:
        project = answer("project", self.version)
        return project["body"] | {
            "Command": project["commands"][command],
            "RepoRelDir": directory,
            "Workspace": workspace,
        }

    def _fail(self, project: dict[str, Any], command: str, text: str | None = None) -> dict[str, Any]:
        """The project failed with a Go error: `{}` in the answer (with no `text`: Atlantis's DirNotExistErr)."""
        directory = project["RepoRelDir"]
        name = "project-error" if text else "project-dir-not-exist"
        found = answer(name, self.version, directory=directory, quoted_directory=json.dumps(directory))
        project["Error"] = found["error"]
        self.errors.append(ProjectError(command, directory, project["Workspace"], text or found["log"]))
        return project

    def _plan(self, request: dict, root: Path, directory: str, workspace: str, inject_error: bool) -> tuple[dict, Any]:
        project, path = self._project("plan", directory, workspace), Path(os.path.normpath(root / directory))
        if path != root and root not in path.parents:
            return self._fail(project, "plan", f"directory {directory!r} is outside the repository"), None
        if not path.is_dir():
            return self._fail(project, "plan"), None
        if inject_error:
            return self._fail(project, "plan", "injected error"), None
        run = terraform.plan(path, self.var_files, self.states, self.provider)
        if not run.ok:
            return self._fail(project, "plan", run.error), None
        flags = f" -d {json.dumps(directory) if ' ' in directory else directory}"
        flags += f" -w {workspace}" if workspace != "default" else ""
        lock_id = quote(f"{request['Repository']}/{directory}/{workspace}", safe="")
        fields = {"output": run.output, "atlantis_url": self.url, "lock_id": lock_id, "flags": flags}
        project["PlanSuccess"] = answer("plan-success", self.version, **fields)["body"]
        return project, run

    def _apply(self, root: Path, planned: dict, run: terraform.Run | None, inject_error: bool) -> dict[str, Any]:
        directory, workspace = planned["RepoRelDir"], planned["Workspace"]
        project = self._project("apply", directory, workspace)
        if run is None and planned["Error"] == {"RepoRelDir": directory}:
            return self._fail(project, "apply")
        if run is None:
            text = f'no plan found at path "{directory}" and workspace "{workspace}"–did you run plan?'  # noqa: RUF001 (Atlantis's)
            return self._fail(project, "apply", text)
        if inject_error:
            return self._fail(project, "apply", "injected error")
        try:
            project["ApplySuccess"] = terraform.apply(run, root / directory, self.states, self.provider)
        except Exception as error:  # the provider's error: `terraform apply` failed
            return self._fail(project, "apply", f"running terraform apply in {directory}: {error}")
        self.applied.append((directory, dict(run.values)))
        return project


def _report_error(request: Any, client_address: Any) -> None:
    """A client that gave up (a timeout test) makes the late answer fail: expected. Anything else is a bug here."""
    if not isinstance(sys.exc_info()[1], ConnectionError):
        traceback.print_exc()


def _json(value: Any) -> bytes:
    """JSON as Atlantis writes it: compact (json.Marshal), then a newline (fmt.Fprintln)."""
    return (json.dumps(value, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


def _succeeded(project: dict[str, Any]) -> bool:
    """ProjectResult.IsSuccessful, with no Error or Failure (Result.HasErrors)."""
    succeeded = project["PlanSuccess"] is not None or bool(project["ApplySuccess"])
    return succeeded and project["Error"] is None and not project["Failure"]


class _Handler(BaseHTTPRequestHandler):
    atlantis: LocalAtlantis
    protocol_version, server_version, sys_version = "HTTP/1.1", "LocalAtlantis", ""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _read_body(self) -> bytes | None:
        """The request body; None when it ends before its Content-Length."""
        try:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            return body if len(body) == length else None
        except (OSError, ValueError):
            return None

    def _handle(self) -> None:
        atlantis, path, token = self.atlantis, urlsplit(self.path).path, self.headers.get(TOKEN_HEADER)
        body = self._read_body() if self.command in ("POST", "PUT", "PATCH") else b""
        headers = [(name, value) for name, value in self.headers.items() if name.lower() != TOKEN_HEADER.lower()]
        matching = "absent" if token is None else ("matching" if token == atlantis.api_secret else "wrong")
        record = RecordedRequest(self.command, path, headers, body or b"", matching)
        with atlantis._state:
            atlantis.requests.append(record)
        routes = fixture("routes")
        if path not in ROUTES:
            found = Answer(routes["status"], routes["body"].encode(), routes["content_type"])
        elif self.command != "POST":
            found = Answer(routes["method_not_allowed"], content_type="")
        else:
            found = atlantis.command(record, token, body)
        self.close_connection = body is None or found.drop
        if not found.drop:
            record.status, record.response = found.status, found.body
            self.send_response(found.status)
            if found.content_type:
                self.send_header("Content-Type", found.content_type)
            self.send_header("Content-Length", str(len(found.body)))
            self.end_headers()
            self.wfile.write(found.body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle
