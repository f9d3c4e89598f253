// The AWS, CML and Events tabs of a worker's detail page (EC2 facts; CML host and licence; history, alerts, pauses).

import { ago, badge, definitionList, gb, h, pct, text, when, yesNo } from "../dom.js";

function section(title, ...content) {
  return h("section", { class: "detail-section" }, h("h3", {}, title), ...content);
}

function table(caption, headers, rows, empty) {
  if (!rows.length) return h("p", { class: "hint" }, empty);
  return h("div", { class: "table-scroll" }, h("table", { class: "striped" },
    h("caption", { class: "visually-hidden" }, caption),
    h("thead", {}, h("tr", {}, headers.map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c) => h("td", {}, c)))))));
}

export function licenceFacts(lic) {
  return definitionList([
    ["Status", badge(lic.status, "Licence")],
    ["Registration", text(lic.registration_status)],
    ["Authorisation", text(lic.authorization_status)],
    ["Product", text(lic.product)],
    ["Enterprise", yesNo(lic.is_enterprise)],
    ["Node limit", lic.status !== "registered" && lic.node_limit != null && lic.reported_node_limit == null
      ? `${lic.node_limit} (unlicensed limit)` : text(lic.node_limit)],
    ["Nodes in use", text(lic.nodes_in_use)],
    ["Expires", when(lic.expires)],
    ["Pending request", text(lic.pending_action)],
    ["Last error", text(lic.last_error)],
  ]);
}

export function awsTab(w) {
  const ec2 = w.telemetry?.ec2 || {};
  const tags = Object.entries(w.aws_tags || {}).sort();
  return [
    section("Instance", definitionList([
      ["Instance id", text(w.aws_instance_id)], ["Instance type", text(w.instance_type)],
      ["Region", text(w.aws_region)], ["Launched", when(w.launch_time)], ["Origin", text(w.origin)],
      ["Template", text(w.template_name)], ["Desired status", text(w.desired_status)],
    ])),
    section("Image and network", definitionList([
      ["AMI id", text(w.ami_id)], ["AMI name", text(w.ami_name)],
      ["Public IP", text(w.public_ip)], ["Private IP", text(w.private_ip)],
    ])),
    section("EC2 checks", definitionList([
      ["State", badge(ec2.state, "EC2 state")], ["System status", badge(ec2.system_status, "System status check")],
      ["Instance status", badge(ec2.instance_status, "Instance status check")],
      ["Checked", `${when(ec2.checked_at)} (${ago(ec2.checked_at)})`],
    ])),
    section("Licence", h("p", {}, "CML licence status: ", badge(w.license?.status, "Licence"))),
    section("Tags", table("EC2 tags", ["Key", "Value"], tags, "No tags.")),
  ];
}

function computeRows(info, health) {
  const ids = [...new Set([...Object.keys(info.computes || {}), ...Object.keys(health.computes || {})])];
  return ids.map((id) => {
    const stats = info.computes?.[id]?.stats || {};
    const hc = health.computes?.[id] || {};
    const flags = ["kvm_vmx_enabled", "enough_cpus", "lld_connected", "lld_synced", "libvirt", "fabric",
      "device_mux", "refplat_images_available", "docker_shim"].filter((f) => f in hc);
    const failing = flags.filter((f) => hc[f] === false);
    return [
      text(info.computes?.[id]?.hostname ?? hc.hostname ?? id),
      yesNo(info.computes?.[id]?.is_controller ?? hc.is_controller),
      badge(hc.admission_state, "Admission state"),
      badge(hc.valid === undefined ? null : hc.valid ? "healthy" : "failed", "Compute health"),
      failing.length ? h("span", { class: "flag-bad" }, `failing: ${failing.join(", ")}`)
        : flags.length ? `${flags.length} checks pass` : "N/A",
      pct(stats.cpu?.percent),
      `${gb(stats.memory?.used)} / ${gb(stats.memory?.total)}`,
      text(stats.dominfo?.running_nodes),
    ];
  });
}

// Sources whose last reads failed: what this page shows of them is the last value read, not a current one.
function staleFacts(stale) {
  const entries = Object.entries(stale || {}).sort();
  if (!entries.length) return "none";
  const line = ([source, s]) => {
    const what = source === "cml" ? "CML API unreachable (every CML value)" : source.replace(/^cml\./, "");
    const why = s.error ? `: ${s.error}` : "";
    return h("li", { class: "flag-bad" }, `${what} since ${when(s.since)} (${ago(s.since)})${why}`);
  };
  return h("ul", { class: "plain", dataset: { field: "stale" } }, entries.map(line));
}

