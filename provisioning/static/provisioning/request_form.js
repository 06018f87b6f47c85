// Cascading selects for the VM request form, filled from the inventory API (a warm cache answers at once).
// datacenter -> clusters, folders, templates (each loads on its own) ; cluster -> pools, datastores, networks.
// Options that cannot be chosen are listed disabled with the reason; a list with one usable option has it picked.
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

  // Where each list's items live: what a choice that is gone is "not in".
  const parent = {
    cluster: "datacenter", folder: "datacenter", template: "datacenter",
    resource_pool: "cluster", datastore: "cluster", network: "cluster",
  };

  // `refusal(item)` says why an item is listed but cannot be chosen (the option is disabled and says so).
  // The choice wanted before (the page's or the person's) stays when it is still usable; failing that, a list with
  // exactly one usable option has it picked.
  function fill(name, items, label, refusal) {
    const el = select(name);
    const fromPage = el.dataset.selected;
    const wanted = fromPage || el.value;
    el.innerHTML = "";
    const placeholder = new Option("— choose —", "");
    el.add(placeholder);
    for (const item of items) {
      const why = refusal ? refusal(item) : "";
      const option = new Option(why ? `${label(item)} — ${why}` : label(item), item.id);
      option.disabled = Boolean(why);
      option.dataset.why = why;
      option.dataset.item = JSON.stringify(item);
      el.add(option);
    }
    const usable = [...el.options].filter((o) => o.value && !o.disabled);
    if (!usable.length) placeholder.text = "— none available —";
    const kept = usable.find((o) => o.value === wanted);
    if (kept) el.value = wanted;
    else if (usable.length === 1) el.value = usable[0].value;
    if (fromPage && !kept) notOffered(name, [...el.options].find((o) => o.value === fromPage));
    el.dataset.selected = "";
    el.disabled = false;
    el.dispatchEvent(new Event("vmprov:filled"));
  }

  // "Request again": says beside the list that the earlier request's choice is not offered now, and why.
  function notOffered(name, option) {
    const note = document.getElementById(`again-${name}`);
    if (!note) return;
    const owner = parent[name];
    const why = option
      ? `not offered: ${option.dataset.why}`
      : `not in ${owner ? `${owner} ${select(owner).selectedOptions[0].text}` : "the vSphere inventory"}`;
    note.textContent = `${select(name).dataset.againChoice} (chosen in request #${form.dataset.again}) is ${why}.`;
    note.hidden = false;
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

  const gb = (bytes) => `${Math.floor(bytes / 2 ** 30)} GB free`.replace("-", "\u2212");
  const input = (name) => form.querySelector(`input[name="${name}"]`);
  // The smallest disk the form accepts (the setting, or the chosen template's disk): a datastore without room
  // for it is listed, not offered.
  const minimumDiskGb = () => Number(input("disk_size_gb").min) || 1;
  function datastoreRefusal(datastore) {
    if (!datastore.accessible) return "not accessible";
    if (datastore.maintenance_mode !== "normal") return "in maintenance mode";
    if (datastore.free_space <= 0) return `full (${gb(datastore.free_space)})`;
    const minimum = minimumDiskGb();
    if (datastore.free_space < minimum * 2 ** 30) {
      return `no room for a ${minimum} GB disk (${gb(datastore.free_space)})`;
    }
    return "";
  }
  // A datastore that is not offered says why instead of its free space.
  const datastoreLabel = (d) => (datastoreRefusal(d) ? d.name : `${d.name} (${gb(d.free_space)}, ${d.type})`);
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
          templateRefusal);
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
    fill("datastore", body.datastores, datastoreLabel, datastoreRefusal);
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
