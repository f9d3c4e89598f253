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

export function licenceFacts(lic, runningNodes) {
  return definitionList([
    ["Status", badge(lic.status, "Licence")],
    ["Registration", text(lic.registration_status)],
    ["Authorisation", text(lic.authorization_status)],
    ["Product", text(lic.product)],
    ["Enterprise", yesNo(lic.is_enterprise)],
    ["Node limit", lic.status !== "registered" && lic.node_limit != null && lic.reported_node_limit == null
      ? `${lic.node_limit} (unlicensed limit)` : text(lic.node_limit)],
    ["Nodes in use", text(runningNodes)],
    ["Expires", when(lic.expires)],
    ["Pending request", text(lic.pending_action)],
    ["Last error", text(lic.last_error)],
  ]);
}

export function awsTab(w) {
  const ec2 = w.telemetry?.ec2 || {};
  const checkedAt = w.telemetry?.ec2_checked_at;
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
      ["State", badge(w.ec2_state, "EC2 state")], ["System status", badge(ec2.system_status, "System status check")],
      ["Instance status", badge(ec2.instance_status, "Instance status check")],
      ["Checked", `${when(checkedAt)} (${ago(checkedAt)})`],
    ])),
    section("Licence", h("p", {}, "CML licence status: ", badge(w.license?.status, "Licence"))),
    section("Tags", table("EC2 tags", ["Key", "Value"], tags, "No tags.")),
  ];
}

const COMPUTE_CHECKS = ["kvm_vmx_enabled", "enough_cpus", "lld_connected", "lld_synced", "libvirt", "fabric",
  "device_mux", "refplat_images_available", "docker_shim"];

// One row per compute: its system_stats numbers and system_health flags, merged by the collection.
function computeRows(computes) {
  return Object.entries(computes || {}).map(([id, c]) => {
    const flags = COMPUTE_CHECKS.filter((f) => c[f] != null);
    const failing = flags.filter((f) => c[f] === false);
    return [
      text(c.hostname ?? id), yesNo(c.is_controller), badge(c.admission_state, "Admission state"),
      badge(c.valid == null ? null : c.valid ? "healthy" : "failed", "Compute health"),
      failing.length ? h("span", { class: "flag-bad" }, `failing: ${failing.join(", ")}`)
        : flags.length ? `${flags.length} checks pass` : "N/A",
      pct(c.cpu_percent), `${gb(c.memory_used)} / ${gb(c.memory_total)}`, text(c.running_nodes),
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
  const t = w.telemetry || {};
  const info = t.cml || {};
  const mib = (v) => (typeof v === "number" ? gb(v * 1024 ** 2) : "N/A");
  return [
    section("Service", definitionList([
      ["CML version", text(w.cml_version)], ["Service status", badge(w.service_status, "CML service")],
      ["Labs", text(info.labs_count)], ["Collected", `${when(t.cml_at)} (${ago(t.cml_at)})`],
      ["Last seen", `${when(t.last_seen_at)} (${ago(t.last_seen_at)})`],
      ["Stale data", staleFacts(t.stale)],
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
      ["System valid", yesNo(info.health_valid)], ["Core connected", yesNo(info.controller_core_connected)],
      ["Nodes loaded", yesNo(info.controller_nodes_loaded)], ["Images loaded", yesNo(info.controller_images_loaded)],
      ["Controller valid", yesNo(info.controller_valid)], ["Licensed", yesNo(info.is_licensed)],
      ["Enterprise", yesNo(info.is_enterprise)],
    ])),
    section("Compute nodes", table("Compute nodes",
      ["Host", "Controller", "Admission", "Health", "Checks", "CPU", "Memory", "Running nodes"],
      computeRows(info.computes), "No compute nodes reported.")),
    section("Licence details", licenceFacts(w.license || {}, info.running_nodes)),
  ];
}

export function eventsTab(w) {
  const a = w.activity || {};
  const t = w.telemetry || {};
  const idle = t.idle || {};
  const history = [...(w.state_history || [])].reverse();
  const alerts = [...(w.alerts || [])].reverse();
  return [
    section("Idle and pauses", definitionList([
      ["Idle detection", a.idle_detection_enabled ? "enabled" : "disabled"],
      ["Idle since", `${when(idle.idle_since)} (${ago(idle.idle_since)})`], ["Last activity", when(t.last_activity_at)],
      ["Idle verdict", text(idle.verdict)], ["Paused", when(a.paused_at)], ["Pause reason", text(a.pause_reason)],
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
