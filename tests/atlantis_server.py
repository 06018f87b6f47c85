"""A local Atlantis API server for tests, answering as Atlantis v0.34 … v0.44 does (0.45+ only where noted).

It is the contract (/work/shared/reference/atlantis-api.md, from Atlantis's `api_controller.go`), not a convenience:

- Routes: `POST /api/plan`, `POST /api/apply` (other methods 405, empty body, as gorilla/mux answers), `GET /api/locks`
  (no token check). Anything else is Go's `404 page not found`.
- Request checks in Atlantis's order, with its status codes and texts: API disabled (400, 503 from v0.45), token
  (401), unreadable body (400), JSON (400 `failed to parse request: <Go's encoding/json error>`: keys match
  case-insensitively, unknown keys are dropped, wrong types fail), missing `Repository`/`Ref`/`Type` (400
  `request %q is missing fields`, the raw body Go-quoted), unknown `Type` (400), clone URL lookup (500; Bitbucket and
  Azure DevOps answer "not yet implemented"), repository name (400), allowlist (403). Every error body is
  `{"error":"<msg>"}` + newline, JSON as Go's `json.Marshal` writes it (`<`, `>`, `&` escaped).
- Then, like Atlantis's PR-0 working directory, every call clones the branch afresh (`git clone --depth=1 --branch
  <Ref> --single-branch`; a failure is a 500 with git's text) and runs under one lock. A call arriving while another
  runs is recorded as an overlap (Atlantis itself would clobber the shared directory).
- Plan checks each `Paths` entry as `terraform init` + `plan -input=false` would (see `terraform_plan`). Apply plans
  again first, then calls `on_apply`; its answer holds only the apply results.
- Project errors are Go errors: JSON has no text for them (`"Error":{}`; a missing directory is Atlantis's
  `DirNotExistErr`, `{"RepoRelDir":"…"}`). Their text goes to this server's log (`errors`, `log`), as Atlantis's own
  log is the only place the real text can be read.

Fault injection: `respond_next(status, body)`, `drop_next()` (close the connection without answering, after the work
is done unless `before_work=True`), `error_next()` (every project of the next call fails with a Go error), `delay`.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from provisioning.terraform.hcl_reader import blocks, labelled_blocks, parse_hcl, unquoted_label, variable_references

TOKEN_HEADER = "X-Atlantis-Token"
DEFAULT_SECRET = "local-atlantis-api-secret"
_UNSET: Any = object()

VCS_TYPES = ("Github", "Gitlab", "BitbucketCloud", "BitbucketServer", "AzureDevops", "Gitea")
NOT_IMPLEMENTED_TYPES = ("BitbucketCloud", "BitbucketServer", "AzureDevops")
VCS_HOSTS = {"Github": "github.com", "Gitlab": "gitlab.com", "Gitea": "gitea.com"}

COMMAND_APPLY = 0
COMMAND_PLAN = 1


# --- Go's formatting ------------------------------------------------------------------------------------------------


def go_quote(raw: bytes | str) -> str:
    """Go's strconv.Quote of a byte string: `"` and `\\` escaped, \\a \\b \\f \\n \\r \\t \\v, other control
    characters as \\xHH, non-printable runes as \\uHHHH / \\UHHHHHHHH, invalid UTF-8 bytes as \\xHH, printable
    non-ASCII kept as is."""
    data = raw.encode("utf-8") if isinstance(raw, str) else raw
    out = ['"']
    index = 0
    while index < len(data):
        rune, width = _decode_rune(data, index)
        index += width
        if rune is None:
            out.append(f"\\x{data[index - 1]:02x}")
        elif rune in ('"', "\\"):
            out.append("\\" + rune)
        elif rune.isprintable():
            out.append(rune)
        elif rune in _GO_ESCAPES:
            out.append(_GO_ESCAPES[rune])
        elif ord(rune) < 0x20 or ord(rune) == 0x7F:
            out.append(f"\\x{ord(rune):02x}")
        elif ord(rune) < 0x10000:
            out.append(f"\\u{ord(rune):04x}")
        else:
            out.append(f"\\U{ord(rune):08x}")
    out.append('"')
    return "".join(out)


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def _decode_rune(data: bytes, index: int) -> tuple[str | None, int]:
    """(rune, width) like Go's utf8.DecodeRune; (None, 1) for an invalid byte."""
    for width in (1, 2, 3, 4):
        chunk = data[index : index + width]
        if len(chunk) < width:
            break
        try:
            text = chunk.decode("utf-8")
        except UnicodeDecodeError:
            continue
        if len(text) == 1:
            return text, width
    return None, 1


def go_json(value: Any) -> str:
    """JSON as Go's json.Marshal writes it: compact, `<`, `>`, `&`, U+2028 and U+2029 escaped."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for char, escaped in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(char, escaped)
    return text


def error_body(message: str) -> bytes:
    """Atlantis's apiReportError: json.Marshal(map[string]string{"error": msg}), then Fprintln."""
    return (go_json({"error": message}) + "\n").encode("utf-8")


# --- Go's encoding/json, as far as Atlantis's APIRequest needs it ---------------------------------------------------


class _GoSyntaxError(Exception):
    pass


def _quote_char(byte: int) -> str:
    """Go's scanner quoteChar: the byte taken as a rune, quoted with single quotes."""
    if byte == 0x27:
        return "'\\''"
    if byte == 0x22:
        return "'\"'"
    quoted = go_quote(chr(byte).encode("utf-8"))
    return "'" + quoted[1:-1] + "'"


def go_syntax_error(data: bytes) -> str | None:
    """Go's checkValid: None when `data` is one JSON value, else the SyntaxError text Go would give."""
    scanner = _GoScanner(data)
    try:
        scanner.check()
    except _GoSyntaxError as error:
        return str(error)
    return None


