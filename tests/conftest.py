import pytest
from django.conf import settings as django_settings
from django_redis import get_redis_connection

from devtools.redis_server import start_redis
from devtools.vcsim import start_vcsim
from inventory import cache
from tests.settings import FAKE_REDIS_URL
from tests.support.git_repos import make_bare_repo
from tests.support.services import use_redis, use_vcenter


@pytest.fixture(autouse=True)
def _fresh_cache_state(monkeypatch):
    """Every test starts with an empty fake Redis and a closed circuit breaker."""
    from inventory import tasks

    monkeypatch.setattr(cache, "breaker", cache.CircuitBreaker())
    tasks._recent_claims.clear()
    yield
    tasks._recent_claims.clear()
    if django_settings.CACHES["default"]["LOCATION"] == FAKE_REDIS_URL:
        get_redis_connection("default").flushall()  # the fake server only


@pytest.fixture
def vcsim_factory():
    """Start vcsim instances with a chosen topology; all are stopped after the test."""
    started = []

    def start(**topology):
        instance = start_vcsim(**topology)
        started.append(instance)
        return instance

    yield start
    for instance in started:
        instance.stop()


@pytest.fixture
def vcenter(settings, vcsim_factory):
    """A vcsim with two datacenters (one cluster each), and vmprov pointed at it."""
    vcsim = vcsim_factory(dc=2)
    use_vcenter(settings, vcsim)
    return vcsim


@pytest.fixture(scope="session")
def redis_server():
    server = start_redis()
    yield server
    server.stop()


@pytest.fixture
def real_redis(settings, redis_server):
    """Point the cache at the tests' own redis-server (emptied first: nothing else uses it)."""
    use_redis(settings, redis_server.url)
    client = get_redis_connection("default")
    client.flushdb()
    return client


@pytest.fixture
def requester(django_user_model):
    return django_user_model.objects.create_user("alice", password="alice-password")


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user(
        "root-admin", password="admin-password", is_staff=True, is_superuser=True
    )


@pytest.fixture
def people(django_user_model):
    """A requester, an approver (in the approvers group) and a staff member, all with email addresses."""
    from django.contrib.auth.models import Group

    requester = django_user_model.objects.create_user("alice", "alice@example.com", "pw-alice-1")
    approver = django_user_model.objects.create_user("bob", "bob@example.com", "pw-bob-1")
    approver.groups.add(Group.objects.get_or_create(name="approvers")[0])
    staff = django_user_model.objects.create_user("ops", "ops@example.com", "pw-ops-1", is_staff=True)
    return requester, approver, staff


@pytest.fixture
def logged_in(client, requester):
    client.force_login(requester)
    return client


@pytest.fixture
def gitops_remote(tmp_path, settings):
    """A local bare repository standing in for the remote Atlantis works from, with a first commit on main."""
    bare = make_bare_repo(tmp_path / "gitops.git")
    settings.VMPROV_GITOPS_REPO = str(bare)
    settings.VMPROV_GITOPS_BASE_BRANCH = "main"
    settings.VMPROV_GIT_WORKDIR = str(tmp_path / "work")
    (tmp_path / "work").mkdir()
    return bare


@pytest.fixture
def world(settings, vcenter, real_redis, gitops_remote):
    """vcsim, a warm cache in a real redis-server, a bare Git repository and a local Atlantis applying into vcsim."""
    from tests.support.delivery_world import make_world

    settings.VMPROV_READY_CHECK_SECONDS = 1
    settings.VMPROV_READY_CHECKS = 2
    world = make_world(settings, vcenter, gitops_remote)
    yield world
    world.atlantis.stop()
