// The report of a phone_fleet run: what happened, per phone class (model x protocol) and
// overall, as one JSON document (`--json FILE`), and the aligned table printed from it, so the
// two never disagree. Pure functions over the run's results; any thread.
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <vector>

#include "tools/phone-fleet/fleet.h"
#include "tools/phone-fleet/origin.h"
#include "tools/phone-fleet/relay_process.h"

namespace siterelay::fleet {

// How many distinct error texts a class keeps (the first ones seen).
constexpr size_t kErrorSamples = 3;

struct RunFacts {
  nlohmann::json options;           // the run's settings, as given
  double wall_s = 0;                // common start to the end of the last phone (or the abort)
  bool aborted = false;             // --duration cut the run
  std::string relay_failure;        // the relay died or failed to stop; "" = fine
  bool relay_sampled = false;
  int relay_pid = 0;
  ProcSample relay_idle, relay_end;
  uint64_t relay_max_rss_kib = 0;   // the largest VmRSS sampled during the run
  std::vector<std::string> relay_log_warnings;  // distinct warn/error lines (capped)
  size_t relay_log_warning_count = 0;
  double fleet_cpu_s = 0;
  uint64_t fleet_max_rss_kib = 0;
  bool origin_emulated = false;
};

nlohmann::json BuildReport(const std::vector<PhoneSpec>& phones,
                           const std::vector<PhoneResult>& results,
                           const OriginEmulator* origin, const RunFacts& facts);

// The aligned table (stdout).
std::string FormatTable(const nlohmann::json& report);

// True when every phone completed its boot with no error and the relay behaved.
bool RunPassed(const nlohmann::json& report);

}  // namespace siterelay::fleet