class _GoScanner:
    _SPACE = b" \t\r\n"
    _DIGITS = b"0123456789"
    _HEX = b"0123456789abcdefABCDEF"

    def __init__(self, data: bytes) -> None:
        self.data = data

    def check(self) -> None:
        end = self._skip(self._value(0))
        if end < len(self.data):
            self._fail(end, "after top-level value")

    def _byte(self, pos: int) -> int:
        if pos >= len(self.data):
            raise _GoSyntaxError("unexpected end of JSON input")
        return self.data[pos]

    def _fail(self, pos: int, context: str) -> None:
        raise _GoSyntaxError(f"invalid character {_quote_char(self.data[pos])} {context}")

    def _skip(self, pos: int) -> int:
        while pos < len(self.data) and self.data[pos] in self._SPACE:
            pos += 1
        return pos

    def _value(self, pos: int) -> int:
        pos = self._skip(pos)
        byte = self._byte(pos)
        if byte == ord("{"):
            return self._object(pos + 1)
        if byte == ord("["):
            return self._array(pos + 1)
        if byte == ord('"'):
            return self._string(pos + 1)
        if byte == ord("-") or byte in self._DIGITS:
            return self._number(pos)
        for word in (b"true", b"false", b"null"):
            if byte == word[0]:
                for offset in range(1, len(word)):
                    if self._byte(pos + offset) != word[offset]:
                        expecting = _quote_char(word[offset])
                        self._fail(pos + offset, f"in literal {word.decode()} (expecting {expecting})")
                return pos + len(word)
        self._fail(pos, "looking for beginning of value")
        raise AssertionError  # unreachable

    def _object(self, pos: int) -> int:
        pos = self._skip(pos)
        if self._byte(pos) == ord("}"):
            return pos + 1
        while True:
            if self._byte(pos) != ord('"'):
                self._fail(pos, "looking for beginning of object key string")
            pos = self._skip(self._string(pos + 1))
            if self._byte(pos) != ord(":"):
                self._fail(pos, "after object key")
            pos = self._skip(self._value(pos + 1))
            byte = self._byte(pos)
            if byte == ord(","):
                pos = self._skip(pos + 1)
                continue
            if byte == ord("}"):
                return pos + 1
            self._fail(pos, "after object key:value pair")

    def _array(self, pos: int) -> int:
        pos = self._skip(pos)
        if self._byte(pos) == ord("]"):
            return pos + 1
        while True:
            pos = self._skip(self._value(pos))
            byte = self._byte(pos)
            if byte == ord(","):
                pos += 1
                continue
            if byte == ord("]"):
                return pos + 1
            self._fail(pos, "after array element")

    def _string(self, pos: int) -> int:
        while True:
            byte = self._byte(pos)
            if byte == ord('"'):
                return pos + 1
            if byte == ord("\\"):
                escape = self._byte(pos + 1)
                if escape in b'bfnrt\\/"':
                    pos += 2
                    continue
                if escape == ord("u"):
                    for offset in range(2, 6):
                        if self._byte(pos + offset) not in self._HEX:
                            self._fail(pos + offset, "in \\u hexadecimal character escape")
                    pos += 6
                    continue
                self._fail(pos + 1, "in string escape code")
            if byte < 0x20:
                self._fail(pos, "in string literal")
            pos += 1

    def _number(self, pos: int) -> int:
        if self.data[pos] == ord("-"):
            pos += 1
            if self._byte(pos) not in self._DIGITS:
                self._fail(pos, "in numeric literal")
        if self.data[pos] == ord("0"):
            pos += 1
        else:
            while pos < len(self.data) and self.data[pos] in self._DIGITS:
                pos += 1
        if pos < len(self.data) and self.data[pos] == ord("."):
            pos += 1
            if self._byte(pos) not in self._DIGITS:
                self._fail(pos, "after decimal point in numeric literal")
            while pos < len(self.data) and self.data[pos] in self._DIGITS:
                pos += 1
        if pos < len(self.data) and self.data[pos] in b"eE":
            pos += 1
            if self._byte(pos) in b"+-":
                pos += 1
            if self._byte(pos) not in self._DIGITS:
                self._fail(pos, "in exponent of numeric literal")
            while pos < len(self.data) and self.data[pos] in self._DIGITS:
                pos += 1
        return pos


class _GoNumber(str):
    """A JSON number literal, kept as written (Go reports it that way)."""


class _GoObject(list):
    """A JSON object as its (key, value) pairs, duplicates kept in order (Go lets the last one win)."""


_PATH_TYPE = "struct { Directory string; Workspace string }"
_REQUEST_FIELDS = {
    "Repository": "string",
    "Ref": "string",
    "Type": "string",
    "PR": "int",
    "Projects": "[]string",
    "Paths": "[]" + _PATH_TYPE,
}
_PATH_FIELDS = {"Directory": "string", "Workspace": "string"}
_INT64 = (-(2**63), 2**63 - 1)
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _go_fold(name: str) -> str:
    """Go's foldName: ASCII upper-cased, other runes ToUpper(ToLower(r))."""
    out = []
    for char in name:
        if char.isascii():
            out.append(char.upper())
            continue
        lower = char.lower()
        lower = lower if len(lower) == 1 else char
        upper = lower.upper()
        out.append(upper if len(upper) == 1 else lower)
    return "".join(out)


def _match_field(key: str, fields: Mapping[str, str]) -> str | None:
    if key in fields:
        return key
    folded = _go_fold(key)
    for name in fields:
        if _go_fold(name) == folded:
            return name
    return None


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, _GoNumber):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, _GoObject):
        return "object"
    return "array"


def _go_string(value: str) -> str:
    return _LONE_SURROGATE.sub("\ufffd", value)


def decode_api_request(data: bytes) -> tuple[dict[str, Any], str | None]:
    """Atlantis's APIRequest as Go's json.Unmarshal fills it, and the first error Go would report (or None)."""
    request: dict[str, Any] = {"Repository": "", "Ref": "", "Type": "", "PR": 0, "Projects": None, "Paths": None}
    syntax = go_syntax_error(data)
    if syntax:
        return request, syntax
    document = json.loads(
        data.decode("utf-8", errors="replace"),
        object_pairs_hook=_GoObject,
        parse_int=_GoNumber,
        parse_float=_GoNumber,
    )
    errors: list[str] = []
    if document is None:
        return request, None
    if not isinstance(document, _GoObject):
        return request, f"json: cannot unmarshal {_json_kind(document)} into Go value of type controllers.APIRequest"
    _decode_struct(document, _REQUEST_FIELDS, request, "APIRequest", [], errors)
    return request, errors[0] if errors else None


def _decode_struct(
    document: _GoObject, fields: Mapping[str, str], target: dict[str, Any], struct: str, stack: list[str], errors: list
) -> None:
    for key, value in document:
        name = _match_field(key, fields)
        if name is not None:
            target[name] = _decode_value(value, fields[name], target[name], struct, [*stack, name], errors)


def _type_error(
    errors: list[str], value: Any, go_type: str, struct: str, stack: list[str], literal: bool = False
) -> None:
    kind = _json_kind(value)
    if literal:
        kind = f"number {value}"
    errors.append(f"json: cannot unmarshal {kind} into Go struct field {struct}.{'.'.join(stack)} of type {go_type}")


