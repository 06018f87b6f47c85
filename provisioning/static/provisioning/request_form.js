// Cascading selects for the VM request form, filled from the inventory API (a warm cache answers at once).
// datacenter -> clusters, folders, templates (each loads on its own) ; cluster -> pools, datastores, networks.
(function () {
  "use strict";
  const form = document.getElementById("vm-request-form");
  if (!form) return;
  // The inventory API's addresses come from the page (Django's URL names), one per list.
  const apiUrl = (list, id) => form.dataset[`${list}Url`].replace("__id__", encodeURIComponent(id ?? ""));
  const select = (name) => form.querySelector(`select[name="${name}"]`);
  const freshness = {};
  // A late answer for an earlier choice must not fill the lists of the current one.
  const generation = { datacenter: 0, cluster: 0 };

  function status(name, text, isError) {
    const el = document.getElementById(`status-${name}`);
    if (el) {
      el.textContent = text || "";
      el.classList.toggle("error", Boolean(isError));
    }
  }

  function showFreshness(scope, body) {
    freshness[scope] = body;
    const oldest = Object.values(freshness).reduce((a, b) => (a && a.fetched_at < b.fetched_at ? a : b), null);
    const el = document.getElementById("inventory-freshness");
    if (!oldest) return;
    const bodies = Object.values(freshness);
    const live = bodies.every((b) => b.live);
    const lastUpdate = bodies.map((b) => b.last_update_at).filter(Boolean).sort().pop();
    let text = live
      ? `Inventory live from vCenter${lastUpdate ? `, last update at ${new Date(lastUpdate).toLocaleString()}` : ""}`
      : `Inventory as of ${new Date(oldest.fetched_at).toLocaleString()} (a snapshot)`;
    if (bodies.some((b) => b.stale)) text += " (refreshing in the background)";
    const failed = Object.values(freshness).find((b) => b.refresh_error);
    if (failed) text += ` — last refresh failed: ${failed.refresh_error.message}`;
    el.textContent = text;
  }

  async function load(url, names, scope) {
    names.forEach((n) => status(n, "loading…"));
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      const body = await response.json();
      if (!response.ok) throw new Error(body.error || response.statusText);
      names.forEach((n) => status(n, ""));
      showFreshness(scope, body);
      return body;
    } catch (error) {
      names.forEach((n) => status(n, `Could not load: ${error.message}`, true));
      return null;
    }
  }

  // `refusal(item)` says why an item is listed but cannot be chosen (the option is disabled and says so).
  function fill(name, items, label, accept, refusal) {
    const el = select(name);
    const wanted = el.dataset.selected || el.value;
    el.innerHTML = "";
    const offered = accept ? items.filter(accept) : items;
    const placeholder = new Option(offered.length ? "— choose —" : "— none available —", "");
    el.add(placeholder);
    for (const item of offered) {
      const why = refusal ? refusal(item) : "";
      const option = new Option(why ? `${label(item)} — ${why}` : label(item), item.id);
      option.disabled = Boolean(why);
      option.dataset.item = JSON.stringify(item);
      el.add(option);
    }
    if (wanted && [...el.options].some((o) => o.value === wanted && !o.disabled)) el.value = wanted;
    el.dataset.selected = "";
    el.disabled = false;
    el.dispatchEvent(new Event("vmprov:filled"));
  }

  function clear(...names) {
    for (const name of names) {
      const el = select(name);
      if (!el.dataset.selected) el.dataset.selected = "";
      el.innerHTML = "";
      el.add(new Option("—", ""));
      el.disabled = true;
    }
  }

  const gb = (bytes) => `${Math.max(0, Math.floor(bytes / 2 ** 30))} GB free`;
  const input = (name) => form.querySelector(`input[name="${name}"]`);
  // The smallest disk the form accepts (the setting, or the chosen template's disk): a datastore without room
  // for it is not offered.
  const minimumDiskGb = () => Number(input("disk_size_gb").min) || 1;
  // Guests vmprov cannot customize (the server refuses them too); templates it cannot clone are marked.
  const unsupportedGuests = (form.dataset.unsupportedGuests || "").split(" ").filter(Boolean);
  function templateRefusal(template) {
    const guest = (template.guest_id || "").toLowerCase();
    if (unsupportedGuests.some((prefix) => guest.startsWith(prefix))) return "not supported (Windows guest)";
    if (!template.disks || !template.disks.length) return "not supported (no disk)";
    if (!template.nic_types || !template.nic_types.length) return "not supported (no network adapter)";
    return "";
  }
  // A template's size as a default, kept within the form's own bounds.
  function within(name, value) {
    const el = input(name);
    const low = Number(el.min) || value;
    const high = Number(el.max) || value;
    return Math.min(high, Math.max(low, value));
  }

  async function datacenterChanged() {
    clear("cluster", "resource_pool", "datastore", "network", "folder", "template");
    const id = select("datacenter").value;
    const mine = ++generation.datacenter;
    generation.cluster++;
    if (!id) return;
    const current = () => mine === generation.datacenter;
    // Three independent requests: templates never hold up clusters or folders.
    load(apiUrl("clusters", id), ["cluster"], "clusters").then((body) => {
      if (body && current()) { fill("cluster", body.clusters, (c) => c.name); clusterChanged(); }
    });
    load(apiUrl("folders", id), ["folder"], "folders").then((body) => {
      if (body && current()) fill("folder", body.folders, (f) => "/" + f.path);
    });
    load(apiUrl("templates", id), ["template"], "templates").then((body) => {
      if (body && current()) {
        fill("template", body.templates, (t) => `${t.name} (${t.guest_id}, ${t.num_cpus} CPU, ${t.memory_mb} MB)`,
          null, templateRefusal);
      }
    });
  }

  async function clusterChanged() {
    clear("resource_pool", "datastore", "network");
    const id = select("cluster").value;
    const mine = ++generation.cluster;
    if (!id) return;
    const body = await load(apiUrl("resources", id), ["resource_pool", "datastore", "network"], "resources");
    if (!body || mine !== generation.cluster) return;
    fill("resource_pool", body.resource_pools, (p) => p.path);
    fill("datastore", body.datastores, (d) => `${d.name} (${gb(d.free_space)}, ${d.type})`,
      (d) => d.accessible && d.maintenance_mode === "normal" && d.free_space >= minimumDiskGb() * 2 ** 30);
    fill("network", body.networks, (n) => `${n.name} (${n.type})`);
  }

  function templateChanged() {
    const option = select("template").selectedOptions[0];
    const info = document.getElementById("template-info");
    if (!option || !option.dataset.item) { info.textContent = ""; return; }
    const template = JSON.parse(option.dataset.item);
    const disk = template.disks.length ? template.disks[0].size_gb : 1;
    const diskInput = input("disk_size_gb");
    diskInput.dataset.settingMin ??= diskInput.min;  // the form's own minimum, before any template raised it
    diskInput.min = Math.max(Number(diskInput.dataset.settingMin) || 1, disk);
    if (!diskInput.value) diskInput.value = within("disk_size_gb", disk);
    if (!input("num_cpus").value) input("num_cpus").value = within("num_cpus", template.num_cpus);
    if (!input("memory_mb").value) input("memory_mb").value = within("memory_mb", template.memory_mb);
    info.textContent = `Template: ${template.disks.length} disk(s), first ${disk} GB; NIC ${template.nic_types.join(", ") || "?"}`;
  }

  function ipModeChanged() {
    const isStatic = form.querySelector('select[name="ip_mode"]').value === "static";
    document.getElementById("static-network").hidden = !isStatic;
  }

  select("datacenter").addEventListener("change", datacenterChanged);
  select("cluster").addEventListener("change", clusterChanged);
  select("template").addEventListener("change", templateChanged);
  select("template").addEventListener("vmprov:filled", templateChanged);
  form.querySelector('select[name="ip_mode"]').addEventListener("change", ipModeChanged);
  ipModeChanged();

  load(apiUrl("datacenters"), ["datacenter"], "datacenters").then((body) => {
    if (!body) return;
    fill("datacenter", body.datacenters, (d) => d.name);
    if (select("datacenter").value) datacenterChanged();
  });
})();
