"""A person's path through the product in a real browser (Debian's chromium driven by Playwright).

Logs in, fills the form through the cascading selects against a warm cache, submits, and finds the
request in "My requests". It prints how long the form takes to become usable.
"""

import time

import pytest
from playwright.sync_api import expect

from inventory import cache
from provisioning.models import VMRequest
from tests.support.browser import chromium, screenshot
from tests.support.inventory_data import sample_snapshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def browser_page(monkeypatch):
    with chromium(monkeypatch) as browser:
        page = browser.page()
        try:
            yield page
        finally:
            screenshot(page, "browser-request")


def test_a_requester_fills_the_form_through_the_cascading_selects(live_server, browser_page, django_user_model, capsys):
    django_user_model.objects.create_user("carol", password="carol-password-1")
    cache.write_snapshot(sample_snapshot())
    page = browser_page

    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", "carol")
    page.fill("#id_password", "carol-password-1")
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{live_server.url}/requests/new/")

    # Measure a fresh load of the form: until the datacenter list is filled, then until every list is.
    started = time.monotonic()
    page.goto(f"{live_server.url}/requests/new/")
    expect(page.locator("#id_datacenter option", has_text="DC0")).to_have_count(1)
    datacenters_ready = time.monotonic() - started
    page.select_option("#id_datacenter", label="DC0")
    expect(page.locator("#id_cluster option", has_text="cluster 0")).to_have_count(1)
    page.select_option("#id_cluster", label="cluster 0")
    expect(page.locator("#id_datastore option", has_text="ds-fast")).to_have_count(1)
    expect(page.locator("#id_template option", has_text="ubuntu-22.04")).to_have_count(1)
    expect(page.locator("#id_folder option", has_text="/web")).to_have_count(1)
    usable = time.monotonic() - started

    # Inaccessible and in-maintenance datastores are listed but cannot be chosen, each saying why; the freshness of
    # the lists is shown.
    expect(page.locator("#id_datastore option:disabled", has_text="ds-down — not accessible")).to_have_count(1)
    expect(page.locator("#id_datastore option:disabled", has_text="ds-maint — in maintenance mode")).to_have_count(1)
    expect(page.locator("#inventory-freshness")).to_contain_text("Inventory as of")

    page.select_option("#id_resource_pool", label="Resources/web")
    page.select_option("#id_datastore", label="ds-fast (200 GB free, VMFS)")
    page.select_option("#id_network", label="VLAN 10 (distributed)")
    page.select_option("#id_folder", label="/web")
    page.select_option("#id_template", label="ubuntu-22.04 (ubuntu64Guest, 2 CPU, 2048 MB)")
    # The template fills CPU, memory and the minimum disk.
    expect(page.locator("#id_num_cpus")).to_have_value("2")
    expect(page.locator("#id_disk_size_gb")).to_have_value("20")
    page.fill("#id_vm_name", "web42")
    page.fill("#id_disk_size_gb", "30")
    page.fill("#id_domain", "example.com")
    page.click("text=Submit the request")

    expect(page.locator("h1")).to_contain_text("web42")
    expect(page.locator("#history")).to_contain_text("Request submitted.")
    page.click("text=My requests")
    row = page.locator("table tbody tr", has_text="web42")
    expect(row).to_contain_text("Submitted")
    expect(row).to_contain_text("DC0 / cluster 0")

    vm_request = VMRequest.objects.get()
    assert (vm_request.datastore_id, vm_request.template_id, vm_request.disk_size_gb) == ("datastore-01", "vm-t0", 30)
    with capsys.disabled():
        print(
            f"\n[form timing] datacenters listed {datacenters_ready * 1000:.0f} ms after navigation; "
            f"every list filled {usable * 1000:.0f} ms after navigation (warm cache, including two selections)"
        )