def _decode_value(value: Any, go_type: str, current: Any, struct: str, stack: list[str], errors: list) -> Any:
    if value is None:
        return None if go_type.startswith("[]") else current  # null leaves a string or int unchanged
    if go_type == "string":
        if isinstance(value, str) and not isinstance(value, _GoNumber):
            return _go_string(value)
        _type_error(errors, value, go_type, struct, stack)
        return current
    if go_type == "int":
        if isinstance(value, _GoNumber):
            if re.fullmatch(r"-?\d+", value) and _INT64[0] <= int(value) <= _INT64[1]:
                return int(value)
            _type_error(errors, value, go_type, struct, stack, literal=True)
            return current
        _type_error(errors, value, go_type, struct, stack)
        return current
    if not isinstance(value, list) or isinstance(value, _GoObject):
        _type_error(errors, value, go_type, struct, stack)
        return current
    element_type = go_type[2:]
    items = []
    for item in value:
        if element_type == "string":
            items.append(_decode_value(item, "string", "", struct, stack, errors))
            continue
        path = {"Directory": "", "Workspace": ""}
        if isinstance(item, _GoObject):
            _decode_struct(item, _PATH_FIELDS, path, "", stack, errors)
        elif item is not None:
            _type_error(errors, item, element_type, struct, stack)
        items.append(path)
    return items


# --- Terraform values files (literal HCL, as .tfvars hold) ------------------------------------------------------------


class TerraformError(Exception):
    """A Terraform diagnostic, rendered as Terraform prints it."""


def diagnostic(summary: str, detail: str, file: str = "", line: int = 0, source: str = "", context: str = "") -> str:
    text = f"Error: {summary}\n\n"
    if file:
        where = f"  on {file} line {line}" + (f", in {context}" if context else "") + ":\n"
        text += where + f"{line:4d}: {source}\n\n"
    return text + detail + "\n"


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][+-]?\d+)?")
_HCL_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}


class _TfvarsParser:
    """The literal subset of HCL that a values file may hold: strings, numbers, bools, null, tuples, objects,
    heredocs. Anything else (references, function calls, interpolation) fails as Terraform fails on it."""

    def __init__(self, text: str, file_name: str) -> None:
        self.text = text
        self.file = file_name
        self.pos = 0

    def fail(self, summary: str, detail: str, pos: int | None = None) -> None:
        pos = self.pos if pos is None else pos
        line = self.text.count("\n", 0, pos) + 1
        source = self.text.splitlines()[line - 1] if self.text.splitlines()[line - 1 : line] else ""
        raise TerraformError(diagnostic(summary, detail, self.file, line, source))

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip(self, newlines: bool) -> None:
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char in " \t\r" or (newlines and char == "\n"):
                self.pos += 1
            elif char == "#" or self.text.startswith("//", self.pos):
                end = self.text.find("\n", self.pos)
                self.pos = len(self.text) if end < 0 else end
            elif self.text.startswith("/*", self.pos):
                end = self.text.find("*/", self.pos + 2)
                if end < 0:
                    self.fail("Unterminated comment", "There is no closing marker for this comment.")
                self.pos = end + 2
            else:
                return

    def document(self) -> dict[str, tuple[Any, int]]:
        values: dict[str, tuple[Any, int]] = {}
        while True:
            self.skip(newlines=True)
            if self.pos >= len(self.text):
                return values
            start = self.pos
            match = _IDENTIFIER.match(self.text, self.pos)
            if not match:
                self.fail("Argument or block definition required", "An argument or block definition is required here.")
            name = match.group()
            self.pos = match.end()
            self.skip(newlines=False)
            if self.peek() != "=" or self.text.startswith("==", self.pos):
                if self.peek() in ('"', "{"):
                    self.fail("Unexpected block", "Blocks are not allowed here.")
                self.fail("Argument or block definition required", "An argument or block definition is required here.")
            self.pos += 1
            value = self.expression()
            self.skip(newlines=False)
            if self.peek() not in ("\n", ""):
                self.fail("Missing newline after argument", "An argument definition must end with a newline.")
            line = self.text.count("\n", 0, start) + 1
            if name in values:
                self.fail(
                    "Attribute redefined",
                    f'The argument "{name}" was already set at {self.file}:{values[name][1]}. Each argument may be '
                    "set only once.",
                    start,
                )
            values[name] = (value, line)

    def expression(self) -> Any:
        self.skip(newlines=False)
        char = self.peek()
        if char == '"':
            return self.quoted()
        if char == "[":
            return self.tuple()
        if char == "{":
            return self.object()
        if self.text.startswith("<<", self.pos):
            return self.heredoc()
        number = _NUMBER.match(self.text, self.pos)
        if number:
            self.pos = number.end()
            literal = number.group()
            return int(literal) if re.fullmatch(r"-?\d+", literal) else float(literal)
        word = _IDENTIFIER.match(self.text, self.pos)
        if word:
            literals = {"true": True, "false": False, "null": None}
            if word.group() in literals:
                self.pos = word.end()
                return literals[word.group()]
            self.fail("Variables not allowed", "Variables may not be used here.")
        if not char or char == "\n":
            self.fail(
                "Invalid expression", "Expected the start of an expression, but found an invalid expression token."
            )
        self.fail("Invalid expression", "Expected the start of an expression, but found an invalid expression token.")
        raise AssertionError  # unreachable

    def _template_char(self, out: list[str]) -> bool:
        """Handle `$${`, `%%{` and a refused `${`/`%{` at the cursor; True when something was consumed."""
        char = self.peek()
        if char in ("$", "%") and self.text.startswith(char * 2 + "{", self.pos):
            out.append(char + "{")
            self.pos += 3
            return True
        if char in ("$", "%") and self.text.startswith("{", self.pos + 1):
            self.fail("Variables not allowed", "Variables may not be used here.")
        return False

    def quoted(self) -> str:
        start = self.pos
        self.pos += 1
        out: list[str] = []
        while True:
            char = self.peek()
            if char in ("", "\n"):
                self.fail("Unterminated template string", "No closing marker was found for the string.", start)
            if char == '"':
                self.pos += 1
                return "".join(out)
            if char == "\\":
                selector = self.text[self.pos + 1 : self.pos + 2]
                if selector in _HCL_ESCAPES:
                    out.append(_HCL_ESCAPES[selector])
                    self.pos += 2
                    continue
                if selector in ("u", "U"):
                    width = 4 if selector == "u" else 8
                    digits = self.text[self.pos + 2 : self.pos + 2 + width]
                    if len(digits) == width and all(digit in "0123456789abcdefABCDEF" for digit in digits):
                        out.append(chr(int(digits, 16)))
                        self.pos += 2 + width
                        continue
                self.fail(
                    "Invalid escape sequence", f'The symbol "{selector}" is not a valid escape sequence selector.'
                )
            if self._template_char(out):
                continue
            out.append(char)
            self.pos += 1

    def heredoc(self) -> str:
        match = re.compile(r"<<(-?)([A-Za-z_][A-Za-z0-9_-]*)\r?\n").match(self.text, self.pos)
        if not match:
            self.fail("Invalid heredoc", "A heredoc marker is followed by an identifier and a newline.")
        strip, marker = match.group(1) == "-", match.group(2)
        body_start = match.end()
        lines = []
        position = body_start
        while True:
            end = self.text.find("\n", position)
            line = self.text[position : len(self.text) if end < 0 else end]
            if line.strip() == marker:
                self.pos = position + len(line)
                break
            if end < 0:
                self.fail("Unterminated template string", f'No closing marker "{marker}" was found.', self.pos)
            lines.append(line)
            position = end + 1
        if strip:
            indents = [len(line) - len(line.lstrip(" \t")) for line in lines if line.strip()]
            cut = min(indents, default=0)
            lines = [line[cut:] for line in lines]
        content = "".join(line + "\n" for line in lines)
        return _template_literal(
            content, lambda: self.fail("Variables not allowed", "Variables may not be used here.", body_start)
        )

    def tuple(self) -> list[Any]:
        self.pos += 1
        items = []
        while True:
            self.skip(newlines=True)
            if self.peek() == "]":
                self.pos += 1
                return items
            items.append(self.expression())
            self.skip(newlines=True)
            if self.peek() == ",":
                self.pos += 1
                continue
            if self.peek() == "]":
                self.pos += 1
                return items
            self.fail("Missing item separator", "Expected a comma to mark the beginning of the next item.")

    def object(self) -> dict[str, Any]:
        self.pos += 1
        result: dict[str, Any] = {}
        while True:
            self.skip(newlines=True)
            if self.peek() == "}":
                self.pos += 1
                return result
            if self.peek() == '"':
                key = self.quoted()
            else:
                match = _IDENTIFIER.match(self.text, self.pos)
                if not match:
                    self.fail("Invalid object key", "An object key is an identifier or a quoted string here.")
                key = match.group()
                self.pos = match.end()
            self.skip(newlines=False)
            if self.peek() not in ("=", ":"):
                self.fail(
                    "Missing key/value separator",
                    'Expected an equals sign ("=") to mark the beginning of the attribute value.',
                )
            self.pos += 1
            result[key] = self.expression()
            self.skip(newlines=False)
            if self.peek() in (",", "\n"):
                self.pos += 1
                continue
            if self.peek() == "}":
                self.pos += 1
                return result
            self.fail(
                "Missing attribute separator",
                "Expected a newline or comma to mark the beginning of the next attribute.",
            )