export function cmlTab(w) {
  const cml = w.telemetry?.cml || {};
  const info = cml.system_info || {};
  const health = cml.system_health || {};
  const controller = health.controller || {};
  const mib = (v) => (typeof v === "number" ? gb(v * 1024 ** 2) : "N/A");
  return [
    section("Service", definitionList([
      ["CML version", text(w.cml_version)], ["Service status", badge(w.service_status, "CML service")],
      ["Uptime", typeof cml.uptime_seconds === "number" ? `${(cml.uptime_seconds / 3600).toFixed(1)} h` : "N/A"],
      ["Labs", text(cml.labs_count)], ["Collected", `${when(cml.collected_at)} (${ago(cml.collected_at)})`],
      ["Last seen", `${when(w.last_seen_at)} (${ago(w.last_seen_at)})`],
      ["Stale data", staleFacts(w.telemetry?.stale)],
    ])),
    section("Resource utilisation", h("div", { class: "facts-grid", id: "cml-resources" },
      definitionList([
        ["CPU cores", text(info.all_cpu_count)], ["CPU", pct(info.all_cpu_percent)],
        ["Allocated vCPUs", text(info.allocated_cpus)], ["Allocated memory", mib(info.allocated_memory)],
        ["Nodes (running / total)", `${text(info.running_nodes)} / ${text(info.total_nodes)}`],
      ]),
      definitionList([
        ["Memory total", gb(info.all_memory_total)], ["Memory used", gb(info.all_memory_used)],
        ["Memory free", gb(info.all_memory_free)], ["Disk total", gb(info.all_disk_total)],
        ["Disk used", gb(info.all_disk_used)], ["Disk free", gb(info.all_disk_free)],
      ]),
      definitionList([
        ["Controller disk total", gb(info.controller_disk_total)],
        ["Controller disk used", gb(info.controller_disk_used)],
        ["Controller disk free", gb(info.controller_disk_free)],
      ]))),
    section("Controller status", definitionList([
      ["System valid", yesNo(health.valid)], ["Core connected", yesNo(controller.core_connected)],
      ["Nodes loaded", yesNo(controller.nodes_loaded)], ["Images loaded", yesNo(controller.images_loaded)],
      ["Controller valid", yesNo(controller.valid)], ["Licensed", yesNo(health.is_licensed)],
      ["Enterprise", yesNo(health.is_enterprise)],
    ])),
    section("Compute nodes", table("Compute nodes",
      ["Host", "Controller", "Admission", "Health", "Checks", "CPU", "Memory", "Running nodes"],
      computeRows(info, health), "No compute nodes reported.")),
    section("Licence details", licenceFacts(w.license || {})),
  ];
}

export function eventsTab(w) {
  const a = w.activity || {};
  const history = [...(w.state_history || [])].reverse();
  const alerts = [...(w.alerts || [])].reverse();
  return [
    section("Idle and pauses", definitionList([
      ["Idle detection", a.idle_detection_enabled ? "enabled" : "disabled"],
      ["Idle since", `${when(a.idle_since)} (${ago(a.idle_since)})`], ["Last activity", when(a.last_activity_at)],
      ["Idle verdict", text(a.idle_verdict)], ["Paused", when(a.paused_at)], ["Pause reason", text(a.pause_reason)],
      ["Resumed", when(a.resumed_at)], ["Pauses / resumes", `${a.pause_count ?? 0} / ${a.resume_count ?? 0}`],
    ])),
    section("Active alerts", w.active_alerts?.length
      ? h("ul", { class: "plain" }, w.active_alerts.map((m) => h("li", {}, badge("critical"),
        m === "health" ? ` health ${w.health_status}` : ` ${m}`)))
      : h("p", { class: "hint" }, "None.")),
    section("Alert history", table("Alerts", ["When", "Metric", "Value", "Threshold", "Cleared"],
      alerts.map((x) => [when(x.at), x.metric, pct(x.value), pct(x.threshold), x.cleared_at ? when(x.cleared_at) : "active"]),
      "No alerts raised.")),
    section("State history", table("State history", ["When", "Field", "From", "To", "Reason", "By"],
      history.map((c) => [when(c.at), text(c.field), text(c.from), badge(c.to), text(c.reason), text(c.by)]),
      "No recorded changes.")),
  ];
}
