#include "tools/phone-fleet/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace siterelay::fleet {
namespace {

using nlohmann::json;

double Round(double v, double unit) { return std::round(v / unit) * unit; }

// {count, p50, p95, p99, max} of `v` (ms), rounded to 0.1 ms.
json Quantiles(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return {{"count", v.size()},
          {"p50_ms", Round(Percentile(v, 50), 0.1)},
          {"p95_ms", Round(Percentile(v, 95), 0.1)},
          {"p99_ms", Round(Percentile(v, 99), 0.1)},
          {"max_ms", Round(v.empty() ? 0 : v.back(), 0.1)}};
}

struct Acc {
  size_t phones = 0, started = 0, completed = 0, ok = 0, failed = 0, errors = 0;
  std::vector<double> boot;
  std::map<StepKind, std::vector<double>> steps;
  std::map<StepKind, std::pair<uint64_t, uint64_t>> step_bytes;
  uint64_t down = 0, up = 0;
  std::vector<std::string> samples;

  void Add(const PhoneResult& r) {
    ++phones;
    started += r.started;
    completed += r.completed;
    errors += r.errors.size();
    if (r.completed && r.errors.empty()) ++ok;
    if (!r.errors.empty()) ++failed;
    if (r.completed) boot.push_back(r.boot_ms);
    for (const StepResult& s : r.steps) {
      steps[s.kind].push_back(s.ms);
      step_bytes[s.kind].first += s.down;
      step_bytes[s.kind].second += s.up;
    }
    down += r.down;
    up += r.up;
    for (const std::string& e : r.errors) {
      if (samples.size() < kErrorSamples &&
          std::find(samples.begin(), samples.end(), e) == samples.end()) {
        samples.push_back(e);
      }
    }
  }

  json ToJson() const {
    json j = {{"phones", phones},        {"started", started}, {"completed", completed},
              {"ok", ok},                {"failed", failed},   {"errors", errors},
              {"error_samples", samples}, {"boot", Quantiles(boot)},
              {"bytes_served", down},    {"bytes_uploaded", up}};
    json st = json::object();
    for (const auto& [kind, ms] : steps) {
      json q = Quantiles(ms);
      q["bytes_served"] = step_bytes.at(kind).first;
      q["bytes_uploaded"] = step_bytes.at(kind).second;
      st[std::string(StepName(kind))] = q;
    }
    j["steps"] = st;
    return j;
  }
};

json Proc(const ProcSample& s) {
  return {{"rss_kib", s.rss_kib}, {"hwm_kib", s.hwm_kib}, {"cpu_s", Round(s.cpu_s, 0.01)}};
}

std::string Mib(uint64_t bytes) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f", static_cast<double>(bytes) / (1 << 20));
  return b;
}

std::string Secs(double ms) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2f", ms / 1000);
  return b;
}

}  // namespace