def _template_literal(content: str, refuse: Callable[[], None]) -> str:
    """Template text with no interpolation: `$${` and `%%{` stand for `${` and `%{`; a real `${` or `%{` is refused."""
    out = []
    index = 0
    while index < len(content):
        char = content[index]
        if char in ("$", "%") and content.startswith(char * 2 + "{", index):
            out.append(char + "{")
            index += 3
            continue
        if char in ("$", "%") and content.startswith("{", index + 1):
            refuse()
        out.append(char)
        index += 1
    return "".join(out)


def parse_tfvars(text: str, file_name: str) -> dict[str, Any]:
    """name -> value of a values file (HCL or, for *.json, JSON); raises TerraformError as Terraform would fail."""
    if file_name.endswith(".json"):
        try:
            document = json.loads(text)
        except json.JSONDecodeError as error:
            raise TerraformError(diagnostic("Invalid JSON", str(error), file_name, error.lineno, "")) from None
        if not isinstance(document, dict):
            raise TerraformError(diagnostic("Invalid JSON", "A values file holds a JSON object.", file_name, 1, ""))
        return document
    return {name: value for name, (value, _line) in _TfvarsParser(text, file_name).document().items()}


# --- What `terraform init` + `terraform plan -input=false` would say ------------------------------------------------

AUTO_VALUES_FILES = ("terraform.tfvars", "terraform.tfvars.json")


@dataclass
class TerraformRun:
    """One project's plan as Terraform would run it: the plan output, or the error text (Atlantis's log only)."""

    ok: bool
    output: str = ""
    error: str = ""
    values: dict[str, Any] = field(default_factory=dict)
    resources: list[str] = field(default_factory=list)
    changes: bool = True


def _line_of(text: str, pattern: re.Pattern[str]) -> tuple[int, str]:
    for number, line in enumerate(text.splitlines(), 1):
        if pattern.search(line.split("#", 1)[0] if not line.lstrip().startswith("#") else ""):
            return number, line
    return 1, text.splitlines()[0] if text else ""


def _enclosing_block(lines: list[str], index: int) -> str:
    """`resource "a" "b"` for the top-level block around line `index` (0-based), as Terraform names it."""
    for line in reversed(lines[: index + 1]):
        match = re.match(r'([A-Za-z_][A-Za-z0-9_-]*)((?:\s+"[^"]*")*)\s*\{', line)
        if match:
            labels = " ".join(re.findall(r'"[^"]*"', match.group(2)))
            return f"{match.group(1)} {labels}".strip()
    return ""


def _levenshtein(left: str, right: str) -> int:
    previous = list(range(len(right) + 1))
    for i, a in enumerate(left, 1):
        current = [i]
        for j, b in enumerate(right, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a != b)))
        previous = current
    return previous[-1]


def _format_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


@lru_cache(maxsize=512)
def _parse_hcl(text: str) -> dict[str, Any]:
    """python-hcl2's parse (with vmprov's workaround for its `$${` bug), cached: the same rendered files are planned
    again and again (callers only read the result)."""
    return parse_hcl(text)


