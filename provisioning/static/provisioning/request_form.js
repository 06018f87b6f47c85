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

  function fill(name, items, label, accept) {
    const el = select(name);
    const wanted = el.dataset.selected || el.value;
    el.innerHTML = "";
    const placeholder = new Option(items.length ? "— choose —" : "— none available —", "");
    el.add(placeholder);
    for (const item of items) {
      if (accept && !accept(item)) continue;
      const option = new Option(label(item), item.id);
      option.dataset.item = JSON.stringify(item);
      el.add(option);
    }
    if (wanted && [...el.options].some((o) => o.value === wanted)) el.value = wanted;
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

  const gb = (bytes) => `${Math.floor(bytes / 2 ** 30)} GB free`;

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
        fill("template", body.templates, (t) => `${t.name} (${t.guest_id}, ${t.num_cpus} CPU, ${t.memory_mb} MB)`);
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
      (d) => d.accessible && d.maintenance_mode === "normal");
    fill("network", body.networks, (n) => `${n.name} (${n.type})`);
  }

  function templateChanged() {
    const option = select("template").selectedOptions[0];
    const info = document.getElementById("template-info");
    if (!option || !option.dataset.item) { info.textContent = ""; return; }
    const template = JSON.parse(option.dataset.item);
    const disk = template.disks.length ? template.disks[0].size_gb : 1;
    const diskInput = form.querySelector('input[name="disk_size_gb"]');
    diskInput.min = disk;
    if (!diskInput.value) diskInput.value = disk;
    const cpus = form.querySelector('input[name="num_cpus"]');
    if (!cpus.value) cpus.value = template.num_cpus;
    const memory = form.querySelector('input[name="memory_mb"]');
    if (!memory.value) memory.value = template.memory_mb;
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