json BuildReport(const std::vector<PhoneSpec>& phones, const std::vector<PhoneResult>& results,
                 const OriginEmulator* origin, const RunFacts& facts) {
  std::map<std::pair<int, int>, Acc> classes;  // (model, proto)
  Acc all;
  double last_end = 0;
  for (size_t i = 0; i < phones.size(); ++i) {
    const PhoneResult& r = results[i];
    classes[{phones[i].model, static_cast<int>(phones[i].proto)}].Add(r);
    all.Add(r);
    if (r.completed) last_end = std::max(last_end, r.end_ms);
  }
  json report;
  report["tool"] = "phone_fleet";
  report["options"] = facts.options;
  report["wall_s"] = Round(facts.wall_s, 0.001);
  report["last_boot_done_s"] = Round(last_end / 1000, 0.001);
  report["aborted_by_duration"] = facts.aborted;
  json cls = json::array();
  for (const auto& [key, acc] : classes) {
    json c = acc.ToJson();
    c["model"] = Models()[static_cast<size_t>(key.first)].name;
    c["protocol"] = ProtoName(static_cast<Proto>(key.second));
    cls.push_back(c);
  }
  report["classes"] = cls;
  report["overall"] = all.ToJson();
  report["incomplete"] = all.phones - all.completed;
  // What the phones saw go wrong (issue 11's origin faults): a body that arrived whole by HTTP
  // (200, curl OK) but with the wrong size or sha256 is corrupt; every other error (a 502, a cut
  // transfer) is one the phone can see, counted by its text, the first 1000 texts.
  uint64_t corrupt = 0;
  std::map<std::string, uint64_t> error_kinds;
  for (const PhoneResult& r : results) {
    corrupt += r.corrupt;
    for (const std::string& e : r.errors) {
      if (error_kinds.size() < 1000 || error_kinds.contains(e)) ++error_kinds[e];
    }
  }
  report["overall"]["corrupt"] = corrupt;
  report["overall"]["error_kinds"] = error_kinds;

  json bytes = {{"served_to_phones", all.down}, {"uploaded_by_phones", all.up}};
  if (origin != nullptr) {
    const OriginTotals& t = origin->totals();
    bytes["origin_body_bytes"] = t.body_bytes;
    bytes["origin_bytes"] = t.bytes;
    bytes["origin_uploaded"] = t.uploaded;
    json o = {{"connections", t.connections}, {"requests", t.requests}};
    json firmware = json::object();
    json paths = json::object();
    uint64_t not_found = 0, puts = 0, posts = 0;
    std::map<std::string, bool> is_firmware;
    for (const OriginFile& f : origin->tree()) is_firmware[f.path] = f.firmware;
    for (const auto& [path, s] : origin->stats()) {
      json p = {{"get", s.get},     {"head", s.head},         {"put", s.put},
                {"post", s.post},   {"full", s.full},         {"partial", s.partial},
                {"not_modified", s.not_modified}, {"not_found", s.not_found},
                {"body_bytes", s.body_bytes}};
      paths[path] = p;
      not_found += s.not_found;
      puts += s.put;
      posts += s.post;
      auto it = is_firmware.find(path);
      if (it != is_firmware.end() && it->second) firmware[path] = p;
    }
    o["firmware"] = firmware;
    const OriginFaultCounts& f = origin->faults();
    o["faults"] = {{"reset", f.reset},
                   {"error", f.error},
                   {"stall", f.stall},
                   {"short", f.short_body},
                   {"garble", f.garble},
                   {"total", f.total()}};
    o["not_found"] = not_found;
    o["puts"] = puts;
    o["posts"] = posts;
    o["paths"] = paths;
    report["origin"] = o;
  }
  report["bytes"] = bytes;
  json relay = {{"sampled", facts.relay_sampled}, {"failure", facts.relay_failure}};
  if (facts.relay_sampled) {
    relay["pid"] = facts.relay_pid;
    relay["idle"] = Proc(facts.relay_idle);
    relay["end"] = Proc(facts.relay_end);
    relay["idle_rss_kib"] = facts.relay_idle.rss_kib;
    relay["peak_rss_kib"] = std::max(facts.relay_end.hwm_kib, facts.relay_max_rss_kib);
    relay["cpu_s"] = Round(facts.relay_end.cpu_s - facts.relay_idle.cpu_s, 0.01);
  }
  relay["log_warnings"] = facts.relay_log_warning_count;
  relay["log_warning_samples"] = facts.relay_log_warnings;
  report["relay"] = relay;
  report["fleet"] = {{"cpu_s", Round(facts.fleet_cpu_s, 0.01)},
                     {"max_rss_kib", facts.fleet_max_rss_kib}};
  report["passed"] = all.completed == all.phones && all.errors == 0 &&
                     facts.relay_failure.empty() && !facts.aborted;
  return report;
}

bool RunPassed(const json& report) { return report.value("passed", false); }