def terraform_plan(
    directory: Path,
    var_files: Sequence[str] = (),
    existing: Callable[[str], bool] | None = None,
) -> TerraformRun:
    """Plan `directory` as `terraform init` and `terraform plan -input=false
    -var-file=…` would: parse every *.tf, require a backend, load the values files Terraform loads, and fail on a
    required variable without a value or a reference to an undeclared variable, with Terraform's texts."""
    tf_files = sorted(path for path in directory.glob("*.tf") if path.is_file())
    if not tf_files:
        return TerraformRun(
            ok=False,
            error=diagnostic(
                "No configuration files",
                "Plan requires configuration to be present. Planning without a configuration would mark everything "
                "for destruction, which is normally not what is desired. If you would like to destroy everything, "
                "run plan with the -destroy option. Otherwise, create a Terraform configuration file (.tf file) and "
                "try again.",
            ),
        )
    texts: dict[str, str] = {}
    documents: dict[str, dict[str, Any]] = {}
    for path in tf_files:
        texts[path.name] = path.read_text(encoding="utf-8")
        try:
            documents[path.name] = _parse_hcl(texts[path.name])
        except Exception as error:  # python-hcl2 raises lark errors of many kinds
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            return TerraformRun(ok=False, error=diagnostic("Invalid configuration syntax", f"{path.name}: {first}"))

    backends = [
        kind
        for document in documents.values()
        for terraform in blocks(document.get("terraform"))
        for kind, _body in labelled_blocks(terraform.get("backend"))
    ] + ["cloud" for d in documents.values() for t in blocks(d.get("terraform")) if blocks(t.get("cloud"))]
    if not backends:
        return TerraformRun(
            ok=False,
            error=diagnostic(
                "No backend configured",
                "No terraform block declares a backend: the state would stay in Atlantis's working directory and "
                'be lost after the apply. Declare one, e.g. backend "pg" { … } inside terraform { }. (This check '
                "is the local Atlantis's server-side workflow policy; Terraform itself would use local state.)",
            ),
        )

    declared: dict[str, tuple[str, int, str, bool]] = {}
    errors: list[str] = []
    for file_name, document in documents.items():
        for name, body in labelled_blocks(document.get("variable")):
            pattern = re.compile(r'^\s*variable\s+"' + re.escape(name) + r'"\s*\{')
            line, source = _line_of(texts[file_name], pattern)
            if name in declared:
                first = declared[name]
                errors.append(
                    diagnostic(
                        "Duplicate variable declaration",
                        f'A variable named "{name}" was already declared at {first[0]}:{first[1]}. Variable names '
                        "must be unique within a module.",
                        file_name,
                        line,
                        source,
                    )
                )
                continue
            declared[name] = (file_name, line, source, "default" in body)
    if errors:
        return TerraformRun(ok=False, error="\n".join(errors))

    values: dict[str, Any] = {}
    loaded = [name for name in AUTO_VALUES_FILES if (directory / name).is_file()]
    loaded += sorted(path.name for path in directory.glob("*.auto.tfvars") if path.is_file())
    loaded += sorted(path.name for path in directory.glob("*.auto.tfvars.json") if path.is_file())
    for name in var_files:
        if not (directory / name).is_file():
            return TerraformRun(
                ok=False,
                error=diagnostic("Failed to read variables file", f"Given variables file {name} does not exist."),
            )
    for name in [*loaded, *var_files]:
        try:
            values.update(parse_tfvars((directory / name).read_text(encoding="utf-8"), name))
        except TerraformError as error:
            return TerraformRun(ok=False, error=str(error))

    for name, (file_name, line, source, has_default) in sorted(declared.items(), key=lambda item: item[1][:2]):
        if not has_default and name not in values:
            errors.append(
                diagnostic(
                    "No value for required variable",
                    f'The root module input variable "{name}" is not set, and has no default value. Use a -var or '
                    "-var-file command line argument to provide a value for this variable.",
                    file_name,
                    line,
                    source,
                )
            )
    if errors:
        return TerraformRun(ok=False, error="\n".join(errors))

    for file_name, document in documents.items():
        undeclared = []
        for name in variable_references(document) - set(declared):
            pattern = re.compile(r"(?<![\w.])var\." + re.escape(name) + r"(?![\w-])")
            match = pattern.search(texts[file_name])
            undeclared.append((match.start() if match else 0, name, pattern))
        for _position, name, pattern in sorted(undeclared):  # in source order, as Terraform reports them
            line, source = _line_of(texts[file_name], pattern)
            context = _enclosing_block(texts[file_name].splitlines(), line - 1)
            close = [other for other in sorted(declared) if _levenshtein(name, other) < 3]
            hint = (
                f'Did you mean "{close[0]}"?'
                if close
                else f'This variable can be declared with a variable "{name}" {{}} block.'
            )
            errors.append(
                diagnostic(
                    "Reference to undeclared input variable",
                    f'An input variable with the name "{name}" has not been declared. {hint}',
                    file_name,
                    line,
                    source,
                    context,
                )
            )
    if errors:
        return TerraformRun(ok=False, error="\n".join(errors))

    values = {name: value for name, value in values.items() if name in declared}
    for name, (_file, _line, _source, _has_default) in declared.items():
        values.setdefault(name, None)
    resources = []
    bodies = {}
    for document in documents.values():
        for block in blocks(document.get("resource")):
            for kind, named in block.items():
                if kind.startswith("__") or not isinstance(named, dict):
                    continue
                for name, body in named.items():
                    if not name.startswith("__"):
                        address = f"{unquoted_label(kind)}.{unquoted_label(name)}"
                        resources.append(address)
                        bodies[address] = body
    vm_name = values.get("vm_name")
    if existing is not None and isinstance(vm_name, str) and existing(vm_name):
        output = (
            "No changes. Your infrastructure matches the configuration.\n\n"
            "Terraform has compared your real infrastructure against your configuration\n"
            "and found no differences, so no changes are needed.\n"
        )
        return TerraformRun(ok=True, output=output, values=values, resources=resources, changes=False)
    return TerraformRun(ok=True, output=_plan_output(resources, bodies, values), values=values, resources=resources)


