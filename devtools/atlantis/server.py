"""`LocalAtlantis`: Atlantis's API (`POST /api/plan`, `POST /api/apply`) on 127.0.0.1, in a background thread.

Each answer is a fixture of answers/, transcribed from the Atlantis source it names (v0.44.0; v0.45.0's where it
differs and `version` asks for it). The checks run in Atlantis's order (api_controller.go, apiParseAndValidate):
API disabled, token, body, JSON, missing fields, VCS type, clone URL (a repository this double serves), repository
name, allowlist. Then, as in Atlantis's PR-0 working directory, one call at a time clones the branch afresh and
plans each `Paths` entry with devtools.terraform_sim; an apply plans again and carries the plan out through
`provider`. A call that arrives while another runs is counted as an overlap. A project's Go error is `{}` in the
answer (a missing directory's: `{"RepoRelDir": ...}`), its text in `errors`, as only Atlantis's log shows it; one
failed project makes the answer a 500.

Faults: `respond_next(status, body)` answers the next call instead of doing it; `drop_next()` closes its connection
without an answer, after the work (or before it: `before_work=True`); `error_next()` fails its every project;
`delay` makes each call work that many seconds longer.
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

from devtools import terraform_sim
from devtools.atlantis.fixtures import answer, fixture

TOKEN_HEADER, DEFAULT_SECRET = "X-Atlantis-Token", "local-atlantis-api-secret"
VCS_TYPES = ("Github", "Gitlab", "BitbucketCloud", "BitbucketServer", "AzureDevops", "Gitea")
NOT_IMPLEMENTED_TYPES = ("BitbucketCloud", "BitbucketServer", "AzureDevops")
VCS_HOSTS = {"Github": "github.com", "Gitlab": "gitlab.com", "Gitea": "gitea.com"}
# APIRequest's fields, empty; Go's encoding/json matches keys whatever their case and drops unknown ones.
EMPTY_REQUEST = {"Repository": "", "Ref": "", "Type": "", "PR": 0, "Projects": [], "Paths": []}
NO_PROJECTS = "cannot specify a project name unless an atlantis.yaml file exists to configure projects"
NO_PLAN = 'no plan found at path "{}" and workspace "{}"–did you run plan?'  # noqa: RUF001 (Atlantis's dash)


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
    empty; a value of another type is a parse error."""
    request = dict(EMPTY_REQUEST)
    try:
        document = json.loads(body.decode("utf-8"))
    except ValueError as error:  # UnicodeDecodeError included
        return request, f"invalid JSON ({error})"
    if not isinstance(document, dict | None):
        return request, f"a JSON {type(document).__name__} is not an APIRequest object"
    fields = {key.lower(): (key, value) for key, value in (document or {}).items() if value is not None}
    for name, empty in EMPTY_REQUEST.items():
        key, request[name] = fields.get(name.lower(), (name, empty))
        if type(request[name]) is not type(empty):
            return request, f"{key} is not a JSON {'number' if type(empty) is int else type(empty).__name__}"
    if not all(isinstance(project, str) for project in request["Projects"]):
        return request, "Projects holds a value that is not a string"
    for index, entry in enumerate(request["Paths"]):
        fields = {key.lower(): value for key, value in entry.items()} if isinstance(entry, dict) else {}
        request["Paths"][index] = path = {name: fields.get(name.lower()) or "" for name in ("Directory", "Workspace")}
        if not isinstance(entry, dict) or not all(isinstance(value, str) for value in path.values()):
            return request, "Paths holds an entry that is not {Directory: string, Workspace: string}"
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
        var_files: Iterable[str] = (),  # the server-side workflow's -var-file arguments
        provider: Any = None,
    ) -> None:
        self.api_secret, self.version, self.var_files, self.delay = api_secret, version, list(var_files), 0.0
        self.repo_clone_url = {repo: str(url) for repo, url in (repo_clone_url or {}).items()}
        self.repo_allowlist = list(self.repo_clone_url if repo_allowlist is None else repo_allowlist)
        self.provider, self.states = provider or terraform_sim.SimulatedProvider(), {}
        self.requests: list[RecordedRequest] = []
        self.errors: list[ProjectError] = []
        self.applied: list[tuple[str, dict[str, Any]]] = []  # (directory, values) of each apply
        self.clones: list[str] = []  # the Ref of each clone
        self.overlaps = self.max_in_flight = self._in_flight = 0
        self._faults: list[tuple[str, tuple[str, ...], Answer | None]] = []
        self._state, self._working_dir, self._stopping = threading.Lock(), threading.Lock(), threading.Event()
        self._httpd: ThreadingHTTPServer | None = None

    def start(self, port: int = 0) -> LocalAtlantis:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), type("Handler", (_Handler,), {"atlantis": self}))
        self._httpd.daemon_threads = True
        # A client that gave up (a timeout test) makes the late answer fail: expected. Anything else is a bug here.
        self._httpd.handle_error = lambda *_: isinstance(sys.exc_info()[1], ConnectionError) or traceback.print_exc()
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
            record.overlapped, self._in_flight = self._in_flight > 0, self._in_flight + 1
            self.overlaps += record.overlapped
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
            fault = next((fault for fault in self._faults if command in fault[1]), ("", (), None))
            if fault[0]:
                self._faults.remove(fault)
        kind, _commands, injected = fault
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
        refusal = "api-disabled" if not self.api_secret else "token-mismatch" if token != self.api_secret else None
        if refusal or body is None:
            return {}, self._answer(refusal or "unreadable-body")
        request, problem = parse_request(body)
        repository, kind = request["Repository"], request["Type"]
        owner, _, name = repository.rpartition("/")
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
        names = (repository, f"{VCS_HOSTS.get(kind, '')}/{repository}")
        if not any(p == "*" or fnmatch.fnmatchcase(n, p) for p in self.repo_allowlist for n in names):
            return request, self._answer("repo-not-allowlisted")
        return request, None

    def _work(self, command: str, request: dict[str, Any], inject_error: bool) -> Answer:
        with tempfile.TemporaryDirectory(prefix="local-atlantis-", ignore_cleanup_errors=True) as clone_dir:
            root, url = Path(clone_dir, "default"), self.repo_clone_url[request["Repository"]]
            url = url if "://" in url else Path(url).resolve().as_uri()  # file:// so that --depth is honoured
            args = ["git", "clone", "--depth=1", "--branch", request["Ref"], "--single-branch", url, str(root)]
            environment = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1"}
            cloned = subprocess.run(args, capture_output=True, text=True, env=environment)
            self.clones.append(request["Ref"])
            if cloned.returncode:
                output, status = cloned.stdout + cloned.stderr, f"exit status {cloned.returncode}"
                return self._answer("clone-failed", command=" ".join(args), output=output, exit=status)
            if request["Projects"]:  # the double reads no atlantis.yaml: Atlantis's answer for a repository with none
                return self._answer("build-command-failed", reason=NO_PROJECTS)
            projects = [self._project(command, request, root, path, inject_error) for path in request["Paths"]]
        result = answer("result", self.version)
        result["body"]["ProjectResults"] = projects
        return Answer(result["status"] if all(map(_succeeded, projects)) else 500, _json(result["body"]))

    def _project(self, command: str, request: dict, root: Path, path: dict, inject_error: bool) -> dict[str, Any]:
        """One project's result: planned, or planned then applied."""
        directory, workspace = path["Directory"].rstrip("/") or ".", path["Workspace"] or "default"
        found, where = answer("project", self.version), Path(os.path.normpath(root / directory))
        project = found["body"] | {
            "Command": found["commands"][command],
            "RepoRelDir": directory,
            "Workspace": workspace,
        }
        if where != root and root not in where.parents:
            return self._fail(project, command, f"directory {directory!r} is outside the repository")
        if not where.is_dir():
            return self._fail(project, command)
        if inject_error:
            return self._fail(project, command, "injected error")
        run = terraform_sim.plan(where, self.var_files, self.states, self.provider)
        if not run.ok:  # an apply without a plan says so after the plan's error
            unplanned = f"{run.error}\n{NO_PLAN.format(directory, workspace)}"
            return self._fail(project, command, run.error if command == "plan" else unplanned)
        if command == "plan":
            flags = f" -d {json.dumps(directory) if ' ' in directory else directory}"
            flags += f" -w {workspace}" if workspace != "default" else ""
            lock_id = quote(f"{request['Repository']}/{directory}/{workspace}", safe="")
            fields = {"output": run.output, "atlantis_url": self.url, "lock_id": lock_id, "flags": flags}
            return project | {"PlanSuccess": answer("plan-success", self.version, **fields)["body"]}
        try:
            project["ApplySuccess"] = terraform_sim.apply(run, where, self.states, self.provider)
        except Exception as error:  # the provider's error: `terraform apply` failed
            return self._fail(project, command, f"running terraform apply in {directory}: {error}")
        self.applied.append((directory, dict(run.values)))
        return project

    def _fail(self, project: dict[str, Any], command: str, text: str | None = None) -> dict[str, Any]:
        """The project failed with a Go error: `{}` in the answer (with no `text`: Atlantis's DirNotExistErr)."""
        directory = project["RepoRelDir"]
        name, quoted = "project-error" if text else "project-dir-not-exist", json.dumps(directory)
        found = answer(name, self.version, directory=directory, quoted_directory=quoted)
        self.errors.append(ProjectError(command, directory, project["Workspace"], text or found["log"]))
        return project | {"Error": found["error"]}


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

    def _handle(self) -> None:
        atlantis, path, token = self.atlantis, urlsplit(self.path).path, self.headers.get(TOKEN_HEADER)
        try:  # the body; None when it ends before its Content-Length
            length = int(self.headers.get("Content-Length") or 0) if self.command in ("POST", "PUT", "PATCH") else 0
            body = self.rfile.read(length) if length else b""
            body = body if len(body) == length else None
        except (OSError, ValueError):
            body = None
        headers = [(name, value) for name, value in self.headers.items() if name.lower() != TOKEN_HEADER.lower()]
        matching = "absent" if token is None else ("matching" if token == atlantis.api_secret else "wrong")
        record, routes = RecordedRequest(self.command, path, headers, body or b"", matching), fixture("routes")
        with atlantis._state:
            atlantis.requests.append(record)
        if path not in ("/api/plan", "/api/apply"):
            found = Answer(routes["status"], routes["body"].encode(), routes["content_type"])
        else:
            found = (
                atlantis.command(record, token, body)
                if self.command == "POST"
                else Answer(routes["method_not_allowed"], content_type="")
            )
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
