"""The collector's I/O without a vCenter: paging, plain values at the edge, settings, timeouts."""

import socket
import threading
import time
from types import SimpleNamespace

import pytest

from inventory import vsphere
from inventory.snapshot import VCenterError
from inventory.vsphere import VCenterConfig


class FakeRef:
    def __init__(self, mo_id):
        self._moId = mo_id


def content(mo_id, **props):
    return SimpleNamespace(
        obj=FakeRef(mo_id), propSet=[SimpleNamespace(name=k, val=v) for k, v in props.items()], missingSet=[]
    )


class PagingCollector:
    """Hands out objects `page` at a time with tokens, as a real vCenter does."""

    def __init__(self, objects, page):
        self.pages = [objects[i : i + page] for i in range(0, len(objects), page)]
        self.calls = []

    def _page(self, index):
        token = str(index + 1) if index + 1 < len(self.pages) else None
        return SimpleNamespace(objects=self.pages[index], token=token)

    def RetrievePropertiesEx(self, specs, options):
        self.calls.append(("RetrievePropertiesEx", options.maxObjects))
        return self._page(0)

    def ContinueRetrievePropertiesEx(self, token):
        self.calls.append(("ContinueRetrievePropertiesEx", token))
        return self._page(int(token))


def fake_session(collector, page_size):
    session = vsphere.Session(service_instance=None, counter=vsphere.SoapCallCounter(), page_size=page_size)
    session._content = SimpleNamespace(propertyCollector=collector)
    return session


def test_retrieve_follows_every_page_token():
    objects = [content(f"vm-{i}", name=f"vm {i}") for i in range(10)]
    collector = PagingCollector(objects, page=3)

    entities = list(vsphere.retrieve(fake_session(collector, 3), spec=None))

    assert [e.id for e in entities] == [f"vm-{i}" for i in range(10)]
    assert collector.calls == [
        ("RetrievePropertiesEx", 3),
        ("ContinueRetrievePropertiesEx", "1"),
        ("ContinueRetrievePropertiesEx", "2"),
        ("ContinueRetrievePropertiesEx", "3"),
    ]


def test_retrieve_makes_one_call_when_everything_fits_a_page():
    collector = PagingCollector([content("vm-1", name="a")], page=100)
    assert len(list(vsphere.retrieve(fake_session(collector, 100), spec=None))) == 1
    assert len(collector.calls) == 1


def test_retrieve_hands_out_plain_values_and_keeps_only_device_objects():
    from pyVmomi import vim

    disk = vim.vm.device.VirtualDisk(key=2000)
    nic = vim.vm.GuestInfo.NicInfo(ipAddress=["10.0.0.5", "fe80::1"])
    tag = vim.Tag(key="SYSTEM/DVS.UPLINKPG")
    objects = [
        content(
            "vm-1",
            parent=vim.Folder("group-v3"),
            **{
                "runtime.powerState": vim.VirtualMachine.PowerState.poweredOn,
                "guest.net": [nic, vim.vm.GuestInfo.NicInfo()],
                "config.hardware.device": [disk],
            },
        ),
        content("domain-c7", host=[vim.HostSystem("host-1"), vim.HostSystem("host-2")], name="c1"),
        content("dvportgroup-9", tag=[tag], **{"config.uplink": True}),
    ]

    vm, cluster, portgroup = vsphere.retrieve(fake_session(PagingCollector(objects, page=10), 10), spec=None)

    assert vm.props["parent"] == "group-v3" and vm.ref("parent") == "group-v3"
    assert vm.props["runtime.powerState"] == "poweredOn" and type(vm.props["runtime.powerState"]) is str
    assert vm.props["guest.net"] == ["10.0.0.5", "fe80::1"]
    assert vm.props["config.hardware.device"] == [disk], "devices stay vCenter's objects, for builder.hardware"
    assert cluster.refs("host") == ["host-1", "host-2"] and cluster.props["name"] == "c1"
    assert portgroup.props == {"tag": ["SYSTEM/DVS.UPLINKPG"], "config.uplink": True}


def test_a_hung_vcenter_fails_within_the_timeout():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)  # accepts connections, never answers
    port = server.getsockname()[1]
    config = VCenterConfig(
        server=f"127.0.0.1:{port}", user="u", password="secret-pw", allow_unverified_ssl=True, timeout=1
    )
    started = time.monotonic()
    result = {}

    def attempt():
        try:
            with vsphere.session(config):
                pass
        except VCenterError as error:
            result["error"] = error

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(10)
    server.close()
    assert not worker.is_alive(), "connecting to a hung vCenter must not hang"
    assert time.monotonic() - started < 5
    assert "cannot reach vCenter" in str(result["error"])
    assert "secret-pw" not in str(result["error"])


def test_a_missing_server_setting_says_so():
    with pytest.raises(VCenterError, match="VSPHERE_SERVER is not set"):
        VCenterConfig(server="", user="", password="").host_and_port()


def test_the_config_never_shows_the_password():
    assert "hunter2" not in repr(VCenterConfig(server="vc", user="u", password="hunter2"))


def test_the_config_is_read_once_and_again_after_a_setting_changes(settings):
    settings.VSPHERE_SERVER = "vc1.example.com"
    first = VCenterConfig.from_settings()
    assert VCenterConfig.from_settings() is first
    settings.VSPHERE_SERVER = "vc2.example.com"
    assert VCenterConfig.from_settings().server == "vc2.example.com"


def test_no_vcenter_configured_is_no_settings_problem(settings):
    settings.VSPHERE_SERVER = settings.VSPHERE_USER = settings.VSPHERE_PASSWORD = ""
    assert vsphere.settings_problems() == []


def test_a_configured_vcenter_settings_have_no_problem(settings):
    settings.VSPHERE_SERVER = "https://vc.example.com:8443/sdk"
    settings.VSPHERE_USER = "svc-vmprov@vsphere.local"
    settings.VSPHERE_PASSWORD = "secret"
    assert vsphere.settings_problems() == []


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("VSPHERE_SERVER", "vc.example.com:99999", "has an invalid port"),
        ("VSPHERE_SERVER", "https://:443", "names no host"),
        ("VSPHERE_SERVER", 42, "must be a host name or URL"),
        ("VSPHERE_USER", "", "VSPHERE_USER is empty"),
        ("VSPHERE_PASSWORD", "", "VSPHERE_PASSWORD is empty"),
        ("VSPHERE_TIMEOUT", 0, "VSPHERE_TIMEOUT must be a positive number"),
        ("VSPHERE_TIMEOUT", "20", "VSPHERE_TIMEOUT must be a positive number"),
        ("VSPHERE_PAGE_SIZE", 0, "VSPHERE_PAGE_SIZE must be a positive whole number"),
        ("VSPHERE_PAGE_SIZE", 2.5, "VSPHERE_PAGE_SIZE must be a positive whole number"),
        ("VSPHERE_ALLOW_UNVERIFIED_SSL", "yes", "VSPHERE_ALLOW_UNVERIFIED_SSL must be true or false"),
    ],
)
def test_settings_problems_say_what_is_wrong_without_raising(settings, name, value, problem):
    settings.VSPHERE_SERVER = "vc.example.com"
    settings.VSPHERE_USER = "svc-vmprov"
    settings.VSPHERE_PASSWORD = "hunter2"
    setattr(settings, name, value)

    problems = vsphere.settings_problems()

    assert len(problems) == 1 and problem in problems[0]
    assert "hunter2" not in problems[0]