def _plan_output(resources: list[str], bodies: Mapping[str, Any], values: Mapping[str, Any]) -> str:
    lines = [
        "Terraform used the selected providers to generate the following execution",
        "plan. Resource actions are indicated with the following symbols:",
        "  + create",
        "",
        "Terraform will perform the following actions:",
    ]
    for address in resources:
        kind, name = address.split(".", 1)
        attributes = []
        for key, raw in bodies[address].items():
            match = re.fullmatch(r"\$\{var\.([A-Za-z_][A-Za-z0-9_-]*)\}", raw) if isinstance(raw, str) else None
            if match and values.get(match.group(1)) is not None:
                attributes.append((key, _format_value(values[match.group(1)])))
        attributes.append(("id", "(known after apply)"))
        attributes.sort()  # Terraform lists attributes in name order
        width = max(len(key) for key, _ in attributes)
        lines += ["", f"  # {address} will be created", f'  + resource "{kind}" "{name}" {{']
        lines += [f"      + {key.ljust(width)} = {value}" for key, value in attributes]
        lines.append("    }")
    lines += ["", f"Plan: {len(resources)} to add, 0 to change, 0 to destroy."]
    return "\n".join(lines) + "\n"


# --- The server --------------------------------------------------------------------------------------------------


@dataclass
class RecordedRequest:
    """One request as the server saw it; the token header is left out (`token` says whether one was sent)."""

    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes
    token: str  # "absent", "matching" or "wrong"
    started: float
    finished: float | None = None
    status: int | None = None  # None: the connection was dropped without an answer
    response: bytes = b""
    overlapped: bool = False

    def json(self) -> Any:
        return json.loads(self.response)


@dataclass
class ProjectError:
    """A project's Go error: serialized as {} in the answer; its text is only in Atlantis's log."""

    command: str
    directory: str
    workspace: str
    text: str


@dataclass
class _Fault:
    kind: str  # "respond" | "drop" | "error"
    status: int = 500
    body: bytes = b""
    content_type: str = "application/json"
    before_work: bool = False
    commands: tuple[str, ...] = ("plan", "apply")


@dataclass
class _Answer:
    status: int
    body: bytes
    content_type: str = "application/json"
    drop: bool = False


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version))


