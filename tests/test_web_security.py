"""Safe on the open web and behind TLS: `check --deploy` is clean for the documented production settings, and every
page carries a Content-Security-Policy that no template needs to loosen (no inline script or style)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The production settings the README documents for a deployment behind a TLS proxy.
PRODUCTION = {
    "DJANGO_SETTINGS_MODULE": "vmprov.settings",
    "DEBUG": "false",
    "SECRET_KEY": "k3y-" + "x7Q2vN9pL4sR8tW1zY6bC3dF5gH0jK" * 2,
    "ALLOWED_HOSTS": "vmprov.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://vmprov.example.com",
    "VMPROV_HTTPS": "true",
}


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("VMPROV_", "DJANGO_", "SECRET_KEY", "DEBUG"))}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True
    )


def test_check_deploy_is_clean_with_the_documented_production_settings():
    result = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_without_https_check_deploy_names_what_is_missing():
    result = manage("check", "--deploy", "--fail-level", "WARNING", **{**PRODUCTION, "VMPROV_HTTPS": "false"})
    assert result.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in result.stderr + result.stdout


def test_https_trusts_the_proxys_header_and_marks_the_cookies_secure():
    code = (
        "from django.conf import settings as s; "
        "print(s.SECURE_PROXY_SSL_HEADER, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS)"
    )
    result = manage("shell", "--no-imports", "-c", code, **PRODUCTION)
    assert result.stdout.strip() == "('HTTP_X_FORWARDED_PROTO', 'https') True True 31536000", result.stderr
    result = manage("shell", "--no-imports", "-c", code, **{**PRODUCTION, "VMPROV_HTTPS": "false"})
    assert result.stdout.strip() == "None False False 0", result.stderr


@pytest.mark.django_db
def test_every_page_carries_a_policy_without_inline_script_style_or_eval(logged_in):
    response = logged_in.get("/requests/new/")
    policy = response["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";") if part.strip())
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["default-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in policy


def test_no_template_holds_inline_script_or_style():
    """The policy blocks them: a style= attribute, a <style> block or a <script> without src would silently fail."""
    templates = [
        path
        for package in ("vmprov", "provisioning", "inventory")
        for path in (ROOT / package).rglob("templates/**/*.html")
        if "email" not in path.parts
    ]
    assert templates
    for path in templates:
        html = path.read_text()
        assert not re.search(r"\sstyle\s*=", html), path
        assert "<style" not in html, path
        for script in re.findall(r"<script\b[^>]*>", html):
            assert "src=" in script, (path, script)
        assert not re.search(r"\son[a-z]+\s*=", html), f"{path}: an inline event handler"


@pytest.mark.django_db
def test_what_a_logged_in_person_sees_is_never_cached(logged_in, client):
    page = logged_in.get("/requests/")
    assert page.status_code == 200
    assert {part.strip() for part in page["Cache-Control"].split(",")} == {"private", "no-store"}
    assert "no-store" in client.get("/login/")["Cache-Control"]


@pytest.mark.django_db
def test_a_failed_csrf_check_is_vmprovs_own_page_under_the_policy(requester):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(requester)
    response = strict.post("/requests/new/", {"vm_name": "web01"})
    assert response.status_code == 403
    body = response.content.decode()
    assert "reload the page and try again" in body and 'class="error-page"' in body
    assert "style=" not in body and "<style" not in body