std::string FormatTable(const json& r) {
  std::string out;
  char line[512];
  auto q = [](const json& j) {
    return Secs(j["p50_ms"].get<double>()) + " " + Secs(j["p95_ms"].get<double>()) + " " +
           Secs(j["p99_ms"].get<double>());
  };
  std::snprintf(line, sizeof line, "%-20s %6s %6s %6s %6s  %-20s  %-20s  %10s\n", "class", "phones",
                "done", "ok", "errors", "boot p50/95/99 s", "firmware p50/95/99 s", "MiB served");
  out += line;
  auto row = [&](const std::string& name, const json& c) {
    std::string fw = c["steps"].contains("firmware") ? q(c["steps"]["firmware"]) : "-";
    std::snprintf(line, sizeof line, "%-20s %6zu %6zu %6zu %6zu  %-20s  %-20s  %10s\n",
                  name.c_str(), c["phones"].get<size_t>(), c["completed"].get<size_t>(),
                  c["ok"].get<size_t>(), c["errors"].get<size_t>(), q(c["boot"]).c_str(),
                  fw.c_str(), Mib(c["bytes_served"].get<uint64_t>()).c_str());
    out += line;
  };
  for (const json& c : r["classes"]) {
    row(c["model"].get<std::string>() + "/" + c["protocol"].get<std::string>(), c);
  }
  row("all", r["overall"]);
  out += "\nstep (all phones)       count    p50 ms    p95 ms    p99 ms    max ms   MiB served\n";
  for (const auto& [name, s] : r["overall"]["steps"].items()) {
    std::snprintf(line, sizeof line, "%-20s %8zu %9.1f %9.1f %9.1f %9.1f %12s\n", name.c_str(),
                  s["count"].get<size_t>(), s["p50_ms"].get<double>(), s["p95_ms"].get<double>(),
                  s["p99_ms"].get<double>(), s["max_ms"].get<double>(),
                  Mib(s["bytes_served"].get<uint64_t>()).c_str());
    out += line;
  }
  out += "\n";
  auto kv = [&](const char* k, const std::string& v) {
    std::snprintf(line, sizeof line, "%-34s %s\n", k, v.c_str());
    out += line;
  };
  kv("wall time (s):", std::to_string(r["wall_s"].get<double>()).substr(0, 8) +
                           (r["aborted_by_duration"].get<bool>() ? "  (cut by --duration)" : ""));
  kv("last boot done at (s):", std::to_string(r["last_boot_done_s"].get<double>()).substr(0, 8));
  kv("incomplete boots:", std::to_string(r["incomplete"].get<size_t>()));
  for (const json& e : r["overall"]["error_samples"]) kv("error:", e.get<std::string>());
  const json& b = r["bytes"];
  kv("served to phones (MiB):", Mib(b["served_to_phones"].get<uint64_t>()));
  kv("uploaded by phones (MiB):", Mib(b["uploaded_by_phones"].get<uint64_t>()));
  if (r.contains("origin")) {
    const json& o = r["origin"];
    kv("fetched from the origin (MiB):", Mib(b["origin_body_bytes"].get<uint64_t>()) + " in " +
                                             std::to_string(o["requests"].get<uint64_t>()) +
                                             " requests on " +
                                             std::to_string(o["connections"].get<uint64_t>()) +
                                             " connections (" +
                                             std::to_string(o["not_found"].get<uint64_t>()) +
                                             " answered 404)");
    for (const auto& [path, s] : o["firmware"].items()) {
      kv(("origin " + path + ":").c_str(),
         std::to_string(s["full"].get<uint64_t>()) + " full, " +
             std::to_string(s["partial"].get<uint64_t>()) + " ranged, " +
             std::to_string(s["not_modified"].get<uint64_t>()) + " not modified, " +
             std::to_string(s["head"].get<uint64_t>()) + " HEAD, " +
             Mib(s["body_bytes"].get<uint64_t>()) + " MiB");
    }
  }
  if (r.contains("origin") && r["origin"]["faults"]["total"].get<uint64_t>() > 0) {
    const json& f = r["origin"]["faults"];
    kv("origin faults injected:",
       std::to_string(f["reset"].get<uint64_t>()) + " reset, " +
           std::to_string(f["error"].get<uint64_t>()) + " error (503), " +
           std::to_string(f["stall"].get<uint64_t>()) + " stall, " +
           std::to_string(f["short"].get<uint64_t>()) + " short, " +
           std::to_string(f["garble"].get<uint64_t>()) + " garbled; phones got " +
           std::to_string(r["overall"]["corrupt"].get<uint64_t>()) + " corrupt bodies");
  }
  const json& relay = r["relay"];
  if (relay["sampled"].get<bool>()) {
    kv("relay RSS idle / peak (MiB):",
       Mib(relay["idle_rss_kib"].get<uint64_t>() * 1024) + " / " +
           Mib(relay["peak_rss_kib"].get<uint64_t>() * 1024) + "  (peak: VmHWM)");
    char cpu[64];
    std::snprintf(cpu, sizeof cpu, "%.2f", relay["cpu_s"].get<double>());
    kv("relay CPU during the run (s):", cpu);
  }
  kv("relay log warnings/errors:", std::to_string(relay["log_warnings"].get<size_t>()));
  for (const json& w : relay["log_warning_samples"]) kv("  relay log:", w.get<std::string>());
  if (!relay["failure"].get<std::string>().empty()) {
    kv("relay failure:", relay["failure"].get<std::string>());
  }
  char fleet[96];
  std::snprintf(fleet, sizeof fleet, "%.2f s CPU, %s MiB peak RSS",
                r["fleet"]["cpu_s"].get<double>(),
                Mib(r["fleet"]["max_rss_kib"].get<uint64_t>() * 1024).c_str());
  kv("phone_fleet itself:", fleet);
  kv("result:", r["passed"].get<bool>() ? "PASS (every boot complete, no errors)" : "FAIL");
  return out;
}

}  // namespace siterelay::fleet