class LocalAtlantis:
    """Atlantis's API on 127.0.0.1:<free port>, in a background thread. Use as a context manager or start()/stop()."""

    def __init__(
        self,
        *,
        api_secret: str | None = DEFAULT_SECRET,
        repo_clone_url: Mapping[str, str | Path] | None = None,
        repo_allowlist: Iterable[str] | None = None,
        version: str = "0.44",
        var_files: Sequence[str] = (),
        on_apply: Callable[[Path, dict[str, Any]], str] | None = None,
        existing: Callable[[str], bool] | None = None,
    ) -> None:
        self.api_secret = api_secret
        self.repo_clone_url = {repo: str(url) for repo, url in (repo_clone_url or {}).items()}
        self.repo_allowlist = list(repo_allowlist) if repo_allowlist is not None else list(self.repo_clone_url)
        self.version = version
        self.var_files = list(var_files)
        self.on_apply = on_apply
        self.existing = existing
        self.delay = 0.0

        self.requests: list[RecordedRequest] = []
        self.errors: list[ProjectError] = []
        self.log: list[str] = []
        self.applied: list[tuple[str, dict[str, Any]]] = []
        self.clones: list[str] = []
        self.overlaps = 0
        self.max_in_flight = 0

        self._faults: list[_Fault] = []
        self._state = threading.Lock()
        self._working_dir = threading.Lock()
        self._in_flight = 0
        self._running: list[dict[str, Any]] = []
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --

    def start(self, port: int = 0) -> LocalAtlantis:
        handler = type("LocalAtlantisHandler", (_Handler,), {"atlantis": self})
        self._httpd = _Server(("127.0.0.1", port), handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01}, name="local-atlantis", daemon=True
        )
        self._thread.start()
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

    # -- fault injection --

    def respond_next(
        self, status: int, body: bytes | str | Mapping[str, Any], *, commands: tuple[str, ...] = ("plan", "apply")
    ) -> None:
        """The next plan/apply request gets this answer instead of being processed."""
        if isinstance(body, Mapping):
            body = go_json(dict(body)) + "\n"
        data = body.encode("utf-8") if isinstance(body, str) else body
        self._faults.append(_Fault("respond", status=status, body=data, commands=commands))

    def drop_next(self, *, before_work: bool = False, commands: tuple[str, ...] = ("plan", "apply")) -> None:
        """Close the next plan/apply connection without answering; by default after the work (an apply happened)."""
        self._faults.append(_Fault("drop", before_work=before_work, commands=commands))

    def error_next(self, *, commands: tuple[str, ...] = ("plan", "apply")) -> None:
        """Every project of the next plan/apply fails with a Go error (serialized as {})."""
        self._faults.append(_Fault("error", commands=commands))

    def _take_fault(self, command: str) -> _Fault | None:
        with self._state:
            for index, fault in enumerate(self._faults):
                if command in fault.commands:
                    return self._faults.pop(index)
        return None

    # -- request handling --

    def _log(self, message: str) -> None:
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        self.log.append(f"{stamp} {message}")

    def locks_answer(self) -> _Answer:
        with self._state:
            running = list(self._running)
        locks = [
            {
                "Name": f"{item['repo']}/{item['directory']}/{item['workspace']}",
                "ProjectName": "",
                "ProjectRepo": item["repo"],
                "ProjectRepoPath": item["directory"],
                "PullID": str(item["pr"]),
                "PullURL": "",
                "User": "",
                "Workspace": item["workspace"],
                "Time": item["time"],
            }
            for item in running
        ]
        return _Answer(200, (go_json({"Locks": locks or None}) + "\n").encode())

    def handle_command(self, command: str, headers: Mapping[str, str], body: bytes | None) -> _Answer:
        """Atlantis's Plan/Apply handler: checks in order, then the work. `body` None: it could not be read."""
        fault = self._take_fault(command)
        if fault and fault.kind == "respond":
            return _Answer(fault.status, fault.body, fault.content_type)
        if fault and fault.kind == "drop" and fault.before_work:
            return _Answer(0, b"", drop=True)

        request, failure = self._validate(headers, body)
        if failure:
            return failure
        with self._working_directory(request):
            if self.delay:
                self._stopping.wait(self.delay)
            answer = self._work(command, request, inject_error=bool(fault and fault.kind == "error"))
        if fault and fault.kind == "drop":
            return _Answer(0, b"", drop=True)
        return answer

    def _validate(self, headers: Mapping[str, str], body: bytes | None) -> tuple[dict[str, Any], _Answer | None]:
        request: dict[str, Any] = {}
        if not self.api_secret:
            status = 503 if _version_tuple(self.version) >= (0, 45) else 400
            return request, _Answer(status, error_body("ignoring request since API is disabled"))
        if headers.get(TOKEN_HEADER, "") != self.api_secret:
            return request, _Answer(401, error_body(f"header {TOKEN_HEADER} did not match expected secret"))
        if body is None:
            return request, _Answer(400, error_body("failed to read request"))
        request, parse_error = decode_api_request(body)
        if parse_error:
            return request, _Answer(400, error_body(f"failed to parse request: {parse_error}"))
        if not request["Repository"] or not request["Ref"] or not request["Type"]:
            return request, _Answer(400, error_body(f"request {go_quote(body)} is missing fields"))
        if request["Type"] not in VCS_TYPES:
            return request, _Answer(400, error_body(f"{go_quote(request['Type'])} is not a valid type"))
        if request["Type"] in NOT_IMPLEMENTED_TYPES:
            return request, _Answer(500, error_body("not yet implemented"))
        repo = request["Repository"]
        if repo not in self.repo_clone_url:
            return request, _Answer(500, error_body(self._clone_url_error(request["Type"], repo)))
        owner, _, name = repo.rpartition("/")
        if not owner or not name:
            return request, _Answer(
                400,
                error_body(
                    f"failed to parse request: invalid repo format {go_quote(repo)}, owner {go_quote(owner)} or "
                    f"repo {go_quote(name)} was empty"
                ),
            )
        if not self._allowlisted(request["Type"], repo):
            return request, _Answer(403, error_body("repo not allowlisted"))
        if request["PR"] > 0 and _version_tuple(self.version) >= (0, 44, 1):
            # From v0.44.1 a PR number is looked up on the VCS: an invented one fails.
            return request, _Answer(500, error_body(self._pull_lookup_error(request["Type"], repo, request["PR"])))
        return request, None

    @staticmethod
    def _clone_url_error(vcs_type: str, repo: str) -> str:
        if vcs_type == "Gitlab":
            return (
                f"GET https://gitlab.com/api/v4/projects/{quote(repo, safe='')}: 404 {{message: 404 Project Not Found}}"
            )
        if vcs_type == "Gitea":
            return "The target couldn't be found."
        return f"GET https://api.github.com/repos/{repo}: 404 Not Found []"

    @staticmethod
    def _pull_lookup_error(vcs_type: str, repo: str, number: int) -> str:
        if vcs_type == "Gitlab":
            return f"GET https://gitlab.com/api/v4/projects/{quote(repo, safe='')}/merge_requests/{number}: 404"
        return f"GET https://api.github.com/repos/{repo}/pulls/{number}: 404 Not Found []"

    def _allowlisted(self, vcs_type: str, repo: str) -> bool:
        full = f"{VCS_HOSTS.get(vcs_type, '')}/{repo}"
        for pattern in self.repo_allowlist:
            if pattern == "*" or fnmatch.fnmatchcase(repo, pattern) or fnmatch.fnmatchcase(full, pattern):
                return True
        return False

    @contextmanager
    def _working_directory(self, request: dict[str, Any]) -> Iterator[None]:
        """Atlantis's PR-0 working directory and its locks: one call at a time."""
        with self._working_dir:
            with self._state:
                for path in request.get("Paths") or []:
                    self._running.append(
                        {
                            "repo": request["Repository"],
                            "directory": path["Directory"].rstrip("/") or ".",
                            "workspace": path["Workspace"] or "default",
                            "pr": request["PR"],
                            "time": datetime.now(UTC).isoformat(),
                        }
                    )
            try:
                yield
            finally:
                with self._state:
                    self._running.clear()

    def _clone(self, request: dict[str, Any], target: str) -> str | None:
        """git clone as Atlantis ≤ v0.44 does; the error text (Atlantis's) or None."""
        url = self.repo_clone_url[request["Repository"]]
        if "://" not in url:
            url = Path(url).resolve().as_uri()  # file:// so that --depth is honoured
        args = ["git", "clone", "--depth=1", "--branch", request["Ref"], "--single-branch", url, target]
        env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1"}
        result = subprocess.run(args, capture_output=True, text=True, env=env)
        self.clones.append(request["Ref"])
        if result.returncode != 0:
            return f"running {' '.join(args)}: {result.stdout}{result.stderr}: exit status {result.returncode}"
        return None

    def _work(self, command: str, request: dict[str, Any], inject_error: bool) -> _Answer:
        clone_dir = tempfile.mkdtemp(prefix="local-atlantis-")
        try:
            target = os.path.join(clone_dir, "default")
            clone_error = self._clone(request, target)
            if clone_error:
                self._log(f"error: {clone_error}")
                return _Answer(500, error_body(clone_error))
            if request.get("Projects"):
                if not Path(target, "atlantis.yaml").is_file():
                    message = (
                        "failed to build command: cannot specify a project name unless an atlantis.yaml file exists "
                        "to configure projects"
                    )
                else:
                    message = "failed to build command: the local Atlantis does not model atlantis.yaml projects"
                return _Answer(500, error_body(message))
            projects = []
            for path in request.get("Paths") or []:
                directory = path["Directory"].rstrip("/") or "."
                workspace = path["Workspace"] or "default"
                plan = self._plan_project(
                    request["Repository"], Path(target), directory, workspace, inject_error and command == "plan"
                )
                if command == "plan":
                    projects.append(plan)
                else:
                    projects.append(self._apply_project(Path(target), directory, workspace, plan, inject_error))
            return self._result_answer(projects)
        finally:
            shutil.rmtree(clone_dir, ignore_errors=True)

    def _project_json(self, command: int, directory: str, workspace: str) -> dict[str, Any]:
        return {
            "Error": None,
            "Failure": "",
            "PlanSuccess": None,
            "PolicyCheckResults": None,
            "ApplySuccess": "",
            "VersionSuccess": "",
            "ImportSuccess": None,
            "StateRmSuccess": None,
            "Command": command,
            "SubCommand": "",
            "RepoRelDir": directory,
            "Workspace": workspace,
            "ProjectName": "",
            "SilencePRComments": None,
        }

    def _fail_project(self, project: dict[str, Any], command: str, error: Any, text: str) -> None:
        project["Error"] = error
        self.errors.append(ProjectError(command, project["RepoRelDir"], project["Workspace"], text))
        self._log(f"error: {command} in {project['RepoRelDir']} ({project['Workspace']}): {text}")

    def _project_path(self, root: Path, directory: str) -> Path | None:
        resolved = Path(os.path.normpath(os.path.join(root, directory)))
        if resolved != root and root not in resolved.parents:
            return None
        return resolved

    def _plan_project(
        self, repo: str, root: Path, directory: str, workspace: str, inject_error: bool
    ) -> dict[str, Any]:
        project = self._project_json(COMMAND_PLAN, directory, workspace)
        project["_run"] = None
        path = self._project_path(root, directory)
        if path is None:
            self._fail_project(project, "plan", {}, f"project path traversal detected: {directory}")
            return project
        if not path.is_dir():
            self._fail_project(project, "plan", {"RepoRelDir": directory}, f"dir {directory!r} does not exist")
            return project
        if inject_error:
            self._fail_project(project, "plan", {}, "injected error")
            return project
        run = terraform_plan(path, self.var_files, self.existing)
        project["_run"] = run
        if not run.ok:
            self._fail_project(
                project,
                "plan",
                {},
                f'exit status 1: running "terraform plan -input=false -refresh -out $PLANFILE" in {str(path)!r}: '
                f"\n{run.error}",
            )
            return project
        lock_id = f"{repo}/{directory}/{workspace}"
        flags = f"-d {directory}" + (f" -w {workspace}" if workspace != "default" else "")
        project["PlanSuccess"] = {
            "TerraformOutput": run.output,
            "LockURL": f"{self.url}/lock?id={quote(lock_id, safe='')}",
            "RePlanCmd": f"atlantis plan {flags}",
            "ApplyCmd": f"atlantis apply {flags}",
            "MergedAgain": False,
        }
        self._log(f"info: planned {directory} ({workspace})")
        return project

    def _apply_project(
        self, root: Path, directory: str, workspace: str, plan: dict[str, Any], inject_error: bool
    ) -> dict[str, Any]:
        project = self._project_json(COMMAND_APPLY, directory, workspace)
        run: TerraformRun | None = plan.get("_run")
        if plan["Error"] == {"RepoRelDir": directory}:
            self._fail_project(project, "apply", {"RepoRelDir": directory}, f"dir {directory!r} does not exist")
            return project
        if plan["Error"] is not None or run is None or not run.ok:
            self._fail_project(
                project,
                "apply",
                {},
                f'no plan found at path "{directory}" and workspace "{workspace}"–did you run plan?',  # noqa: RUF001 (Atlantis's)
            )
            return project
        if inject_error:
            self._fail_project(project, "apply", {}, "injected error")
            return project
        if not run.changes:
            project["ApplySuccess"] = "\nApply complete! Resources: 0 added, 0 changed, 0 destroyed.\n"
            return project
        path = self._project_path(root, directory)
        try:
            if self.on_apply is not None:
                output = self.on_apply(path, dict(run.values))
            else:
                creating = "\n".join(
                    f"{address}: Creating...\n{address}: Creation complete after 0s" for address in run.resources
                )
                count = len(run.resources)
                output = f"{creating}\n\nApply complete! Resources: {count} added, 0 changed, 0 destroyed.\n"
        except Exception as error:  # the hook stands for terraform apply failing
            self._fail_project(
                project, "apply", {}, f'exit status 1: running "terraform apply" in {str(path)!r}: \n{error}'
            )
            return project
        self.applied.append((directory, dict(run.values)))
        project["ApplySuccess"] = output
        self._log(f"info: applied {directory} ({workspace})")
        return project

    def _result_answer(self, projects: list[dict[str, Any]]) -> _Answer:
        for project in projects:
            project.pop("_run", None)
        if not projects:
            project_results: list[dict[str, Any]] | None = [] if _version_tuple(self.version) >= (0, 36) else None
        else:
            project_results = projects
        failed = any(project["Error"] is not None or project["Failure"] for project in projects)
        body = {"Error": None, "Failure": "", "ProjectResults": project_results, "PlansDeleted": False}
        return _Answer(500 if failed else 200, (go_json(body) + "\n").encode("utf-8"))

    # -- bookkeeping used by the handler --

    def _begin(self, record: RecordedRequest) -> None:
        with self._state:
            if self._in_flight:
                self.overlaps += 1
                record.overlapped = True
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
            self.requests.append(record)

    def _end(self) -> None:
        with self._state:
            self._in_flight -= 1

    def commands(self) -> list[RecordedRequest]:
        """The plan/apply requests received so far."""
        return [record for record in self.requests if record.path in ("/api/plan", "/api/apply")]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (timeout test) makes the late answer fail: that is expected here.
        pass


class _Handler(BaseHTTPRequestHandler):
    atlantis: LocalAtlantis
    protocol_version = "HTTP/1.1"
    server_version = "LocalAtlantis"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _read_body(self) -> bytes | None:
        try:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                chunks = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            return body if len(body) == length else None
        except (OSError, ValueError):
            return None

    def _send(self, answer: _Answer) -> None:
        self.send_response(answer.status)
        if answer.body or answer.content_type:
            self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        self.wfile.write(answer.body)

    def _route(self) -> str | None:
        path = urlsplit(self.path).path
        if path in ("/api/plan", "/api/apply"):
            return "command" if self.command == "POST" else "method"
        if path == "/api/locks":
            return "locks" if self.command == "GET" else "method"
        return None

    def _handle(self) -> None:
        route = self._route()
        body = self._read_body() if self.command in ("POST", "PUT", "PATCH") else b""
        record = RecordedRequest(
            method=self.command,
            path=urlsplit(self.path).path,
            headers=[(name, value) for name, value in self.headers.items() if name.lower() != TOKEN_HEADER.lower()],
            body=body or b"",
            token=_token_state(self.headers.get(TOKEN_HEADER), self.atlantis.api_secret),
            started=time.monotonic(),
        )
        if route == "command":
            self.atlantis._begin(record)
            try:
                command = record.path.rsplit("/", 1)[-1]
                token = self.headers.get(TOKEN_HEADER)
                answer = self.atlantis.handle_command(command, {TOKEN_HEADER: token} if token is not None else {}, body)
            finally:
                self.atlantis._end()
        else:
            with self.atlantis._state:
                self.atlantis.requests.append(record)
            if route == "locks":
                answer = self.atlantis.locks_answer()
            elif route == "method":
                answer = _Answer(405, b"", content_type="")
            else:
                answer = _Answer(404, b"404 page not found\n", content_type="text/plain; charset=utf-8")
        record.finished = time.monotonic()
        if body is None:
            self.close_connection = True
        if answer.drop:
            self.close_connection = True
            return
        record.status, record.response = answer.status, answer.body
        self._send(answer)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle


def _token_state(sent: str | None, secret: str | None) -> str:
    if sent is None:
        return "absent"
    return "matching" if secret and sent == secret else "wrong"
