"""A local double of Atlantis's API for tests and the demo: `LocalAtlantis`, on 127.0.0.1 in a background thread.

It answers as Atlantis v0.44.0 does (v0.45.0's answer where one changed and `version` asks for it); every answer
comes from a fixture in answers/ whose `source` names the Atlantis file it was read from (see fixtures.py).

- Routes: `POST /api/plan`, `POST /api/apply`, `GET /api/locks` (no token); another method 405, another path 404.
- Checks, in Atlantis's order (api_controller.go, apiParseAndValidate): API disabled (no secret), token, body read,
  JSON, missing `Repository`/`Ref`/`Type`, VCS type, clone URL (a repository this double serves), repository name,
  allowlist. Texts that quote what Go decoded are simplified (see the fixtures' notes).
- Then, like Atlantis's PR-0 working directory, a call takes one lock, clones the branch afresh (`git clone --depth=1
  --branch <Ref> --single-branch`) and plans each `Paths` entry as Terraform would (terraform.py) against the state
  of the directory's backend (state.py: the double remembers what it created, as a backend does). An apply plans
  again, then carries out that plan through `provider` (by default `SimulatedProvider`, which touches nothing;
  `vcenter.VCenterProvider` clones, resizes and destroys in vcsim). A call arriving while another runs is counted as
  an overlap: Atlantis would share its working directory.
- A project's error is a Go error, written `{}` (a missing directory `{"RepoRelDir": ...}`); its text goes to
  `errors`, as only Atlantis's log shows it. Any failed project makes the answer a 500.

Fault injection: `respond_next(status, body)`, `drop_next(before_work=False)` (close the connection without an
answer, after the work unless `before_work`), `error_next()` (every project of the next call fails), `delay`.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import traceback
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from devtools.atlantis import terraform
from devtools.atlantis.fixtures import answer, fill, fixture
from devtools.atlantis.state import Provider, SimulatedProvider, StateStore

TOKEN_HEADER = "X-Atlantis-Token"
DEFAULT_SECRET = "local-atlantis-api-secret"
VCS_TYPES = ("Github", "Gitlab", "BitbucketCloud", "BitbucketServer", "AzureDevops", "Gitea")
NOT_IMPLEMENTED_TYPES = ("BitbucketCloud", "BitbucketServer", "AzureDevops")
VCS_HOSTS = {"Github": "github.com", "Gitlab": "gitlab.com", "Gitea": "gitea.com"}
ROUTES = {"/api/plan": "POST", "/api/apply": "POST", "/api/locks": "GET"}
# APIRequest's fields as Go's encoding/json fills them: keys match whatever their case, unknown keys are dropped.
_FIELDS = {"repository": ("Repository", str), "ref": ("Ref", str), "type": ("Type", str), "pr": ("PR", int)}
_FIELDS |= {"projects": ("Projects", list), "paths": ("Paths", list)}


@dataclass
class RecordedRequest:
    """One request as the double saw it; the token header is left out (`token` says whether one matched)."""

    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes
    token: str  # "absent", "matching" or "wrong"
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
class _Answer:
    status: int
    body: bytes
    content_type: str = "application/json"
    drop: bool = False  # close the connection without answering


@dataclass
class _Fault:
    kind: str  # "respond", "drop" or "error"
    commands: tuple[str, ...]
    answer: _Answer | None = None
    before_work: bool = False


def parse_request(body: bytes) -> tuple[dict[str, Any], str | None]:
    """The APIRequest Atlantis decodes from `body`, and why it cannot be decoded (None when it can). A null leaves a
    field empty; a value of the wrong type is a parse error, as in Go."""
    request: dict[str, Any] = {"Repository": "", "Ref": "", "Type": "", "PR": 0, "Projects": [], "Paths": []}
    try:
        document = json.loads(body.decode("utf-8"))
    except ValueError as error:  # UnicodeDecodeError included
        return request, f"invalid JSON ({error})"
    if not isinstance(document, dict | None):
        return request, f"a JSON {type(document).__name__} is not an APIRequest object"
    for key, value in (document or {}).items():
        name, kind = _FIELDS.get(key.lower(), (None, None))
        if name is not None and value is not None:
            if not isinstance(value, kind) or isinstance(value, bool):
                return request, f"{key} is not a JSON {'number' if kind is int else kind.__name__}"
            request[name] = value
    if not all(isinstance(project, str) for project in request["Projects"]):
        return request, "Projects holds a value that is not a string"
    for index, entry in enumerate(request["Paths"]):
        fields = {key.lower(): value for key, value in entry.items()} if isinstance(entry, dict) else None
        path = {name: (fields or {}).get(name.lower()) or "" for name in ("Directory", "Workspace")}
        if fields is None or not all(isinstance(value, str) for value in path.values()):
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
        provider: Provider | None = None,
    ) -> None:
        self.api_secret = api_secret
        self.repo_clone_url = {repo: str(url) for repo, url in (repo_clone_url or {}).items()}
        self.repo_allowlist = list(repo_allowlist) if repo_allowlist is not None else list(self.repo_clone_url)
        self.version = version
        self.var_files = list(var_files)  # the server-side workflow's -var-file arguments
        self.provider: Provider = provider or SimulatedProvider()
        self.states = StateStore()
        self.delay = 0.0

        self.requests: list[RecordedRequest] = []
        self.errors: list[ProjectError] = []
        self.applied: list[tuple[str, dict[str, Any]]] = []
        self.clones: list[str] = []
        self.overlaps = 0
        self.max_in_flight = 0

        self._faults: list[_Fault] = []
        self._state = threading.Lock()
        self._working_dir = threading.Lock()
        self._in_flight = 0
        self._locks: list[dict[str, str]] = []
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None

    def start(self, port: int = 0) -> LocalAtlantis:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), type("Handler", (_Handler,), {"atlantis": self}))
        self._httpd.daemon_threads = True
        self._httpd.handle_error = _report_error
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
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def commands(self) -> list[RecordedRequest]:
        """The plan and apply requests received so far."""
        return [record for record in self.requests if record.path in ("/api/plan", "/api/apply")]

    # -- fault injection --

    def respond_next(
        self, status: int, body: bytes | str | Mapping[str, Any], *, commands: tuple[str, ...] = ("plan", "apply")
    ) -> None:
        """The next plan/apply request gets this answer instead of being processed."""
        data = _json(dict(body)) if isinstance(body, Mapping) else body.encode() if isinstance(body, str) else body
        self._faults.append(_Fault("respond", commands, answer=_Answer(status, data)))

    def drop_next(self, *, before_work: bool = False, commands: tuple[str, ...] = ("plan", "apply")) -> None:
        """Close the next plan/apply connection without answering; by default after the work (an apply happened)."""
        self._faults.append(_Fault("drop", commands, before_work=before_work))

    def error_next(self, *, commands: tuple[str, ...] = ("plan", "apply")) -> None:
        """Every project of the next plan/apply fails with a Go error (`{}`)."""
        self._faults.append(_Fault("error", commands))

    # -- answers --

    def _answer(self, name: str, **fields: Any) -> _Answer:
        found = answer(name, self.version, **fields)
        return _Answer(found["status"], _json(found["body"]))

    def locks(self) -> _Answer:
        """ListLocks: the locks of the call that is running, if any."""
        body = answer("locks", self.version)["body"]
        with self._state:
            body["Locks"] = [fill(fixture("locks")["lock"], lock) for lock in self._locks] or None
        return _Answer(200, _json(body))

    def command(self, record: RecordedRequest, token: str | None, body: bytes | None) -> _Answer:
        """Atlantis's Plan/Apply handler: the checks in order, then the work. `body` None: it could not be read."""
        with self._state:
            record.overlapped = self._in_flight > 0
            self.overlaps += record.overlapped
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            return self._command(record.path.rsplit("/", 1)[-1], token, body)
        finally:
            with self._state:
                self._in_flight -= 1

    def _command(self, command: str, token: str | None, body: bytes | None) -> _Answer:
        with self._state:
            fault = next((fault for fault in self._faults if command in fault.commands), None)
            if fault:
                self._faults.remove(fault)
        if fault and (fault.answer or fault.before_work):
            return fault.answer or _Answer(0, b"", drop=True)
        request, refusal = self._validate(token, body)
        if refusal:
            return refusal
        with self._working_directory(request):
            self._stopping.wait(self.delay)
            result = self._work(command, request, inject_error=bool(fault and fault.kind == "error"))
        return _Answer(0, b"", drop=True) if fault and fault.kind == "drop" else result

    def _validate(self, token: str | None, body: bytes | None) -> tuple[dict[str, Any], _Answer | None]:
        if not self.api_secret:
            return {}, self._answer("api-disabled")
        if token != self.api_secret:
            return {}, self._answer("token-mismatch")
        if body is None:
            return {}, self._answer("unreadable-body")
        request, problem = parse_request(body)
        if problem:
            return request, self._answer("unparsable-body", detail=problem)
        if not (request["Repository"] and request["Ref"] and request["Type"]):
            raw = json.dumps(body.decode("utf-8", errors="replace"), ensure_ascii=False)
            return request, self._answer("missing-fields", raw_body=raw)
        if request["Type"] not in VCS_TYPES:
            return request, self._answer("invalid-vcs-type", quoted_type=json.dumps(request["Type"]))
        if request["Type"] in NOT_IMPLEMENTED_TYPES:
            return request, self._answer("clone-url-not-implemented")
        repository = request["Repository"]
        if repository not in self.repo_clone_url:
            return request, self._answer("clone-url-not-found", repository=repository)
        owner, _, name = repository.rpartition("/")
        if not owner or not name:
            quoted = {"repository": repository, "owner": owner, "name": name}
            return request, self._answer(
                "invalid-repo-name", **{f"quoted_{k}": json.dumps(v) for k, v in quoted.items()}
            )
        full_name = f"{VCS_HOSTS.get(request['Type'], '')}/{repository}"
        if not any(
            pattern == "*" or fnmatch.fnmatchcase(repository, pattern) or fnmatch.fnmatchcase(full_name, pattern)
            for pattern in self.repo_allowlist
        ):
            return request, self._answer("repo-not-allowlisted")
        return request, None

    # -- the work --

    @contextmanager
    def _working_directory(self, request: dict[str, Any]) -> Iterator[None]:
        """Atlantis's PR-0 working directory: one call at a time, its project locks listed meanwhile."""
        with self._working_dir:
            with self._state:
                for path in request["Paths"]:
                    lock = {"repository": request["Repository"], "directory": path["Directory"].rstrip("/") or "."}
                    lock["workspace"] = path["Workspace"] or "default"
                    lock |= {"name": "/".join(lock.values()), "pull": str(request["PR"])}
                    lock["time"] = datetime.now(UTC).isoformat()
                    self._locks.append(lock)
            try:
                yield
            finally:
                with self._state:
                    self._locks.clear()

    def _clone(self, request: dict[str, Any], target: Path) -> _Answer | None:
        """git clone as Atlantis up to v0.44 does; Atlantis's 500 when git fails."""
        url = self.repo_clone_url[request["Repository"]]
        url = url if "://" in url else Path(url).resolve().as_uri()  # file:// so that --depth is honoured
        args = ["git", "clone", "--depth=1", "--branch", request["Ref"], "--single-branch", url, str(target)]
        environment = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1"}
        result = subprocess.run(args, capture_output=True, text=True, env=environment)
        self.clones.append(request["Ref"])
        if result.returncode == 0:
            return None
        exit_status = f"exit status {result.returncode}"
        return self._answer(
            "clone-failed", command=" ".join(args), output=result.stdout + result.stderr, exit=exit_status
        )

    def _work(self, command: str, request: dict[str, Any], inject_error: bool) -> _Answer:
        clone_dir = tempfile.mkdtemp(prefix="local-atlantis-")
        try:
            root = Path(clone_dir, "default")
            refusal = self._clone(request, root)
            if refusal:
                return refusal
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
            return _Answer(result["status"] if all(map(_succeeded, projects)) else 500, _json(result["body"]))
        finally:
            shutil.rmtree(clone_dir, ignore_errors=True)

    def _project(self, command: str, directory: str, workspace: str) -> dict[str, Any]:
        project = answer("project", self.version)
        return {
            **project["body"],
            "Command": project["commands"][command],
            "RepoRelDir": directory,
            "Workspace": workspace,
        }

    def _fail(self, project: dict[str, Any], command: str, text: str | None = None) -> None:
        """The project failed with a Go error: `{}` in the answer (a missing directory: Atlantis's DirNotExistErr),
        `text` in the log."""
        directory = project["RepoRelDir"]
        name = "project-error" if text else "project-dir-not-exist"
        found = answer(name, self.version, directory=directory, quoted_directory=json.dumps(directory))
        project["Error"] = found["error"]
        self.errors.append(ProjectError(command, directory, project["Workspace"], text or found["log"]))

    def _plan(
        self, request: dict[str, Any], root: Path, directory: str, workspace: str, inject_error: bool
    ) -> tuple[dict[str, Any], terraform.TerraformRun | None]:
        project = self._project("plan", directory, workspace)
        path = Path(os.path.normpath(root / directory))
        if path != root and root not in path.parents:
            self._fail(project, "plan", f"directory {directory!r} is outside the repository")
        elif not path.is_dir():
            self._fail(project, "plan")
        elif inject_error:
            self._fail(project, "plan", "injected error")
        elif not (run := terraform.plan(path, self.var_files, self.states, self.provider)).ok:
            self._fail(project, "plan", run.error)
        else:
            flags = f" -d {json.dumps(directory) if ' ' in directory else directory}"
            flags += f" -w {workspace}" if workspace != "default" else ""
            lock_id = quote(f"{request['Repository']}/{directory}/{workspace}", safe="")
            fields = {"output": run.output, "atlantis_url": self.url, "lock_id": lock_id, "flags": flags}
            project["PlanSuccess"] = answer("plan-success", self.version, **fields)["body"]
            return project, run
        return project, None

    def _apply(
        self, root: Path, planned: dict[str, Any], run: terraform.TerraformRun | None, inject_error: bool
    ) -> dict[str, Any]:
        directory, workspace = planned["RepoRelDir"], planned["Workspace"]
        project = self._project("apply", directory, workspace)
        if run is None and planned["Error"] == {"RepoRelDir": directory}:
            self._fail(project, "apply")
        elif run is None:
            text = f'no plan found at path "{directory}" and workspace "{workspace}"–did you run plan?'  # noqa: RUF001 (Atlantis's)
            self._fail(project, "apply", text)
        elif inject_error:
            self._fail(project, "apply", "injected error")
        else:
            try:
                project["ApplySuccess"] = terraform.apply(run, root / directory, self.states, self.provider)
            except Exception as error:  # the provider's error: `terraform apply` failed
                self._fail(project, "apply", f"running terraform apply in {directory}: {error}")
                return project
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
    protocol_version = "HTTP/1.1"
    server_version = "LocalAtlantis"
    sys_version = ""

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
        record = RecordedRequest(
            method=self.command,
            path=path,
            headers=[(name, value) for name, value in self.headers.items() if name.lower() != TOKEN_HEADER.lower()],
            body=body or b"",
            token="absent" if token is None else ("matching" if token == atlantis.api_secret else "wrong"),
        )
        with atlantis._state:
            atlantis.requests.append(record)
        routes = fixture("routes")
        if path not in ROUTES:
            answer = _Answer(routes["status"], routes["body"].encode(), routes["content_type"])
        elif ROUTES[path] != self.command:
            answer = _Answer(routes["method_not_allowed"], b"", content_type="")
        else:
            answer = atlantis.locks() if path == "/api/locks" else atlantis.command(record, token, body)
        self.close_connection = body is None or answer.drop
        if not answer.drop:
            record.status, record.response = answer.status, answer.body
            self.send_response(answer.status)
            if answer.content_type:
                self.send_header("Content-Type", answer.content_type)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle
